// I8042: command byte, self-test, status, the 0xFE reset pulse, the keyboard
// port Linux probes and Ctrl+Alt+Del.
#include <catch2/catch.hpp>

#include <array>
#include <vector>

#include "devices/legacy/i8042.hpp"

using vmm::I8042;

namespace {

constexpr uint64_t kDataPort = 0;     // 0x60
constexpr uint64_t kCommandPort = 4;  // 0x64
constexpr uint8_t kOutputFull = 0x01;

struct Controller {
    int resets = 0;
    int irqs = 0;
    I8042 device{[this] { ++resets; }, [this] { ++irqs; }};

    uint8_t in(uint64_t offset) {
        std::array<uint8_t, 1> byte{0xee};
        device.read(offset, byte);
        return byte[0];
    }
    void out(uint64_t offset, uint8_t value) {
        std::array<uint8_t, 1> byte{value};
        device.write(offset, byte);
    }
    bool output_full() { return (in(kCommandPort)&kOutputFull) != 0; }
    // Reads bytes while the status register says one is waiting.
    std::vector<uint8_t> drain() {
        std::vector<uint8_t> bytes;
        while (output_full() && bytes.size() < 64) {
            bytes.push_back(in(kDataPort));
        }
        return bytes;
    }
    void write_command_byte(uint8_t value) {
        out(kCommandPort, 0x60);
        out(kDataPort, value);
    }
};

const std::vector<uint8_t> kCtrlAltDel = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};

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

TEST_CASE("I8042 Ctrl+Alt+Del: eight scan codes, one IRQ each", "[i8042]") {
    Controller kbd;
    CHECK_FALSE(kbd.output_full());
    CHECK(kbd.device.send_ctrl_alt_del());
    CHECK(kbd.irqs == 1);
    std::vector<uint8_t> got;
    while (kbd.output_full()) {
        CHECK(kbd.irqs == static_cast<int>(got.size()) + 1);  // raised for the byte waiting
        got.push_back(kbd.in(kDataPort));
    }
    CHECK(got == kCtrlAltDel);
    CHECK(kbd.irqs == 8);
    CHECK(kbd.in(kDataPort) == 0);
    CHECK(kbd.irqs == 8);
    CHECK(kbd.resets == 0);
}

TEST_CASE("I8042 Ctrl+Alt+Del without the keyboard interrupt bit is polled", "[i8042]") {
    Controller kbd;
    kbd.write_command_byte(0x44);
    CHECK(kbd.device.send_ctrl_alt_del());
    CHECK(kbd.drain() == kCtrlAltDel);
    CHECK(kbd.irqs == 0);
}

TEST_CASE("I8042 a disabled keyboard holds its bytes until enabled", "[i8042]") {
    Controller kbd;
    kbd.out(kCommandPort, 0xad);
    CHECK(kbd.device.send_ctrl_alt_del());
    CHECK_FALSE(kbd.output_full());
    CHECK(kbd.irqs == 0);
    kbd.out(kCommandPort, 0x20);
    CHECK(kbd.in(kDataPort) == 0x55);  // 0x45 | keyboard disabled
    kbd.out(kCommandPort, 0xae);
    CHECK(kbd.irqs == 1);
    CHECK(kbd.drain() == kCtrlAltDel);
    CHECK(kbd.irqs == 8);
}

TEST_CASE("I8042 enabling the interrupt with a key waiting raises IRQ 1", "[i8042]") {
    Controller kbd;
    kbd.write_command_byte(0x44);
    CHECK(kbd.device.send_ctrl_alt_del());
    CHECK(kbd.irqs == 0);
    kbd.write_command_byte(0x45);
    CHECK(kbd.irqs == 1);
    CHECK(kbd.drain() == kCtrlAltDel);
    CHECK(kbd.irqs == 8);
}

TEST_CASE("I8042 a controller answer does not lose a waiting key", "[i8042]") {
    Controller kbd;
    CHECK(kbd.device.send_ctrl_alt_del());
    kbd.out(kCommandPort, 0x20);
    CHECK(kbd.in(kDataPort) == 0x45);
    CHECK(kbd.drain() == kCtrlAltDel);
}

