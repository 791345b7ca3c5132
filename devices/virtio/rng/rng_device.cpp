#include "devices/virtio/rng/rng_device.hpp"

#include <sys/random.h>

#include "devices/virtio/reader_writer.hpp"
#include "devices/virtio/virtio_spec.hpp"

namespace vmm {

namespace {

// Fills the slice completely: getrandom() may return short (signals, or
// more than 32 MiB at once).
void fill_random(const GuestSlice& slice) {
    size_t done = 0;
    while (done < slice.size()) {
        // SAFETY: a checked slice of guest RAM.
        ssize_t n = ::getrandom(slice.data() + done, slice.size() - done, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("virtio-rng: getrandom");
        }
        done += static_cast<size_t>(n);
    }
}

}  // namespace

uint64_t RngDevice::offered_features() const {
    return (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_INDIRECT_DESC) |
           (1ull << VIRTIO_F_RING_EVENT_IDX);
}

void RngDevice::activate(const GuestMemory& memory, uint64_t acked_features,
                         std::span<Queue> queues, VirtioInterrupt& interrupt) {
    if (queues.empty()) {
        throw Error("virtio-rng: activated without its queue");
    }
    active_.emplace(memory, acked_features, queues, interrupt);
}

void RngDevice::reset() {
    active_.reset();
}

VirtioDevice::Metrics RngDevice::metrics() const {
    return {{"requests", requests_}, {"bytes", bytes_}};
}

bool RngDevice::process_queue(size_t index) {
    if (!active_ || index != 0) {
        return false;
    }
    const GuestMemory& memory = active_->memory;
    Queue& queue = active_->queues[0];
    bool more = true;
    for (unsigned taken = 0; taken < kMaxChainsPerCall; ++taken) {
        auto chain = queue.pop(memory);
        if (!chain) {
            more = false;
            break;
        }
        // Readable buffers (a driver bug) are skipped; a chain with no
        // writable bytes goes back with length 0.
        ChainWriter writer(memory, *chain);
        for (const GuestSlice& slice : writer.slices(kMaxBytesPerChain)) {
            fill_random(slice);
        }
        queue.add_used(memory, chain->head(), static_cast<uint32_t>(writer.bytes_written()));
        ++requests_;
        bytes_ += writer.bytes_written();
    }
    active_->notify_if_needed(queue);
    return more;
}

}  // namespace vmm
