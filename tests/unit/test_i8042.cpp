// I8042: command byte, self-test, status and the 0xFE reset pulse.
#include <catch2/catch.hpp>

#include <array>

#include "devices/legacy/i8042.hpp"

using vmm::I8042;

namespace {

constexpr uint64_t kDataPort = 0;     // 0x60
constexpr uint64_t kCommandPort = 4;  // 0x64
constexpr uint8_t kOutputFull = 0x01;

struct Controller {
    int resets = 0;
    I8042 device{[this] { ++resets; }};

    uint8_t in(uint64_t offset) {
        std::array<uint8_t, 1> byte{0xee};
        device.read(offset, byte);
        return byte[0];
    }
    void out(uint64_t offset, uint8_t value) {
        std::array<uint8_t, 1> byte{value};
        device.write(offset, byte);
    }
};

}  // namespace

TEST_CASE("I8042 0xFE on the command port pulses reset", "[i8042]") {
    Controller kbd;
    kbd.out(kCommandPort, 0xfe);
    CHECK(kbd.resets == 1);
    kbd.out(kCommandPort, 0xfe);
    CHECK(kbd.resets == 2);
}

TEST_CASE("I8042 0xFE on the data port does not reset", "[i8042]") {
    Controller kbd;
    kbd.out(kDataPort, 0xfe);
    kbd.out(kCommandPort, 0xfd);
    CHECK(kbd.resets == 0);
}

TEST_CASE("I8042 status has the system flag and OBF only with output", "[i8042]") {
    Controller kbd;
    uint8_t status = kbd.in(kCommandPort);
    CHECK((status & kOutputFull) == 0);
    CHECK((status & 0x04) != 0);
    kbd.out(kCommandPort, 0xaa);
    CHECK((kbd.in(kCommandPort)&kOutputFull) != 0);
    kbd.in(kDataPort);
    CHECK((kbd.in(kCommandPort)&kOutputFull) == 0);
}

TEST_CASE("I8042 0x20 reads the command byte", "[i8042]") {
    Controller kbd;
    kbd.out(kCommandPort, 0x20);
    CHECK(kbd.in(kDataPort) == 0x45);
    // Read once: the output buffer is empty afterwards.
    CHECK(kbd.in(kDataPort) == 0);
}

TEST_CASE("I8042 0x60 writes the command byte", "[i8042]") {
    Controller kbd;
    kbd.out(kCommandPort, 0x60);
    kbd.out(kDataPort, 0x65);
    kbd.out(kCommandPort, 0x20);
    CHECK(kbd.in(kDataPort) == 0x65);
    // A later data byte is no longer taken as the command byte.
    kbd.out(kDataPort, 0x11);
    kbd.out(kCommandPort, 0x20);
    CHECK(kbd.in(kDataPort) == 0x65);
}

TEST_CASE("I8042 self-test 0xAA answers 0x55", "[i8042]") {
    Controller kbd;
    kbd.out(kCommandPort, 0xaa);
    CHECK(kbd.in(kDataPort) == 0x55);
}

TEST_CASE("I8042 interface test 0xAB answers 0", "[i8042]") {
    Controller kbd;
    kbd.out(kCommandPort, 0xab);
    CHECK((kbd.in(kCommandPort)&kOutputFull) != 0);
    CHECK(kbd.in(kDataPort) == 0x00);
}

TEST_CASE("I8042 ignores accesses wider than a byte", "[i8042]") {
    Controller kbd;
    std::array<uint8_t, 2> word{0xfe, 0xfe};
    kbd.device.write(kCommandPort, word);
    CHECK(kbd.resets == 0);
    std::array<uint8_t, 2> read{0, 0};
    kbd.device.read(kCommandPort, read);
    CHECK(read == std::array<uint8_t, 2>{0xff, 0xff});
}
