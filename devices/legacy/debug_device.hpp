// The VMM's debug device: a guest writes its exit status, or marks a point in
// its boot for --boot-trace. Two instances: port I/O at 0xf4 (exit) and 0xf5
// (boot timer) for small guests, and an MMIO page at 0xc0000000 (boot timer at
// +0, exit at +4) for guest userspace, which can reach it with devmem.
#pragma once

#include <cstdint>
#include <functional>

#include "devices/bus_device.hpp"

namespace vmm {

class DebugDevice : public BusDevice {
  public:
    struct Callbacks {
        std::function<void(uint8_t status)> exit;
        std::function<void()> boot_timer;
    };

    DebugDevice(uint64_t exit_offset, uint64_t timer_offset, Callbacks callbacks)
        : exit_offset_(exit_offset),
          timer_offset_(timer_offset),
          callbacks_(std::move(callbacks)) {}

    void read(uint64_t, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

  private:
    uint64_t exit_offset_;
    uint64_t timer_offset_;
    Callbacks callbacks_;
};

}  // namespace vmm
