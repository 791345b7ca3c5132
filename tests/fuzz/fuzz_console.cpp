// libFuzzer target: a hostile driver talking to virtio-console while host
// input arrives. The input is a 32-byte header (both queues' layout and a
// script of device calls) followed by guest RAM. Output goes to /dev/null.
// Besides sanitizer reports, it aborts when anything but a QueueError leaves
// the device, when the device touches a queue again after reporting a
// violation, or when the input buffer takes more than it has room for.
//
// Header (little-endian):
//   u8 flags: 1 INDIRECT_DESC, 2 EVENT_IDX, 4 F_SIZE, 8 receiveq not ready,
//             16 transmitq not ready
//   u8 number of script steps (at most 14)
//   u16 receiveq size, u16 transmitq size
//   u16 receiveq descriptor table, available ring, used ring
//   u16 transmitq descriptor table, available ring, used ring
//   u8 script[14]: low 3 bits the call, high 5 bits its argument:
//     0 process_queue(receiveq)   1 process_queue(transmitq)
//     2 enqueue (arg+1)*2048 bytes of input   3 process_backend(0)
//     4 set_size(arg, 3*arg)      5 write_config(arg % 16, 4 bytes)
//     6 read_config(arg % 16, 4 bytes)   7 reset, then activate again
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "devices/virtio/console/console_device.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "fuzz_support.hpp"

namespace {

using vmm::ConsoleDevice;
using vmm::GuestAddress;

constexpr uint64_t kRamSize = 64 << 10;
constexpr size_t kScriptSteps = 14;

struct Header {
    uint8_t flags;
    uint8_t steps;
    uint16_t rx_size;
    uint16_t tx_size;
    uint16_t rx_desc;
    uint16_t rx_avail;
    uint16_t rx_used;
    uint16_t tx_desc;
    uint16_t tx_avail;
    uint16_t tx_used;
    uint8_t script[kScriptSteps];
};
static_assert(sizeof(Header) == 32);

constexpr uint8_t kFlagIndirect = 1;
constexpr uint8_t kFlagEventIdx = 2;
constexpr uint8_t kFlagSize = 4;
constexpr uint8_t kFlagRxNotReady = 8;
constexpr uint8_t kFlagTxNotReady = 16;

using fuzz::CountingInterrupt;

// Takes every byte, as the VMM's output queue does while it has room.
size_t discard_output(std::span<const uint8_t> bytes) {
    return bytes.size();
}

// What the transport does at DRIVER_OK; false when it would refuse.
bool configure(const Header& header, const vmm::GuestMemory& memory, uint64_t features,
               std::vector<vmm::Queue>& queues) {
    struct Layout {
        uint16_t size, desc, avail, used;
        bool ready;
    };
    Layout layouts[2] = {
        {header.rx_size, header.rx_desc, header.rx_avail, header.rx_used,
         !(header.flags & kFlagRxNotReady)},
        {header.tx_size, header.tx_desc, header.tx_avail, header.tx_used,
         !(header.flags & kFlagTxNotReady)},
    };
    for (size_t i = 0; i < 2; ++i) {
        vmm::Queue& queue = queues[i];
        queue.reset();
        queue.set_size(layouts[i].size);
        queue.set_desc_table(GuestAddress(layouts[i].desc));
        queue.set_avail_ring(GuestAddress(layouts[i].avail));
        queue.set_used_ring(GuestAddress(layouts[i].used));
        queue.set_features(features);
        queue.set_ready(layouts[i].ready);
        if (queue.ready()) {
            try {
                queue.validate_layout(memory);
            } catch (const vmm::QueueError&) {
                return false;
            }
        }
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Header header;
    if (size < sizeof(header)) {
        return -1;
    }
    std::memcpy(&header, data, sizeof(header));
    auto memory = vmm::GuestMemory::create({{GuestAddress(0), kRamSize}});
    size_t ram_bytes = std::min<size_t>(size - sizeof(header), kRamSize);
    memory.write(GuestAddress(0), std::span(data + sizeof(header), ram_bytes));

    uint64_t features = 1ull << vmm::VIRTIO_F_VERSION_1;
    if (header.flags & kFlagIndirect) {
        features |= 1ull << vmm::VIRTIO_F_RING_INDIRECT_DESC;
    }
    if (header.flags & kFlagEventIdx) {
        features |= 1ull << vmm::VIRTIO_F_RING_EVENT_IDX;
    }
    if (header.flags & kFlagSize) {
        features |= 1ull << ConsoleDevice::kFeatureSize;
    }

    ConsoleDevice device(discard_output, 80, 25);
    auto input = device.input();
    std::vector<vmm::Queue> queues{vmm::Queue(ConsoleDevice::kQueueSize),
                                   vmm::Queue(ConsoleDevice::kQueueSize)};
    if (!configure(header, memory, features, queues)) {
        return 0;
    }
    CountingInterrupt interrupt;
    device.activate(memory, features, queues, interrupt);

    // Built once: filling 64 KiB per input cost three quarters of the time.
    static const std::vector<uint8_t> bytes = [] {
        std::vector<uint8_t> pattern(32 * 2048);
        for (size_t i = 0; i < pattern.size(); ++i) {
            pattern[i] = static_cast<uint8_t>(i * 31 + 7);
        }
        return pattern;
    }();
    bool needs_reset = false;  // as the transport tracks DEVICE_NEEDS_RESET
    size_t steps = std::min<size_t>(header.steps, kScriptSteps);
    for (size_t step = 0; step < steps; ++step) {
        uint8_t op = header.script[step] & 7;
        uint8_t arg = header.script[step] >> 3;
        try {
            switch (op) {
                case 0:
                case 1:
                    // The transport stops notifying a broken device.
                    if (!needs_reset) {
                        device.process_queue(op);
                    }
                    break;
                case 2: {
                    size_t room = input->input_room();
                    size_t taken = input->enqueue_input(std::span(bytes).first((arg + 1) * 2048));
                    FUZZ_CHECK(taken <= room);
                    break;
                }
                case 3:
                    // ...but it does call the backend: the device must not
                    // touch the broken queues (no second violation).
                    try {
                        device.process_backend(0);
                    } catch (const vmm::QueueError&) {
                        FUZZ_CHECK(!needs_reset);
                        throw;
                    }
                    break;
                case 4:
                    device.set_size(arg, static_cast<uint16_t>(3 * arg));
                    break;
                case 5: {
                    uint8_t word[4] = {'f', 'u', 'z', 'z'};
                    uint64_t offset = arg % 16;
                    if (offset < device.config_size()) {
                        size_t length = std::min<size_t>(4, device.config_size() - offset);
                        device.write_config(offset, std::span(word, length));
                    }
                    break;
                }
                case 6: {
                    uint8_t word[4] = {};
                    uint64_t offset = arg % 16;
                    if (offset < device.config_size()) {
                        size_t length = std::min<size_t>(4, device.config_size() - offset);
                        device.read_config(offset, std::span(word, length));
                    }
                    break;
                }
                case 7:
                    device.reset();
                    needs_reset = false;
                    if (!configure(header, memory, features, queues)) {
                        return 0;
                    }
                    device.activate(memory, features, queues, interrupt);
                    break;
            }
        } catch (const vmm::QueueError&) {
            needs_reset = true;
        }
        FUZZ_CHECK(input->pending() + input->input_room() == vmm::ConsoleInputBuffer::kCapacity);
    }
    device.reset();
    return 0;
}
