#include "devices/virtio/queue.hpp"

#include <fmt/format.h>

#include <atomic>
#include <bit>

#include "devices/virtio/virtio_spec.hpp"

namespace vmm {

namespace {

// The guest address of a ring field, checked to lie inside guest RAM. Only a
// queue whose layout was never validated can fail this.
GuestAddress ring_field(const GuestMemory& memory, GuestAddress base, uint64_t offset,
                        uint64_t size, const char* what) {
    auto address = base.checked_add(offset);
    if (!address || !memory.check_range(*address, size)) {
        throw QueueError(fmt::format("virtqueue {} at {:#x}+{:#x} is outside guest RAM", what,
                                     base.value(), offset));
    }
    return *address;
}

uint16_t read_u16(const GuestMemory& memory, GuestAddress base, uint64_t offset, const char* what) {
    // SAFETY: ring_field checked the two bytes; read_obj copies them out.
    return memory.read_obj<uint16_t>(ring_field(memory, base, offset, 2, what));
}

void write_u16(const GuestMemory& memory, GuestAddress base, uint64_t offset, uint16_t value,
               const char* what) {
    // SAFETY: ring_field checked the two bytes, which belong to the device.
    memory.write_obj(ring_field(memory, base, offset, 2, what), value);
}

void check_area(const GuestMemory& memory, const char* what, GuestAddress address, uint64_t bytes,
                uint64_t align) {
    if (address.value() % align != 0) {
        throw QueueError(fmt::format("virtqueue {} at {:#x} is not {}-byte aligned", what,
                                     address.value(), align));
    }
    if (!memory.check_range(address, bytes)) {
        throw QueueError(fmt::format("virtqueue {} {:#x}+{:#x} is not wholly inside guest RAM",
                                     what, address.value(), bytes));
    }
}

// Every queue, and every reset of one, gets a serial of its own: a chain
// carries the serial of the queue it came from, so give_back() knows it.
uint64_t new_serial() {
    static std::atomic<uint64_t> last{0};
    return ++last;
}

}  // namespace

Queue::Queue(uint16_t max_size) : max_size_(max_size), size_(max_size), serial_(new_serial()) {
    if (!std::has_single_bit(max_size) || max_size > kVirtqMaxSize) {
        throw Error(fmt::format("invalid virtqueue maximum size {}", max_size));
    }
}

void Queue::set_features(uint64_t features) {
    indirect_ = features & (1ull << VIRTIO_F_RING_INDIRECT_DESC);
    event_idx_ = features & (1ull << VIRTIO_F_RING_EVENT_IDX);
}

void Queue::validate_layout(const GuestMemory& memory) const {
    // has_single_bit(0) is false: a zero size is refused too.
    if (!std::has_single_bit(size_) || size_ > max_size_) {
        throw QueueError(
            fmt::format("virtqueue size {} is not a power of two between 1 and the maximum {}",
                        size_, max_size_));
    }
    check_area(memory, "descriptor table", desc_table_, desc_table_bytes(size_), kDescTableAlign);
    check_area(memory, "available ring", avail_ring_, avail_ring_bytes(size_), kAvailRingAlign);
    check_area(memory, "used ring", used_ring_, used_ring_bytes(size_), kUsedRingAlign);
}

std::optional<DescriptorChain> Queue::pop(const GuestMemory& memory) {
    if (!ready_) {
        return std::nullopt;
    }
    if (event_idx_) {
        // Ask for a notification once the driver makes entry next_avail
        // available, before looking: with the driver's fence between its idx
        // write and its avail_event read, either it sees this request or we
        // see its new idx, so a buffer is never left unnoticed.
        write_u16(memory, used_ring_, avail_event_offset(size_), next_avail_, "avail_event");
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }
    // Read once: every decision below uses this one value.
    uint16_t avail_idx = read_u16(memory, avail_ring_, kAvailIdxOffset, "avail idx");
    // The ring entries and descriptors were written before idx; read them after.
    std::atomic_thread_fence(std::memory_order_acquire);
    uint16_t pending = static_cast<uint16_t>(avail_idx - next_avail_);
    if (pending > size_) {
        throw QueueError(
            fmt::format("virtqueue avail idx {} is {} entries ahead of the device's {}, more than "
                        "the queue size {}",
                        avail_idx, pending, next_avail_, size_));
    }
    if (pending == 0) {
        return std::nullopt;
    }
    uint64_t slot = next_avail_ & ring_mask();
    uint16_t head = read_u16(memory, avail_ring_, kAvailRingOffset + 2 * slot, "avail ring entry");
    DescriptorChain chain = DescriptorChain::parse(memory, desc_table_, size_, head, indirect_);
    ++next_avail_;
    chain.queue_serial_ = serial_;
    chain.pop_sequence_ = ++pops_;
    // A driver gives at most `size` chains at once: older pops cannot go back.
    if (returnable_ < size_) {
        ++returnable_;
    }
    return chain;
}

void Queue::give_back(const DescriptorChain& chain) {
    if (chain.queue_serial_ != serial_) {
        throw Error(
            fmt::format("virtqueue: cannot give back the chain at head {}: it was not popped from "
                        "this queue since the queue's last reset",
                        chain.head()));
    }
    if (returnable_ == 0 || chain.pop_sequence_ != pops_) {
        throw Error(
            fmt::format("virtqueue: cannot give back the chain at head {}: only chains popped "
                        "since the last add_used() go back, the most recent first",
                        chain.head()));
    }
    --next_avail_;
    --pops_;
    --returnable_;
}

void Queue::add_used(const GuestMemory& memory, uint16_t head, uint32_t len) {
    if (!ready_) {
        throw QueueError("add_used on a virtqueue that is not ready");
    }
    if (head >= size_) {
        throw QueueError(fmt::format("used head {} is not below the queue size {}", head, size_));
    }
    uint64_t slot = next_used_ & ring_mask();
    GuestAddress element = ring_field(memory, used_ring_, kUsedRingOffset + 8 * slot,
                                      sizeof(VirtqUsedElem), "used ring entry");
    // SAFETY: ring_field checked the element, which belongs to the device.
    memory.write_obj(element, VirtqUsedElem{head, len});
    // The driver must see the element before it sees the index that covers it.
    std::atomic_thread_fence(std::memory_order_release);
    ++next_used_;
    write_u16(memory, used_ring_, kUsedIdxOffset, next_used_, "used idx");
    returnable_ = 0;  // the chains popped so far may include this one
}

bool Queue::needs_notification(const GuestMemory& memory) {
    if (!ready_) {
        return false;
    }
    // Our used idx write must be visible before we read the driver's wishes;
    // the driver fences the other way round (write used_event, read idx).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    uint16_t old_used = signalled_used_;
    signalled_used_ = next_used_;
    if (old_used == next_used_) {
        return false;
    }
    if (event_idx_) {
        uint16_t used_event = read_u16(memory, avail_ring_, used_event_offset(size_), "used_event");
        return vring_need_event(used_event, next_used_, old_used);
    }
    uint16_t flags = read_u16(memory, avail_ring_, kAvailFlagsOffset, "avail flags");
    return !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

void Queue::reset() {
    *this = Queue(max_size_);
}

void Queue::save_state(StateWriter& out) const {
    out.u16(max_size_);
    out.u16(size_);
    out.boolean(ready_);
    out.u64(desc_table_.value());
    out.u64(avail_ring_.value());
    out.u64(used_ring_.value());
    out.boolean(indirect_);
    out.boolean(event_idx_);
    out.u16(next_avail_);
    out.u16(next_used_);
    out.u16(signalled_used_);
}

void Queue::restore_state(StateReader& in) {
    uint16_t max_size = in.u16();
    if (max_size != max_size_) {
        in.fail(fmt::format("a virtqueue of maximum size {} where this device's has {}", max_size,
                            max_size_));
    }
    uint16_t size = in.u16();
    bool ready = in.boolean();
    // A queue that is not ready may hold whatever the driver wrote to
    // QueueNum: it is checked when it becomes ready.
    if (ready && (!std::has_single_bit(size) || size > max_size_)) {
        in.fail(fmt::format("a ready virtqueue of size {}, not a power of two up to {}", size,
                            max_size_));
    }
    GuestAddress desc_table(in.u64());
    GuestAddress avail_ring(in.u64());
    GuestAddress used_ring(in.u64());
    bool indirect = in.boolean();
    bool event_idx = in.boolean();
    uint16_t next_avail = in.u16();
    uint16_t next_used = in.u16();
    uint16_t signalled_used = in.u16();

    // All read: only now is the queue changed, so a refused state leaves it
    // as it was. A fresh serial: no chain popped before can be given back.
    reset();
    size_ = size;
    ready_ = ready;
    desc_table_ = desc_table;
    avail_ring_ = avail_ring;
    used_ring_ = used_ring;
    set_features((indirect ? 1ull << VIRTIO_F_RING_INDIRECT_DESC : 0) |
                 (event_idx ? 1ull << VIRTIO_F_RING_EVENT_IDX : 0));
    next_avail_ = next_avail;
    next_used_ = next_used;
    signalled_used_ = signalled_used;
}

}  // namespace vmm