TEST_CASE("I8042 keyboard commands are answered like a PS/2 keyboard", "[i8042]") {
    Controller kbd;
    using Bytes = std::vector<uint8_t>;
    kbd.out(kDataPort, 0xf2);
    CHECK(kbd.drain() == Bytes{0xfa, 0xab, 0x83});
    CHECK(kbd.irqs == 3);
    kbd.out(kDataPort, 0xff);
    CHECK(kbd.drain() == Bytes{0xfa, 0xaa});
    kbd.out(kDataPort, 0xf4);
    CHECK(kbd.drain() == Bytes{0xfa});
    kbd.out(kDataPort, 0xed);  // set LEDs: the parameter is ACKed too
    CHECK(kbd.drain() == Bytes{0xfa});
    kbd.out(kDataPort, 0x07);
    CHECK(kbd.drain() == Bytes{0xfa});
    kbd.out(kDataPort, 0xf3);
    kbd.out(kDataPort, 0x00);
    CHECK(kbd.drain() == Bytes{0xfa, 0xfa});
    kbd.out(kDataPort, 0xf0);  // get scan code set
    kbd.out(kDataPort, 0x00);
    CHECK(kbd.drain() == Bytes{0xfa, 0xfa, 0x02});
    kbd.out(kDataPort, 0xee);
    CHECK(kbd.drain() == Bytes{0xee});
    kbd.out(kDataPort, 0xfe);  // resend
    CHECK(kbd.drain() == Bytes{0xee});
    kbd.out(kDataPort, 0x01);
    CHECK(kbd.drain() == Bytes{0xfe});
    CHECK(kbd.resets == 0);
}

TEST_CASE("I8042 a keyboard with scanning off types nothing", "[i8042]") {
    Controller kbd;
    kbd.out(kDataPort, 0xf5);
    CHECK(kbd.drain() == std::vector<uint8_t>{0xfa});
    CHECK_FALSE(kbd.device.send_ctrl_alt_del());
    CHECK_FALSE(kbd.output_full());
    kbd.out(kDataPort, 0xf4);
    CHECK(kbd.drain() == std::vector<uint8_t>{0xfa});
    CHECK(kbd.device.send_ctrl_alt_del());
    CHECK(kbd.drain() == kCtrlAltDel);
}

TEST_CASE("I8042 keyboard buffer is bounded", "[i8042]") {
    Controller kbd;
    CHECK(kbd.device.send_ctrl_alt_del());
    CHECK(kbd.device.send_ctrl_alt_del());
    CHECK_FALSE(kbd.device.send_ctrl_alt_del());
    std::vector<uint8_t> twice = kCtrlAltDel;
    twice.insert(twice.end(), kCtrlAltDel.begin(), kCtrlAltDel.end());
    CHECK(kbd.drain() == twice);
    CHECK(kbd.device.send_ctrl_alt_del());
}

TEST_CASE("I8042 output port: clearing bit 0 resets", "[i8042]") {
    Controller kbd;
    kbd.out(kCommandPort, 0xd0);
    CHECK(kbd.in(kDataPort) == 0x03);
    kbd.out(kCommandPort, 0xd1);
    kbd.out(kDataPort, 0x03);
    CHECK(kbd.resets == 0);
    kbd.out(kCommandPort, 0xd1);
    kbd.out(kDataPort, 0x02);
    CHECK(kbd.resets == 1);
}

TEST_CASE("I8042 0xD2 puts a byte in the output buffer as the keyboard", "[i8042]") {
    Controller kbd;
    kbd.out(kCommandPort, 0xd2);
    kbd.out(kDataPort, 0x42);
    CHECK(kbd.irqs == 1);
    CHECK(kbd.drain() == std::vector<uint8_t>{0x42});
}

