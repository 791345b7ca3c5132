// libFuzzer target: a hostile driver's split virtqueue. The input is a
// 16-byte header followed by the contents of guest RAM; the fuzzer pops
// chains until there are none or the queue reports a violation, reads and
// writes each through ChainReader / ChainWriter, and returns it used.
// Besides sanitizer reports, it aborts when a popped chain breaks a promise
// of DescriptorChain, or when anything but QueueError escapes the queue.
//
// Header (little-endian):
//   u16 queue size (the raw value: bad sizes must be refused)
//   u8  flags: 1 INDIRECT_DESC, 2 EVENT_IDX, 4 skip validate_layout,
//              8 zero-copy slices instead of copies
//   u8  maximum number of pops
//   u16 descriptor table, available ring, used ring (guest addresses)
//   u16 initial next_avail, u16 initial next_used
//   u16 bytes per read/write call
// Guest RAM: 64 KiB at 0 (its start filled from the input), and 16 MiB of
// zeroes at 16 MiB, so that chains can grow past 2^32 bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "devices/virtio/queue.hpp"
#include "devices/virtio/reader_writer.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "fuzz_support.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace {

using vmm::GuestAddress;

constexpr uint64_t kLowSize = 64 << 10;
constexpr uint64_t kHighStart = 16 << 20;
constexpr uint64_t kHighSize = 16 << 20;
constexpr uint16_t kMaxQueueSize = 1024;
// Read/write calls per chain; the rest is skipped or taken as slices, so a
// 4 GiB chain costs a walk of its buffer list, not 4 GiB of copying.
constexpr unsigned kCallsPerChain = 64;

struct Header {
    uint16_t queue_size;
    uint8_t flags;
    uint8_t max_pops;
    uint16_t desc_table;
    uint16_t avail_ring;
    uint16_t used_ring;
    uint16_t next_avail;
    uint16_t next_used;
    uint16_t chunk;
};
static_assert(sizeof(Header) == 16);

constexpr uint8_t kFlagIndirect = 1;
constexpr uint8_t kFlagEventIdx = 2;
constexpr uint8_t kFlagSkipValidation = 4;
constexpr uint8_t kFlagSlices = 8;

// A slice must lie inside the host mapping of one region.
void check_slice(const vmm::GuestMemory& memory, const vmm::GuestSlice& slice) {
    for (const auto& region : memory.regions()) {
        const uint8_t* base = region.host_base();
        if (slice.data() >= base && slice.size() <= region.size() &&
            slice.data() - base <= static_cast<ptrdiff_t>(region.size() - slice.size())) {
            return;
        }
    }
    FUZZ_CHECK(!"slice outside guest RAM");
}

// What DescriptorChain promises to every device.
void check_chain(const vmm::GuestMemory& memory, const vmm::Queue& queue,
                 const vmm::DescriptorChain& chain) {
    FUZZ_CHECK(chain.head() < queue.size());
    uint64_t readable = 0;
    uint64_t writable = 0;
    bool seen_writable = false;
    for (const auto& buffer : chain.buffers()) {
        FUZZ_CHECK(buffer.length > 0);
        FUZZ_CHECK(memory.check_range(buffer.address, buffer.length));
        FUZZ_CHECK(buffer.writable || !seen_writable);
        seen_writable = seen_writable || buffer.writable;
        (buffer.writable ? writable : readable) += buffer.length;
    }
    FUZZ_CHECK(readable == chain.readable_bytes());
    FUZZ_CHECK(writable == chain.writable_bytes());
    FUZZ_CHECK(readable + writable <= 0xffffffffull);
}

