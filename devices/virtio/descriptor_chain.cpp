#include "devices/virtio/descriptor_chain.hpp"

#include <fmt/format.h>

#include <string>

#include "devices/virtio/virtio_spec.hpp"

namespace vmm {

namespace {

constexpr uint16_t kKnownFlags = VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_INDIRECT;
// Next indices are 16 bits, so a larger indirect table cannot be walked; vhost
// refuses these too, and the bound keeps a looping walk short.
constexpr uint64_t kMaxIndirectEntries = 65536;
constexpr uint64_t kMaxChainBytes = 0xffffffffull;  // used->len is 32 bits

// The table the walk is in: the queue's own, or an indirect one.
struct Table {
    GuestAddress base;
    uint32_t entries;
    bool indirect;
};

// Builds the errors of one walk, each naming the chain and the descriptor.
class ChainFault {
  public:
    explicit ChainFault(uint16_t head) : head_(head) {}

    QueueError operator()(const std::string& what) const {
        return QueueError(fmt::format("virtqueue descriptor chain at head {}: {}", head_, what));
    }
    static std::string name(const Table& table, uint32_t index) {
        return fmt::format("{}descriptor {}", table.indirect ? "indirect " : "", index);
    }

  private:
    uint16_t head_;
};

VirtqDesc read_descriptor(const GuestMemory& memory, const Table& table, uint32_t index,
                          const ChainFault& fault) {
    auto address = table.base.checked_add(uint64_t(index) * sizeof(VirtqDesc));
    if (!address || !memory.check_range(*address, sizeof(VirtqDesc))) {
        throw fault(fmt::format("{} lies outside guest RAM", ChainFault::name(table, index)));
    }
    // SAFETY: the 16 bytes were checked just above. One copy: the guest may
    // rewrite the entry meanwhile, so every check is made on this snapshot.
    return memory.read_obj<VirtqDesc>(*address);
}

// Checks an INDIRECT descriptor and returns the table it points to.
Table enter_indirect(const GuestMemory& memory, const VirtqDesc& desc, const Table& table,
                     uint32_t index, bool indirect_allowed, const ChainFault& fault) {
    std::string name = ChainFault::name(table, index);
    if (!indirect_allowed) {
        throw fault(
            fmt::format("{} is indirect but VIRTIO_F_RING_INDIRECT_DESC was not negotiated", name));
    }
    if (table.indirect) {
        throw fault(fmt::format("{} is itself indirect (nested indirect tables)", name));
    }
    if (desc.flags & VIRTQ_DESC_F_NEXT) {
        throw fault(fmt::format("{} has both INDIRECT and NEXT set", name));
    }
    if (desc.len == 0 || desc.len % sizeof(VirtqDesc) != 0) {
        throw fault(fmt::format("{} has indirect table length {}, not a non-zero multiple of 16",
                                name, desc.len));
    }
    uint64_t entries = desc.len / sizeof(VirtqDesc);
    if (entries > kMaxIndirectEntries) {
        throw fault(fmt::format("{} has an indirect table of {} entries, more than {}", name,
                                entries, kMaxIndirectEntries));
    }
    if (!memory.check_range(GuestAddress(desc.addr), desc.len)) {
        throw fault(fmt::format("{} has indirect table {:#x}+{:#x} outside guest RAM", name,
                                desc.addr, desc.len));
    }
    return Table{GuestAddress(desc.addr), static_cast<uint32_t>(entries), true};
}

}  // namespace

DescriptorChain DescriptorChain::parse(const GuestMemory& memory, GuestAddress desc_table,
                                       uint16_t queue_size, uint16_t head, bool indirect_allowed) {
    ChainFault fault(head);
    if (head >= queue_size) {
        throw fault(fmt::format("head index {} is not below the queue size {}", head, queue_size));
    }
    DescriptorChain chain(head);
    Table table{desc_table, queue_size, false};
    uint32_t index = head;
    uint32_t visited = 0;  // in the current table
    uint32_t length = 0;   // descriptors that are not INDIRECT, in both tables
    bool seen_writable = false;
    uint64_t total = 0;
    for (;;) {
        // A chain visits each entry of its table at most once; more is a loop.
        if (++visited > table.entries) {
            throw fault(fmt::format("more than {} descriptors in the {} table (a loop)",
                                    table.entries, table.indirect ? "indirect" : "queue's"));
        }
        VirtqDesc desc = read_descriptor(memory, table, index, fault);
        if (desc.flags & ~kKnownFlags) {
            throw fault(fmt::format("{} has unknown flags {:#x}", ChainFault::name(table, index),
                                    desc.flags & ~kKnownFlags));
        }
        if (desc.flags & VIRTQ_DESC_F_INDIRECT) {
            table = enter_indirect(memory, desc, table, index, indirect_allowed, fault);
            index = 0;
            visited = 0;
            continue;
        }
        // VIRTIO 1.2, 2.7.5.3.1: no chain longer than the queue, indirect
        // entries included. The walk, and what a device keeps per buffer,
        // stay a queue's worth however large a table the driver offers.
        if (++length > queue_size) {
            throw fault(fmt::format(
                "the chain is longer than the queue size {} (indirect entries count too)",
                queue_size));
        }
        bool writable = desc.flags & VIRTQ_DESC_F_WRITE;
        if (!writable && seen_writable) {
            throw fault(fmt::format("{} is device-readable but follows a device-writable one",
                                    ChainFault::name(table, index)));
        }
        seen_writable = seen_writable || writable;
        if (desc.len > 0) {
            // check_range is overflow-safe: addr + len may wrap.
            if (!memory.check_range(GuestAddress(desc.addr), desc.len)) {
                throw fault(fmt::format("{} has buffer {:#x}+{:#x} outside guest RAM",
                                        ChainFault::name(table, index), desc.addr, desc.len));
            }
            // At most 32768 buffers of < 2^32 bytes: the sum fits in 64 bits.
            total += desc.len;
            if (total > kMaxChainBytes) {
                throw fault(fmt::format("total length {} does not fit in 32 bits", total));
            }
            chain.buffers_.push_back({GuestAddress(desc.addr), desc.len, writable});
            (writable ? chain.writable_bytes_ : chain.readable_bytes_) += desc.len;
        }
        if (!(desc.flags & VIRTQ_DESC_F_NEXT)) {
            return chain;
        }
        if (desc.next >= table.entries) {
            throw fault(fmt::format("{} has next index {}, not below the table size {}",
                                    ChainFault::name(table, index), desc.next, table.entries));
        }
        index = desc.next;
    }
}

}  // namespace vmm