// What Linux 6.1's i8042 and atkbd drivers do at boot, in order: the probe
// must find the keyboard port, no AUX port, and a keyboard.
TEST_CASE("I8042 passes Linux's i8042 and atkbd probe", "[i8042]") {
    Controller kbd;
    using Bytes = std::vector<uint8_t>;
    // i8042_controller_check: flush finds nothing.
    CHECK(kbd.drain().empty());
    // i8042_controller_selftest (i8042.reset), then i8042_controller_init.
    kbd.out(kCommandPort, 0xaa);
    CHECK(kbd.drain() == Bytes{0x55});
    kbd.out(kCommandPort, 0x20);
    uint8_t ctr = kbd.in(kDataPort);
    CHECK(ctr == 0x45);
    CHECK((kbd.in(kCommandPort)&0x10) != 0);  // no keylock
    ctr = (ctr | 0x10) & ~0x01;               // keyboard disabled, no interrupt
    kbd.write_command_byte(ctr);
    CHECK(kbd.drain().empty());
    // i8042_check_aux: the loopback fails at once (no AUX-data bit), the AUX
    // interface test reports an error: no AUX port.
    kbd.out(kCommandPort, 0xd3);
    kbd.out(kDataPort, 0x5a);
    uint8_t status = kbd.in(kCommandPort);
    CHECK((status & kOutputFull) != 0);
    CHECK((status & 0x20) == 0);
    kbd.out(kCommandPort, 0xa9);
    CHECK(kbd.drain() == Bytes{0x02});
    ctr = (ctr | 0x20) & ~0x02;
    kbd.write_command_byte(ctr);
    // i8042_enable_kbd_port.
    ctr = (ctr & ~0x10) | 0x01;
    kbd.write_command_byte(ctr);
    CHECK(kbd.irqs == 0);
    // atkbd_probe: GETID, RESET_DIS; atkbd_reset_state: LEDs, typematic;
    // atkbd_activate: ENABLE. Each answer comes with IRQ 1.
    kbd.out(kDataPort, 0xf2);
    CHECK(kbd.drain() == Bytes{0xfa, 0xab, 0x83});
    kbd.out(kDataPort, 0xf5);
    CHECK(kbd.drain() == Bytes{0xfa});
    kbd.out(kDataPort, 0xed);
    CHECK(kbd.drain() == Bytes{0xfa});
    kbd.out(kDataPort, 0x00);
    CHECK(kbd.drain() == Bytes{0xfa});
    kbd.out(kDataPort, 0xf3);
    CHECK(kbd.drain() == Bytes{0xfa});
    kbd.out(kDataPort, 0x00);
    CHECK(kbd.drain() == Bytes{0xfa});
    kbd.out(kDataPort, 0xf4);
    CHECK(kbd.drain() == Bytes{0xfa});
    CHECK(kbd.irqs == 9);
    // Then the VMM types Ctrl+Alt+Del, and the guest reboots with reboot=k.
    CHECK(kbd.device.send_ctrl_alt_del());
    CHECK(kbd.drain() == kCtrlAltDel);
    CHECK(kbd.irqs == 17);
    kbd.out(kCommandPort, 0xfe);
    CHECK(kbd.resets == 1);
}

TEST_CASE("I8042 without a keyboard IRQ callback still types", "[i8042]") {
    int resets = 0;
    I8042 device{[&] { ++resets; }};
    CHECK(device.send_ctrl_alt_del());
    std::array<uint8_t, 1> byte{};
    device.read(kCommandPort, byte);
    CHECK((byte[0] & kOutputFull) != 0);
    device.read(kDataPort, byte);
    CHECK(byte[0] == 0x1d);
}

TEST_CASE("I8042 a guest's unanswered keyboard commands stay within the buffer", "[i8042]") {
    Controller kbd;
    // Resend (0xfe) keeps the keyboard's buffer; the guest never reads.
    for (int i = 0; i < 100000; ++i) {
        kbd.out(kDataPort, 0xfe);
    }
    std::vector<uint8_t> bytes = kbd.drain();
    CHECK(bytes.size() <= 17);  // the output buffer plus 16 in the keyboard
    CHECK_FALSE(bytes.empty());
}

