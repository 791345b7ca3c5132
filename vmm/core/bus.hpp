// An address space (port I/O or MMIO) of non-overlapping ranges, each owned by
// a device. Built before the vCPUs start, read-only afterwards.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>

#include "devices/bus_device.hpp"

namespace vmm {

class Bus {
  public:
    // Throws on a zero length, a range that wraps, or an overlap.
    void insert(uint64_t base, uint64_t length, std::shared_ptr<BusDevice> device);

    // Dispatch to the device covering [address, address + data.size()); false when
    // none does (reads are then left to the caller to fill).
    bool read(uint64_t address, std::span<uint8_t> data) const;
    bool write(uint64_t address, std::span<const uint8_t> data) const;

  private:
    struct Range {
        uint64_t length;
        std::shared_ptr<BusDevice> device;
    };
    // The device whose range wholly contains the access, with the offset into it.
    std::pair<BusDevice*, uint64_t> find(uint64_t address, uint64_t size) const;

    std::map<uint64_t, Range> ranges_;
};

}  // namespace vmm
