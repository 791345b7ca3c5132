// The hardware-reduced ACPI sleep control and status register (ACPI 6.3
// sections 4.8.3.7 and 4.8.3.8): one byte that the FADT names for both, so
// that a guest can power off. Linux's poweroff writes WAK_STS (0x80) to
// clear it, then SLP_TYP from the DSDT's \_S5_ (5) in bits 2-4 with SLP_EN
// (0x20): 0x34. That write calls `on_power_off`; every other value is
// ignored: the DSDT names no S1-S4, so a well-behaved guest never asks for
// them, and a hostile guest's garbage must not stop the VM. Reads return 0
// (WAK_STS clear: the machine never wakes from a sleep state).
#pragma once

#include <cstdint>
#include <functional>
#include <utility>

#include "devices/bus_device.hpp"

namespace vmm {

class AcpiPowerOff : public BusDevice {
  public:
    // The SLP_TYP value the DSDT's \_S5_ gives the guest.
    static constexpr uint8_t kS5SleepType = 5;

    // Registered with length 1. `on_power_off` is called from the vCPU
    // thread that wrote, once per such write.
    explicit AcpiPowerOff(std::function<void()> on_power_off)
        : on_power_off_(std::move(on_power_off)) {}

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

  private:
    std::function<void()> on_power_off_;
};

}  // namespace vmm
