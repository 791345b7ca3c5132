// DebugDevice: exit status and boot timer writes.
#include <catch2/catch.hpp>

#include <array>
#include <vector>

#include "devices/legacy/debug_device.hpp"

using vmm::DebugDevice;

namespace {

struct Recorder {
    std::vector<uint8_t> exits;
    int timers = 0;
    DebugDevice::Callbacks callbacks() {
        return {[this](uint8_t status) { exits.push_back(status); }, [this] { ++timers; }};
    }
};

}  // namespace

TEST_CASE("DebugDevice exit offset passes the low byte", "[debug_device]") {
    Recorder recorder;
    DebugDevice port(0, 1, recorder.callbacks());  // port I/O: 0xf4 exit, 0xf5 timer
    std::array<uint8_t, 1> status{42};
    port.write(0, status);
    // A 32-bit write: only the low byte counts.
    std::array<uint8_t, 4> wide{0x07, 0x01, 0x02, 0x03};
    port.write(0, wide);
    CHECK(recorder.exits == std::vector<uint8_t>{42, 7});
    CHECK(recorder.timers == 0);
}

TEST_CASE("DebugDevice timer offset calls the boot timer", "[debug_device]") {
    Recorder recorder;
    DebugDevice mmio(4, 0, recorder.callbacks());  // MMIO page: timer at +0, exit at +4
    std::array<uint8_t, 4> value{1, 0, 0, 0};
    mmio.write(0, value);
    CHECK(recorder.timers == 1);
    CHECK(recorder.exits.empty());
    mmio.write(4, value);
    CHECK(recorder.exits == std::vector<uint8_t>{1});
    CHECK(recorder.timers == 1);
}

TEST_CASE("DebugDevice other offsets and empty writes do nothing", "[debug_device]") {
    Recorder recorder;
    DebugDevice mmio(4, 0, recorder.callbacks());
    std::array<uint8_t, 1> byte{9};
    mmio.write(1, byte);
    mmio.write(8, byte);
    mmio.write(0xffc, byte);
    mmio.write(4, std::span<const uint8_t>());
    CHECK(recorder.exits.empty());
    CHECK(recorder.timers == 0);
}

TEST_CASE("DebugDevice reads return zero", "[debug_device]") {
    Recorder recorder;
    DebugDevice port(0, 1, recorder.callbacks());
    std::array<uint8_t, 4> data{0xff, 0xff, 0xff, 0xff};
    port.read(0, data);
    CHECK(data == std::array<uint8_t, 4>{0, 0, 0, 0});
    CHECK(recorder.exits.empty());
}
