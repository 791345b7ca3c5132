// libFuzzer target: a hostile guest on the port I/O bus (and the MMIO debug
// page), laid out as the x86 platform lays it out: the 8250 at 0x3f8, the
// i8042 at 0x60, the debug ports at 0xf4, the ACPI sleep register at 0x3c0.
// Accesses are dispatched as Vcpu::handle_io does (width 1, 2 or 4, repeated
// for string I/O; an unclaimed read floats 0xff), between host events (serial
// input, Ctrl+Alt+Del). Besides sanitizer reports, it aborts when a device
// calls back (exit, reset, power-off, serial output, interrupt) for an access
// that cannot have asked for it, when the serial input queue overflows, or
// when more bytes wait in the keyboard than it can hold (checked after the
// last step by reading them all).
//
// Input: steps of 8 bytes (little-endian): u8 kind, u8 width, u16 port, u32 value
//   kind 0 OUT, 1 IN at the raw port
//   kind 2 OUT, 3 IN at device (port >> 8) % 5, offset port % 8 (the devices'
//          own ranges, so that mutations stay on them)
//   kind 4 host input to the 8250: value % 4096 + 1 bytes (65 bytes past
//          its capacity when value bit 31 is set)
//   kind 5 Ctrl+Alt+Del typed by the VMM
//   kind 6 MMIO write, 7 MMIO read on the debug page (offset port % 4096)
//   width: the access size is 1 << (width % 3), repeated (width >> 2) % 4 + 1 times
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "devices/legacy/acpi_power_off.hpp"
#include "devices/legacy/debug_device.hpp"
#include "devices/legacy/i8042.hpp"
#include "devices/legacy/serial_8250.hpp"
#include "fuzz_support.hpp"
#include "vmm/core/bus.hpp"

namespace {

constexpr uint16_t kCom1 = 0x3f8;
constexpr uint16_t kI8042 = 0x60;
constexpr uint16_t kDebug = 0xf4;
constexpr uint16_t kAcpiSleep = 0x3c0;
constexpr uint64_t kDebugMmio = 0xc0000000;
constexpr uint64_t kDebugMmioSize = 0x1000;
// The i8042's output buffer, its keyboard's 16-byte buffer, and the one byte
// a controller answer may push back into it.
constexpr unsigned kMaxKeyboardBytes = 1 + 16 + 1;

struct Step {
    uint8_t kind;
    uint8_t width;
    uint16_t port;
    uint32_t value;
};
static_assert(sizeof(Step) == 8);

// What the devices called back since the last step.
struct Events {
    unsigned serial_irqs = 0;
    unsigned keyboard_irqs = 0;
    size_t serial_bytes = 0;
    std::vector<uint8_t> exits;
    unsigned boot_timers = 0;
    unsigned resets = 0;
    unsigned power_offs = 0;

    bool none() const {
        return serial_irqs == 0 && keyboard_irqs == 0 && serial_bytes == 0 && exits.empty() &&
               boot_timers == 0 && resets == 0 && power_offs == 0;
    }
};

struct Platform {
    explicit Platform(Events& events) {
        serial = std::make_shared<vmm::Serial8250>([&events] { ++events.serial_irqs; },
                                                   [&events](std::span<const uint8_t> bytes) {
                                                       events.serial_bytes += bytes.size();
                                                       return bytes.size();
                                                   });
        i8042 = std::make_shared<vmm::I8042>([&events] { ++events.resets; },
                                             [&events] { ++events.keyboard_irqs; });
        vmm::DebugDevice::Callbacks callbacks{
            [&events](uint8_t status) { events.exits.push_back(status); },
            [&events] { ++events.boot_timers; },
        };
        pio.insert(kCom1, 8, serial);
        pio.insert(kI8042, 5, i8042);
        pio.insert(kDebug, 2, std::make_shared<vmm::DebugDevice>(0, 1, callbacks));
        pio.insert(kAcpiSleep, 1,
                   std::make_shared<vmm::AcpiPowerOff>([&events] { ++events.power_offs; }));
        mmio.insert(kDebugMmio, kDebugMmioSize,
                    std::make_shared<vmm::DebugDevice>(4, 0, callbacks));
    }

