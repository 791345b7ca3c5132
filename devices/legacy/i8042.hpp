// The part of the PC keyboard controller (ports 0x60 and 0x64) that guests use
// without a keyboard: the command byte, self-test, and the 0xFE "pulse reset
// line" command, which is how Linux's reboot=k restarts the machine.
#pragma once

#include <functional>
#include <mutex>
#include <optional>

#include "devices/bus_device.hpp"

namespace vmm {

class I8042 : public BusDevice {
  public:
    // Registered at 0x60 with length 5; offsets 0 (data) and 4 (status/command).
    explicit I8042(std::function<void()> on_reset) : on_reset_(std::move(on_reset)) {}

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

  private:
    std::mutex mutex_;
    std::function<void()> on_reset_;
    std::optional<uint8_t> output_;        // byte waiting at port 0x60
    uint8_t command_byte_ = 0x45;          // translation on, system flag, kbd irq
    bool expecting_command_byte_ = false;  // after command 0x60
};

}  // namespace vmm
