// One descriptor chain of a split virtqueue (VIRTIO 1.2, 2.7.5), walked and
// validated once when it is popped: a device only ever sees a clean list of
// guest buffers, every one wholly inside guest RAM, readable ones first.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/base/error.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace vmm {

// The driver broke a rule of the virtqueue protocol. The device stops using
// the queue and the transport sets DEVICE_NEEDS_RESET; the VMM carries on.
class QueueError : public Error {
  public:
    using Error::Error;
};

struct DescriptorBuffer {
    GuestAddress address;
    uint32_t length;
    bool writable;  // device-writable (VIRTQ_DESC_F_WRITE)
};

class DescriptorChain {
  public:
    // Walks the chain starting at descriptor `head` of the table at
    // `desc_table` (`queue_size` entries). Throws QueueError naming the first
    // rule the chain breaks:
    //  - head and every next index below the size of its table;
    //  - at most queue_size descriptors in the table, at most the table's
    //    entry count inside an indirect table (so a loop is caught), and at
    //    most queue_size in the whole chain, the entries of an indirect
    //    table included (VIRTIO 1.2, 2.7.5.3.1);
    //  - indirect descriptors only when `indirect_allowed`, never together with
    //    NEXT, never inside an indirect table (hence at most one per chain),
    //    table length a non-zero multiple of 16 of at most 65536 entries and
    //    wholly inside guest RAM;
    //  - no flag bits beyond NEXT, WRITE and INDIRECT;
    //  - every buffer wholly inside guest RAM, the total length below 2^32;
    //  - no device-readable descriptor after a device-writable one.
    // Zero-length descriptors are accepted (flags, next and ordering still
    // checked) but not listed in buffers(): there is nothing to access, so
    // their address is not checked either.
    static DescriptorChain parse(const GuestMemory& memory, GuestAddress desc_table,
                                 uint16_t queue_size, uint16_t head, bool indirect_allowed);

    // The head index, which add_used() returns to the driver.
    uint16_t head() const { return head_; }
    // Device-readable buffers first, then device-writable ones; none empty.
    const std::vector<DescriptorBuffer>& buffers() const { return buffers_; }
    uint64_t readable_bytes() const { return readable_bytes_; }
    uint64_t writable_bytes() const { return writable_bytes_; }

  private:
    friend class Queue;  // stamps the chains it pops, for Queue::give_back()

    explicit DescriptorChain(uint16_t head) : head_(head) {}

    uint16_t head_;
    uint64_t queue_serial_ = 0;  // 0: not popped from a queue
    uint64_t pop_sequence_ = 0;
    std::vector<DescriptorBuffer> buffers_;
    uint64_t readable_bytes_ = 0;
    uint64_t writable_bytes_ = 0;
};

}  // namespace vmm