    vmm::Bus pio;
    vmm::Bus mmio;
    std::shared_ptr<vmm::Serial8250> serial;
    std::shared_ptr<vmm::I8042> i8042;
};

// Whether [port, port + size) lies inside [base, base + length).
bool inside(uint64_t port, size_t size, uint64_t base, uint64_t length) {
    return port >= base && port - base < length && size <= length - (port - base);
}

// The callbacks a port write may cause, by the device it reaches.
void check_write_events(const Events& events, uint64_t port, size_t size,
                        std::span<const uint8_t> bytes) {
    bool serial = inside(port, size, kCom1, 8);
    bool keyboard = inside(port, size, kI8042, 5);
    bool debug = inside(port, size, kDebug, 2);
    bool sleep = inside(port, size, kAcpiSleep, 1);
    FUZZ_CHECK(serial || (events.serial_irqs == 0 && events.serial_bytes == 0));
    // Each byte written to the UART sends at most one.
    FUZZ_CHECK(events.serial_bytes <= size);
    FUZZ_CHECK(keyboard || (events.keyboard_irqs == 0 && events.resets == 0));
    // The i8042 takes byte accesses only.
    FUZZ_CHECK(size == 1 || (events.keyboard_irqs == 0 && events.resets == 0));
    FUZZ_CHECK(events.resets <= 1 && events.keyboard_irqs <= 1);
    // The exit port is 0xf4 (its low byte counts), the timer 0xf5.
    if (!events.exits.empty()) {
        FUZZ_CHECK(debug && port == kDebug && events.exits.size() == 1);
        FUZZ_CHECK(events.exits[0] == bytes[0]);
    }
    FUZZ_CHECK(events.boot_timers == 0 || (debug && port == kDebug + 1));
    // Only the byte 0x34 pattern (SLP_EN with SLP_TYP 5) powers off.
    if (events.power_offs > 0) {
        FUZZ_CHECK(sleep && size == 1 && events.power_offs == 1);
        FUZZ_CHECK((bytes[0] & 0x3c) == 0x34);
    }
}

void out(Platform& platform, Events& events, uint64_t port, size_t size, unsigned count,
         uint32_t value) {
    for (unsigned i = 0; i < count; ++i) {
        uint8_t bytes[4];
        for (size_t b = 0; b < 4; ++b) {
            bytes[b] = uint8_t((value + i) >> (8 * b));
        }
        events = Events{};
        platform.pio.write(port, std::span<const uint8_t>(bytes, size));
        check_write_events(events, port, size, bytes);
    }
}

void in(Platform& platform, Events& events, uint64_t port, size_t size, unsigned count) {
    for (unsigned i = 0; i < count; ++i) {
        uint8_t bytes[4];
        std::memset(bytes, 0xcc, sizeof(bytes));
        events = Events{};
        if (!platform.pio.read(port, std::span(bytes, size))) {
            std::memset(bytes, 0xff, size);
        }
        // A read never stops the VM or sends output; it may raise the
        // keyboard's or the UART's interrupt (the next byte, THRE ack).
        FUZZ_CHECK(events.exits.empty() && events.resets == 0 && events.power_offs == 0 &&
                   events.serial_bytes == 0 && events.boot_timers == 0);
        FUZZ_CHECK(events.keyboard_irqs <= 1 && events.serial_irqs <= 1);
        if (!inside(port, size, kCom1, 8)) {
            FUZZ_CHECK(events.serial_irqs == 0);
        }
        if (!inside(port, size, kI8042, 5)) {
            FUZZ_CHECK(events.keyboard_irqs == 0);
        }
        // The debug and sleep registers read 0.
        if (inside(port, size, kDebug, 2) || inside(port, size, kAcpiSleep, 1)) {
            for (size_t b = 0; b < size; ++b) {
                FUZZ_CHECK(bytes[b] == 0);
            }
        }
    }
}

// Enables the keyboard interface and reads port 0x60 while the status says
// a byte is there: whatever the guest did, that ends.
void check_keyboard_bounded(Platform& platform, Events& events) {
    uint8_t enable = 0xae;
    platform.pio.write(kI8042 + 4, std::span<const uint8_t>(&enable, 1));
    unsigned waiting = 0;
    for (; waiting <= kMaxKeyboardBytes; ++waiting) {
        uint8_t status = 0;
        platform.pio.read(kI8042 + 4, std::span(&status, 1));
        if (!(status & 1)) {
            break;
        }
        uint8_t byte = 0;
        platform.pio.read(kI8042, std::span(&byte, 1));
    }
    FUZZ_CHECK(waiting <= kMaxKeyboardBytes);
    FUZZ_CHECK(events.resets == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Events events;
    Platform platform(events);
    static const uint16_t kBases[] = {kCom1, kI8042, kDebug, kAcpiSleep, kCom1 - 4};
    std::vector<uint8_t> input(4096 + 1 + 65);

    for (size_t i = 0; i + sizeof(Step) <= size; i += sizeof(Step)) {
        Step step;
        std::memcpy(&step, data + i, sizeof(step));
        size_t width = size_t(1) << (step.width % 3);
        unsigned count = (step.width >> 2) % 4 + 1;
        uint64_t device_port = kBases[(step.port >> 8) % 5] + step.port % 8;
        switch (step.kind % 8) {
            case 0:
                out(platform, events, step.port, width, count, step.value);
                break;
            case 1:
                in(platform, events, step.port, width, count);
                break;
            case 2:
                out(platform, events, device_port, width, count, step.value);
                break;
            case 3:
                in(platform, events, device_port, width, count);
                break;
            case 4: {
                size_t room = platform.serial->input_room();
                size_t length = step.value % 4096 + 1;
                if (step.value & 0x80000000u) {
                    length = std::min(room + 65, input.size());
                }
                std::fill(input.begin(), input.end(), uint8_t(step.port));
                size_t taken = platform.serial->enqueue_input(std::span(input.data(), length));
                FUZZ_CHECK(taken == std::min(length, room));
                FUZZ_CHECK(platform.serial->input_room() == room - taken);
                break;
            }
            case 5:
                events = Events{};
                (void)platform.i8042->send_ctrl_alt_del();
                FUZZ_CHECK(events.keyboard_irqs <= 1 && events.resets == 0);
                break;
            case 6:
            case 7: {
                uint64_t address = kDebugMmio + step.port % kDebugMmioSize;
                size_t mmio_width = step.width % 8 + 1;  // KVM's MMIO exits carry 1..8 bytes
                uint8_t bytes[8];
                std::memset(bytes, uint8_t(step.value), sizeof(bytes));
                events = Events{};
                if (step.kind % 8 == 6) {
                    platform.mmio.write(address, std::span<const uint8_t>(bytes, mmio_width));
                    bool exit_register = address == kDebugMmio + 4;
                    FUZZ_CHECK(events.exits.size() == (exit_register ? 1u : 0u));
                    FUZZ_CHECK(events.boot_timers == (address == kDebugMmio ? 1u : 0u));
                } else {
                    bool claimed = platform.mmio.read(address, std::span(bytes, mmio_width));
                    FUZZ_CHECK(claimed == inside(address, mmio_width, kDebugMmio, kDebugMmioSize));
                    FUZZ_CHECK(events.none());
                }
                break;
            }
        }
    }
    events = Events{};
    check_keyboard_bounded(platform, events);
    return 0;
}
