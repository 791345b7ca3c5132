#include "devices/legacy/acpi_power_off.hpp"

#include <algorithm>

namespace vmm {

namespace {
constexpr uint8_t kSleepTypeMask = 0x1c;
constexpr unsigned kSleepTypeShift = 2;
constexpr uint8_t kSleepEnable = 0x20;
}  // namespace

void AcpiPowerOff::read(uint64_t, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), 0);
}

void AcpiPowerOff::write(uint64_t offset, std::span<const uint8_t> data) {
    // The FADT declares a byte register with byte access: nothing else is
    // a sleep request.
    if (offset != 0 || data.size() != 1) {
        return;
    }
    uint8_t value = data[0];
    uint8_t sleep_type = (value & kSleepTypeMask) >> kSleepTypeShift;
    if ((value & kSleepEnable) && sleep_type == kS5SleepType) {
        on_power_off_();
    }
}

}  // namespace vmm