namespace {

// What the guest can read back: every byte the status register announces,
// with the keyboard interface enabled so that the keyboard's bytes come too.
size_t readable_bytes(Controller& kbd) {
    kbd.out(kCommandPort, 0xae);
    size_t count = 0;
    while (kbd.output_full() && count < 100000) {
        kbd.in(kDataPort);
        ++count;
    }
    return count;
}

// The output buffer plus the keyboard's 16 bytes.
constexpr size_t kMostQueued = 17;

}  // namespace

// A guest that sends commands forever and never reads: whatever it sends, no
// queue inside the controller may grow past what a real one holds.
TEST_CASE("I8042 each command repeated a million times unread stays bounded", "[i8042]") {
    using Write = std::pair<uint64_t, uint8_t>;
    const std::vector<std::vector<Write>> paths = {
        // Controller commands with an answer, and those that write a byte
        // to be read back (0xd2 as the keyboard, 0xd3 AUX loopback).
        {{kCommandPort, 0x20}},
        {{kCommandPort, 0xa9}},
        {{kCommandPort, 0xaa}},
        {{kCommandPort, 0xab}},
        {{kCommandPort, 0xd0}},
        {{kCommandPort, 0xd2}, {kDataPort, 0x42}},
        {{kCommandPort, 0xd3}, {kDataPort, 0x42}},
        // Keyboard commands: echo, reset, get ID, resend, a parameter.
        {{kDataPort, 0xee}},
        {{kDataPort, 0xff}},
        {{kDataPort, 0xf2}},
        {{kDataPort, 0xfe}},
        {{kDataPort, 0xed}, {kDataPort, 0x07}},
        {{kDataPort, 0xf0}, {kDataPort, 0x00}},
        // A keyboard byte in the output buffer pushed back by a controller
        // answer, again and again.
        {{kCommandPort, 0xd2}, {kDataPort, 0x42}, {kCommandPort, 0xaa}},
        {{kCommandPort, 0xd2}, {kDataPort, 0x42}, {kCommandPort, 0x20}},
        {{kDataPort, 0xee}, {kCommandPort, 0xaa}},
        {{kDataPort, 0xfe}, {kCommandPort, 0xab}},
        {{kCommandPort, 0xad}, {kDataPort, 0xf2}, {kCommandPort, 0xd3}, {kDataPort, 0x01}},
    };
    for (size_t p = 0; p < paths.size(); ++p) {
        Controller kbd;
        for (int i = 0; i < 1000000; ++i) {
            for (auto [port, value] : paths[p]) {
                kbd.out(port, value);
            }
        }
        INFO("path " << p);
        CHECK(readable_bytes(kbd) <= kMostQueued);
        CHECK(kbd.resets == 0);
    }
}

TEST_CASE("I8042 every byte on either port, repeated unread, stays bounded", "[i8042]") {
    for (uint64_t port : {kDataPort, kCommandPort}) {
        for (int value = 0; value < 256; ++value) {
            Controller kbd;
            // Each byte twice per round: the second is the parameter of a
            // command that takes one.
            for (int i = 0; i < 10000; ++i) {
                kbd.out(port, uint8_t(value));
                kbd.out(kDataPort, uint8_t(value));
            }
            INFO("port " << port << " byte " << value);
            CHECK(readable_bytes(kbd) <= kMostQueued);
        }
    }
}

TEST_CASE("I8042 a random mix of writes, unread, stays bounded", "[i8042]") {
    Controller kbd;
    uint32_t state = 12345;
    for (int round = 0; round < 1000; ++round) {
        for (int i = 0; i < 1000; ++i) {
            state = state * 1664525u + 1013904223u;  // an LCG: the same mix every run
            kbd.out((state >> 31) ? kCommandPort : kDataPort, uint8_t(state >> 16));
        }
        INFO("round " << round);
        REQUIRE(readable_bytes(kbd) <= kMostQueued);
    }
}
