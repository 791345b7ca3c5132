// The device side of one split virtqueue (VIRTIO 1.2, 2.7): the layout the
// driver programmed through the transport, the device's own ring indices, and
// the operations a device needs: pop a chain (or give back one it cannot
// serve yet), return it used, decide whether to interrupt. Every guest index
// is checked and every guest access goes through GuestMemory's checked
// accessors; no host pointer is kept, so a queue is plain data that can be
// copied, reset and restored.
#pragma once

#include <cstdint>
#include <optional>

#include "devices/virtio/descriptor_chain.hpp"
#include "vmm/base/state_stream.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace vmm {

class Queue {
  public:
    // `max_size` is the largest size the device offers: a power of two no
    // larger than 32768 (throws Error otherwise). The size starts there.
    explicit Queue(uint16_t max_size);

    // Driver-programmed state, set by the transport while the device is not
    // live. Nothing is checked here: validate_layout() checks it all at once.
    uint16_t max_size() const { return max_size_; }
    uint16_t size() const { return size_; }
    void set_size(uint16_t size) { size_ = size; }
    bool ready() const { return ready_; }
    void set_ready(bool ready) { ready_ = ready; }
    GuestAddress desc_table() const { return desc_table_; }
    void set_desc_table(GuestAddress address) { desc_table_ = address; }
    GuestAddress avail_ring() const { return avail_ring_; }
    void set_avail_ring(GuestAddress address) { avail_ring_ = address; }
    GuestAddress used_ring() const { return used_ring_; }
    void set_used_ring(GuestAddress address) { used_ring_ = address; }

    // Takes the ring features out of the negotiated feature bits:
    // VIRTIO_F_RING_INDIRECT_DESC and VIRTIO_F_RING_EVENT_IDX.
    void set_features(uint64_t features);
    bool indirect() const { return indirect_; }
    bool event_idx() const { return event_idx_; }

    // The device's free-running indices (they wrap at 2^16). The setters are
    // for restoring a saved queue, whose rings already agree with them.
    uint16_t next_avail() const { return next_avail_; }
    uint16_t next_used() const { return next_used_; }
    void set_next_avail(uint16_t index) {
        next_avail_ = index;
        returnable_ = 0;
    }
    void set_next_used(uint16_t index) { next_used_ = signalled_used_ = index; }

    // Throws QueueError unless the size is a power of two no larger than
    // max_size and each area is aligned and wholly inside guest RAM. Call it
    // once before the device uses the queue; the calls below stay memory-safe
    // without it (every access is checked) but assume it passed.
    void validate_layout(const GuestMemory& memory) const;

    // The next available chain, fully validated, or nothing when the driver
    // has made none available (or the queue is not ready). Throws QueueError
    // when the driver broke the protocol; next_avail is then left unchanged.
    std::optional<DescriptorChain> pop(const GuestMemory& memory);

    // Undoes the pop() of `chain`, so that the next pop() yields it again: for
    // a device that cannot serve a chain now (the backend is full, a rate
    // limit, too few receive buffers for a frame). Only chains popped since
    // the last add_used() go back, the most recent first (several: newest to
    // oldest). Anything else (an older chain, one given back already, one
    // from another queue or from before a reset) is a device bug: throws
    // Error and leaves the queue as it was. The next pop() reads the ring
    // again, so a driver that rewrote the entry meanwhile gets its new chain,
    // validated like any other. With EVENT_IDX, avail_event still asks for
    // the entry after the newest pop: the driver's next buffer notifies.
    void give_back(const DescriptorChain& chain);

    // Returns chain `head` to the driver with `len` bytes written into it:
    // the used element first, then (after a release fence) used->idx.
    void add_used(const GuestMemory& memory, uint16_t head, uint32_t len);

    // Whether the driver wants an interrupt for the add_used() calls since the
    // last check: VIRTQ_AVAIL_F_NO_INTERRUPT, or with EVENT_IDX the
    // vring_need_event(used_event, next_used, last checked) rule. False when
    // nothing was used since the last check.
    bool needs_notification(const GuestMemory& memory);

    // Back to the state after construction (driver reset).
    void reset();

    // Snapshots: the layout, ring features and indices. No chain may be
    // held by the device when saving (VirtioDevice::prepare_save()): chains
    // popped before are not given back after a restore. restore_state()
    // throws StateError for another maximum size or, on a ready queue, a
    // size that is not a power of two up to it; the layout against guest
    // memory is the transport's to check (validate_layout()).
    void save_state(StateWriter& out) const;
    void restore_state(StateReader& in);

  private:
    uint16_t ring_mask() const { return static_cast<uint16_t>(size_ - 1); }

    uint16_t max_size_;
    uint16_t size_;
    bool ready_ = false;
    GuestAddress desc_table_;
    GuestAddress avail_ring_;
    GuestAddress used_ring_;
    bool indirect_ = false;
    bool event_idx_ = false;
    uint16_t next_avail_ = 0;
    uint16_t next_used_ = 0;
    uint16_t signalled_used_ = 0;  // next_used at the last needs_notification()
    // What give_back() checks: this queue's identity (a new one after each
    // reset), the number of chains popped and not given back, and how many
    // of the latest of those were popped since the last add_used().
    uint64_t serial_;
    uint64_t pops_ = 0;
    uint16_t returnable_ = 0;
};

}  // namespace vmm
