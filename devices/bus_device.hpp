// A device on a port-I/O or MMIO bus. Offsets are relative to the device's
// base; data.size() is the access width (1, 2, 4 or 8 bytes). Called from vCPU
// threads, so implementations lock their own state.
#pragma once

#include <cstdint>
#include <span>

namespace vmm {

class BusDevice {
  public:
    virtual ~BusDevice() = default;
    virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

}  // namespace vmm
