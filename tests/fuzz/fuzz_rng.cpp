// libFuzzer target: a hostile driver talking to virtio-rng. The input is a
// 16-byte header (queue state) followed by guest RAM; the queue is activated
// on an RngDevice and processed a few rounds. Besides sanitizer reports, it
// aborts when anything but a QueueError leaves the device, when a chain gets
// more than its 64 KiB cap, or when more guest bytes changed (outside the
// used ring) than the device says it gave: a write into a device-readable
// buffer or outside the chains would show up there.
//
// Header (little-endian):
//   u16 queue size, u8 flags (1 INDIRECT_DESC, 2 EVENT_IDX), u8 rounds,
//   u16 descriptor table, u16 available ring, u16 used ring,
//   u16 next_avail, u16 next_used, u16 unused
// Guest RAM: 64 KiB at 0 (its start filled from the input) and 128 KiB at
// 1 MiB, for buffers past the per-chain cap.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "devices/virtio/rng/rng_device.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "fuzz_support.hpp"

namespace {

using vmm::GuestAddress;

constexpr uint64_t kLowSize = 64 << 10;
constexpr uint64_t kHighStart = 1 << 20;
constexpr uint64_t kHighSize = 128 << 10;

struct Header {
    uint16_t queue_size;
    uint8_t flags;
    uint8_t rounds;
    uint16_t desc_table;
    uint16_t avail_ring;
    uint16_t used_ring;
    uint16_t next_avail;
    uint16_t next_used;
    uint16_t unused;
};
static_assert(sizeof(Header) == 16);

using fuzz::CountingInterrupt;

uint64_t metric(const vmm::VirtioDevice::Metrics& metrics, const char* name) {
    for (const auto& [key, value] : metrics) {
        if (key == name) {
            return value;
        }
    }
    std::abort();
}

// Guest RAM as bytes: the low region, then the high one.
// Kept across inputs: fresh 192 KiB buffers cost page faults every time.
void snapshot(const vmm::GuestMemory& memory, std::vector<uint8_t>& bytes) {
    bytes.resize(kLowSize + kHighSize);
    memory.read(GuestAddress(0), std::span(bytes.data(), kLowSize));
    memory.read(GuestAddress(kHighStart), std::span(bytes.data() + kLowSize, kHighSize));
}

// Bytes that differ outside [skip_start, skip_end), over raw pointers (an
// instrumented function would not be inlined here). Neither traced nor
// checked byte by byte: instrumented, comparing 192 KiB costs far more than
// the device.
__attribute__((no_sanitize("address", "coverage"))) uint64_t count_changed(const uint8_t* before,
                                                                           const uint8_t* after,
                                                                           size_t size,
                                                                           uint64_t skip_start,
                                                                           uint64_t skip_end) {
    constexpr size_t kPage = 4096;
    uint64_t changed = 0;
    for (size_t page = 0; page < size; page += kPage) {
        size_t end = std::min(size, page + kPage);
        if (std::memcmp(before + page, after + page, end - page) == 0) {
            continue;  // most pages: the device never wrote there
        }
        for (size_t i = page; i < end; ++i) {
            changed += (i < skip_start || i >= skip_end) && after[i] != before[i];
        }
    }
    return changed;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Header header;
    if (size < sizeof(header)) {
        return -1;
    }
    std::memcpy(&header, data, sizeof(header));
    auto memory = vmm::GuestMemory::create(
        {{GuestAddress(0), kLowSize}, {GuestAddress(kHighStart), kHighSize}});
    size_t ram_bytes = std::min<size_t>(size - sizeof(header), kLowSize);
    memory.write(GuestAddress(0), std::span(data + sizeof(header), ram_bytes));

    vmm::Queue queue(vmm::RngDevice::kQueueSize);
    queue.set_size(header.queue_size);
    queue.set_desc_table(GuestAddress(header.desc_table));
    queue.set_avail_ring(GuestAddress(header.avail_ring));
    queue.set_used_ring(GuestAddress(header.used_ring));
    uint64_t features = 1ull << vmm::VIRTIO_F_VERSION_1;
    if (header.flags & 1) {
        features |= 1ull << vmm::VIRTIO_F_RING_INDIRECT_DESC;
    }
    if (header.flags & 2) {
        features |= 1ull << vmm::VIRTIO_F_RING_EVENT_IDX;
    }
    queue.set_features(features);
    queue.set_next_avail(header.next_avail);
    queue.set_next_used(header.next_used);
    queue.set_ready(true);
    try {
        queue.validate_layout(memory);
    } catch (const vmm::QueueError&) {
        return 0;  // the transport would refuse DRIVER_OK
    }

    static std::vector<uint8_t> before;
    static std::vector<uint8_t> after;
    snapshot(memory, before);
    vmm::RngDevice device;
    CountingInterrupt interrupt;
    device.activate(memory, features, std::span(&queue, 1), interrupt);
    unsigned rounds = 1 + header.rounds % 4;
    for (unsigned round = 0; round < rounds; ++round) {
        try {
            if (!device.process_queue(0)) {
                break;
            }
        } catch (const vmm::QueueError&) {
            break;  // the transport marks the device NEEDS_RESET
        }
    }
    device.reset();
    FUZZ_CHECK(!device.process_queue(0));  // after reset, nothing is touched

    auto metrics = device.metrics();
    uint64_t requests = metric(metrics, "requests");
    uint64_t given = metric(metrics, "bytes");
    FUZZ_CHECK(requests <= uint64_t(rounds) * vmm::RngDevice::kMaxChainsPerCall);
    FUZZ_CHECK(given <= requests * vmm::RngDevice::kMaxBytesPerChain);
    FUZZ_CHECK(interrupt.config == 0);

    // Bytes the device may have changed besides the random ones: the used
    // ring (with avail_event).
    snapshot(memory, after);
    uint64_t used_start = header.used_ring;
    uint64_t used_end = used_start + vmm::used_ring_bytes(queue.size());
    FUZZ_CHECK(before.size() == after.size());
    FUZZ_CHECK(count_changed(before.data(), after.data(), after.size(), used_start, used_end) <=
               given);
    return 0;
}
