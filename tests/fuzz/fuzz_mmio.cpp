// libFuzzer target: a hostile driver programming the virtio-mmio register
// file. The input picks a device (virtio-rng, virtio-blk on a scratch image,
// read-write or read-only, or virtio-console), then a script of MMIO
// accesses of every width at every offset of the 4 KiB window, turns of the
// I/O thread and writes to guest RAM, then the guest RAM itself. Besides
// sanitizer reports, it aborts when anything escapes the transport, when the
// status register skips an initialisation step, or when a fixed register
// reads wrong.
//
// Input (little-endian):
//   u8 device: 0 rng, 1 block, 2 block read-only, 3 console (modulo 4)
//   u8 number of script steps, u16 unused
//   steps, 8 bytes each: u8 kind, u8 width, u16 offset, u32 value
//     kind 0 write `width % 8 + 1` bytes of `value` (repeated) at `offset % 4096`
//     kind 1 read the same way and check what comes back
//     kind 2 one turn of the I/O thread: every signalled queue and ready
//            backend is processed, as VirtioIoDispatcher does
//     kind 3 the driver writes `value` (4 bytes) to guest RAM at `offset`
//     kind 4 write the 32-bit register at `offset % 256`, aligned (the
//            common case, so that mutations of register values count)
//     kind 5 the host side of the console (nothing for other devices):
//            `offset % 4096 + 1` bytes of input when `width` is even, else
//            a resize to `value` (columns low, rows high)
//   guest RAM: the rest, at guest address 0 (64 KiB of RAM)
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "devices/virtio/block/block_device.hpp"
#include "devices/virtio/console/console_device.hpp"
#include "devices/virtio/mmio_transport.hpp"
#include "devices/virtio/rng/rng_device.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "fuzz_support.hpp"
#include "vmm/base/logger.hpp"

namespace {

using vmm::GuestAddress;

constexpr uint64_t kRamSize = 64 << 10;
constexpr uint64_t kImageSectors = 64;
constexpr uint64_t kConfigOffset = 0x100;
constexpr uint32_t kStatusRegister = 0x70;

struct Header {
    uint8_t device;
    uint8_t steps;
    uint16_t unused;
};
static_assert(sizeof(Header) == 4);

struct Step {
    uint8_t kind;
    uint8_t width;
    uint16_t offset;
    uint32_t value;
};
static_assert(sizeof(Step) == 8);

std::unique_ptr<vmm::VirtioDevice> make_device(uint8_t choice) {
    static fuzz::ScratchImage scratch("mmio", kImageSectors);
    switch (choice % 4) {
        case 0:
            return std::make_unique<vmm::RngDevice>();
        case 1:
        case 2: {
            bool read_only = choice % 4 == 2;
            auto image = std::make_unique<vmm::DiskImage>(scratch.renew(), read_only);
            return std::make_unique<vmm::BlockDevice>(std::move(image), "fuzz",
                                                      vmm::BlockDevice::Engine::Sync);
        }
        default:
            return std::make_unique<vmm::ConsoleDevice>(
                [](std::span<const uint8_t> bytes) { return bytes.size(); }, 80, 25);
    }
}

void check_read(const vmm::VirtioDevice& device, const vmm::MmioTransport& transport,
                uint64_t offset, std::span<const uint8_t> data) {
    if (offset >= kConfigOffset) {
        // Past the device's config space every byte reads 0.
        uint64_t config_size = device.config_size();
        for (size_t i = 0; i < data.size(); ++i) {
            if (offset - kConfigOffset + i >= config_size) {
                FUZZ_CHECK(data[i] == 0);
            }
        }
        return;
    }
    if (data.size() != 4 || offset % 4 != 0) {
        for (uint8_t byte : data) {
            FUZZ_CHECK(byte == 0);
        }
        return;
    }
    uint32_t value;
    std::memcpy(&value, data.data(), 4);
    switch (offset) {
        case 0x000:
            FUZZ_CHECK(value == 0x74726976);
            break;
        case 0x004:
            FUZZ_CHECK(value == 2);
            break;
        case 0x008:
            FUZZ_CHECK(value == device.device_type());
            break;
        case 0x060:
            FUZZ_CHECK((value & ~3u) == 0);
            break;
        case kStatusRegister:
            FUZZ_CHECK(value == transport.status());
            break;
        default:
            break;
    }
}

uint32_t read_register(vmm::MmioTransport& transport, uint64_t offset) {
    uint32_t value = 0;
    transport.read(offset, std::span(reinterpret_cast<uint8_t*>(&value), 4));
    return value;
}

// After the driver writes 0 to the status (VIRTIO 1.2, 4.2.2.1): the device
// is back to its initial state, whatever it was doing.
void check_reset(vmm::MmioTransport& transport) {
    FUZZ_CHECK(transport.status() == 0);
    FUZZ_CHECK(read_register(transport, 0x060) == 0);  // interrupt status
    for (uint32_t queue = 0; queue < transport.queue_count(); ++queue) {
        uint32_t select = queue;
        transport.write(0x030, std::span(reinterpret_cast<const uint8_t*>(&select), 4));
        FUZZ_CHECK(read_register(transport, 0x044) == 0);  // not ready
    }
    uint32_t zero = 0;
    transport.write(0x030, std::span(reinterpret_cast<const uint8_t*>(&zero), 4));
}

// One turn of the I/O thread: what VirtioIoDispatcher runs when a queue's
// eventfd or a backend's fd is ready.
void io_thread_turn(vmm::MmioTransport& transport) {
    for (size_t i = 0; i < transport.queue_count(); ++i) {
        if (fuzz::readable(transport.queue_event(i).fd())) {
            transport.process_queue_event(i);
        }
    }
    for (size_t i = 0; i < transport.backend_count(); ++i) {
        auto interest = transport.backend_interest(i);
        int fd = transport.backend_fd(i);
        if (fd >= 0 && interest.readable && fuzz::readable(fd)) {
            transport.process_backend_event(i);
        }
    }
}

}  // namespace

