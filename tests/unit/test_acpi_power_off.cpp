// AcpiPowerOff: only SLP_EN with SLP_TYP 5 (what Linux writes for S5) powers
// off; everything else a guest can write is ignored, and reads are 0.
#include <catch2/catch.hpp>

#include <array>
#include <string>

#include "devices/legacy/acpi_power_off.hpp"
#include "vmm/core/stop_request.hpp"

using vmm::AcpiPowerOff;

namespace {

struct Recorder {
    int power_offs = 0;
    AcpiPowerOff device{[this] { ++power_offs; }};

    void out(uint8_t value, uint64_t offset = 0) {
        std::array<uint8_t, 1> byte{value};
        device.write(offset, byte);
    }
};

// SLP_EN (bit 5) and SLP_TYP 5 (bits 2-4); WAK_STS and the reserved bits may be anything.
bool is_s5_request(unsigned value) {
    return (value & 0x3c) == 0x34;
}

}  // namespace

TEST_CASE("AcpiPowerOff: Linux's S5 write powers off", "[acpi_power_off]") {
    Recorder recorder;
    // acpi_hw_extended_sleep: clear WAK_STS, then SLP_TYP | SLP_EN.
    recorder.out(0x80);
    CHECK(recorder.power_offs == 0);
    recorder.out(((5 << 2) & 0x1c) | 0x20);
    CHECK(recorder.power_offs == 1);
    CHECK(AcpiPowerOff::kS5SleepType == 5);
}

TEST_CASE("AcpiPowerOff: every other byte value is ignored", "[acpi_power_off]") {
    Recorder recorder;
    int expected = 0;
    for (unsigned value = 0; value < 256; ++value) {
        INFO("value " << value);
        recorder.out(static_cast<uint8_t>(value));
        expected += is_s5_request(value) ? 1 : 0;
        CHECK(recorder.power_offs == expected);
    }
    // 0x34 with any of bits 0, 1, 6, 7.
    CHECK(expected == 16);
}

TEST_CASE("AcpiPowerOff: S1-S4 and S5 without SLP_EN do nothing", "[acpi_power_off]") {
    Recorder recorder;
    for (uint8_t type = 0; type < 8; ++type) {
        if (type != 5) {
            recorder.out(static_cast<uint8_t>((type << 2) | 0x20));
        }
    }
    recorder.out(5 << 2);
    CHECK(recorder.power_offs == 0);
}

TEST_CASE("AcpiPowerOff: wide, empty and offset writes are ignored", "[acpi_power_off]") {
    Recorder recorder;
    std::array<uint8_t, 2> word{0x34, 0x34};
    recorder.device.write(0, word);
    std::array<uint8_t, 4> dword{0x34, 0, 0, 0};
    recorder.device.write(0, dword);
    recorder.device.write(0, std::span<const uint8_t>());
    recorder.out(0x34, 1);
    CHECK(recorder.power_offs == 0);
}

TEST_CASE("AcpiPowerOff: reads return 0 (WAK_STS clear)", "[acpi_power_off]") {
    Recorder recorder;
    recorder.out(0x80);
    std::array<uint8_t, 1> byte{0xff};
    recorder.device.read(0, byte);
    CHECK(byte[0] == 0);
    std::array<uint8_t, 4> dword{0xff, 0xff, 0xff, 0xff};
    recorder.device.read(0, dword);
    CHECK(dword == std::array<uint8_t, 4>{0, 0, 0, 0});
    CHECK(recorder.power_offs == 0);
}

TEST_CASE("AcpiPowerOff: S5 stops the VM with status 0", "[acpi_power_off]") {
    // As the machine wires it.
    vmm::StopRequest exit;
    int stops = 0;
    exit.set_stop_hook([&] { ++stops; });
    AcpiPowerOff device(
        [&] { exit.request(vmm::exit_status::kGuestStopped, "guest powered off (ACPI S5)"); });
    std::array<uint8_t, 1> garbage{0x14};
    device.write(0, garbage);
    CHECK_FALSE(exit.requested());
    std::array<uint8_t, 1> s5{0x34};
    device.write(0, s5);
    REQUIRE(exit.requested());
    CHECK(exit.status() == 0);
    CHECK(exit.reason() == "guest powered off (ACPI S5)");
    CHECK_FALSE(exit.is_error());
    CHECK(stops == 1);
    // A second write (another vCPU, or a retry) changes nothing.
    device.write(0, s5);
    CHECK(exit.status() == 0);
    CHECK(stops == 1);
}