void consume_readable(const vmm::GuestMemory& memory, const vmm::DescriptorChain& chain,
                      size_t chunk, bool use_slices) {
    vmm::ChainReader reader(memory, chain);
    std::vector<uint8_t> scratch(chunk);
    uint64_t copied = 0;
    try {
        (void)reader.read_obj<uint32_t>();
        copied += 4;
    } catch (const vmm::QueueError&) {
        FUZZ_CHECK(chain.readable_bytes() < 4);
    }
    for (unsigned call = 0; call < kCallsPerChain && reader.remaining() > 0; ++call) {
        if (use_slices) {
            for (const auto& slice : reader.slices(chunk)) {
                check_slice(memory, slice);
                // SAFETY: check_slice proved the slice is inside guest RAM.
                std::memcpy(scratch.data(), slice.data(), slice.size());
                copied += slice.size();
            }
        } else {
            size_t n = reader.read(scratch);
            FUZZ_CHECK(n > 0);
            copied += n;
        }
    }
    FUZZ_CHECK(copied == reader.bytes_read());
    reader.skip(reader.remaining());
    FUZZ_CHECK(reader.bytes_read() == chain.readable_bytes());
}

uint64_t fill_writable(const vmm::GuestMemory& memory, const vmm::DescriptorChain& chain,
                       size_t chunk, bool use_slices) {
    vmm::ChainWriter writer(memory, chain);
    std::vector<uint8_t> scratch(chunk, 0xa5);
    for (unsigned call = 0; call < kCallsPerChain && writer.remaining() > 0; ++call) {
        if (use_slices) {
            for (const auto& slice : writer.slices(chunk)) {
                check_slice(memory, slice);
                // SAFETY: check_slice proved the slice is inside guest RAM.
                std::memset(slice.data(), 0x5a, slice.size());
            }
        } else {
            FUZZ_CHECK(writer.write(scratch) > 0);
        }
    }
    // The rest is handed out as slices without being touched.
    for (const auto& slice : writer.slices(writer.remaining())) {
        check_slice(memory, slice);
    }
    try {
        writer.write_obj<uint8_t>(0);
        FUZZ_CHECK(!"write_obj past the end");
    } catch (const vmm::QueueError&) {
    }
    FUZZ_CHECK(writer.bytes_written() == chain.writable_bytes());
    return writer.bytes_written();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Header header;
    if (size < sizeof(header)) {
        return -1;  // not worth keeping in the corpus
    }
    std::memcpy(&header, data, sizeof(header));
    std::span<const uint8_t> ram(data + sizeof(header), size - sizeof(header));

    // Fresh memory every run, so one input never sees another's writes.
    auto memory = vmm::GuestMemory::create(
        {{GuestAddress(0), kLowSize}, {GuestAddress(kHighStart), kHighSize}});
    memory.write(GuestAddress(0), ram.first(std::min<size_t>(ram.size(), kLowSize)));

    vmm::Queue queue(kMaxQueueSize);
    queue.set_size(header.queue_size);
    queue.set_desc_table(GuestAddress(header.desc_table));
    queue.set_avail_ring(GuestAddress(header.avail_ring));
    queue.set_used_ring(GuestAddress(header.used_ring));
    uint64_t features = 0;
    if (header.flags & kFlagIndirect) {
        features |= 1ull << vmm::VIRTIO_F_RING_INDIRECT_DESC;
    }
    if (header.flags & kFlagEventIdx) {
        features |= 1ull << vmm::VIRTIO_F_RING_EVENT_IDX;
    }
    queue.set_features(features);
    queue.set_next_avail(header.next_avail);
    queue.set_next_used(header.next_used);
    queue.set_ready(true);
    size_t chunk = std::clamp<size_t>(header.chunk, 1, 4096);
    bool use_slices = header.flags & kFlagSlices;

    try {
        if (!(header.flags & kFlagSkipValidation)) {
            queue.validate_layout(memory);
        }
        for (unsigned i = 0; i < header.max_pops; ++i) {
            auto chain = queue.pop(memory);
            if (!chain) {
                break;
            }
            check_chain(memory, queue, *chain);
            consume_readable(memory, *chain, chunk, use_slices);
            uint64_t written = fill_writable(memory, *chain, chunk, use_slices);
            queue.add_used(memory, chain->head(), static_cast<uint32_t>(written));
            (void)queue.needs_notification(memory);
        }
    } catch (const vmm::QueueError&) {
        // The guest broke the protocol: a device would now need a reset.
    }
    return 0;
}