// The transport logs every first violation of a device: thousands of lines a
// second here. They are still formatted, but written to /dev/null.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    vmm::LoggerConfig quiet;
    quiet.log_path = "/dev/null";
    quiet.level = vmm::LogLevel::Trace;
    vmm::Logger::instance().configure(quiet);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Header header;
    if (size < sizeof(header)) {
        return -1;
    }
    std::memcpy(&header, data, sizeof(header));
    size_t steps = std::min<size_t>(header.steps, (size - sizeof(header)) / sizeof(Step));
    const uint8_t* script = data + sizeof(header);
    size_t ram_start = sizeof(header) + steps * sizeof(Step);

    auto memory = vmm::GuestMemory::create({{GuestAddress(0), kRamSize}});
    size_t ram_bytes = std::min<size_t>(size - ram_start, kRamSize);
    memory.write(GuestAddress(0), std::span(data + ram_start, ram_bytes));

    auto owned = make_device(header.device);
    const vmm::VirtioDevice& device = *owned;
    auto* console = dynamic_cast<vmm::ConsoleDevice*>(owned.get());
    vmm::MmioTransport transport(memory, std::move(owned), "fuzz");

    for (size_t i = 0; i < steps; ++i) {
        Step step;
        std::memcpy(&step, script + i * sizeof(Step), sizeof(step));
        uint8_t bytes[8];
        for (size_t b = 0; b < sizeof(bytes); ++b) {
            bytes[b] = uint8_t(step.value >> (8 * (b % 4)));
        }
        uint64_t offset = step.offset % vmm::MmioTransport::kSize;
        size_t width = step.width % 8 + 1;
        switch (step.kind % 6) {
            case 0:
                transport.write(offset, std::span<const uint8_t>(bytes, width));
                break;
            case 1: {
                uint8_t out[8];
                std::memset(out, 0xcc, sizeof(out));
                transport.read(offset, std::span(out, width));
                check_read(device, transport, offset, std::span(out, width));
                break;
            }
            case 2:
                io_thread_turn(transport);
                break;
            case 3:
                if (step.offset + 4u <= kRamSize) {
                    memory.write_obj(GuestAddress(step.offset), step.value);
                }
                break;
            case 4: {
                uint64_t reg = step.offset % kConfigOffset & ~uint64_t(3);
                uint32_t before = transport.status();
                transport.write(reg, std::span<const uint8_t>(bytes, 4));
                if (reg == kStatusRegister && step.value == 0) {
                    check_reset(transport);
                } else if (reg == kStatusRegister) {
                    // Bits are only added, never cleared by the driver.
                    FUZZ_CHECK((transport.status() & before) == before);
                }
                break;
            }
            case 5:
                if (console != nullptr && step.width % 2 == 0) {
                    static const std::vector<uint8_t> input(vmm::MmioTransport::kSize, 'i');
                    auto buffer = console->input();
                    size_t room = buffer->input_room();
                    size_t length = step.offset % input.size() + 1;
                    size_t taken = buffer->enqueue_input(std::span(input.data(), length));
                    FUZZ_CHECK(taken == std::min(room, length));
                } else if (console != nullptr) {
                    console->set_size(uint16_t(step.value), uint16_t(step.value >> 16));
                }
                break;
        }
        fuzz::check_status(transport.status());
    }
    (void)transport.metrics();
    return 0;
}
