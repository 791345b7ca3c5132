// Test helper: plays the driver side of a split virtqueue in 1 MiB (or more)
// of test guest memory. It writes descriptors, chains and indirect tables, publishes
// heads in the available ring, reads the used ring back, and owns a Queue
// configured (ready, layout validated) to point at it.
#pragma once

#include <cstdint>
#include <vector>

#include "devices/virtio/queue.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace test {

class VirtqueueBuilder {
  public:
    static constexpr uint64_t kMemorySize = 1 << 20;
    static constexpr uint16_t kMaxSize = 256;
    static constexpr vmm::GuestAddress kDescTable{0x1000};
    static constexpr vmm::GuestAddress kAvailRing{0x2000};
    static constexpr vmm::GuestAddress kUsedRing{0x3000};
    static constexpr uint64_t kDataStart = 0x10000;  // buffers and indirect tables

    // A descriptor as the driver writes it.
    struct Desc {
        uint64_t addr = 0;
        uint32_t len = 0;
        uint16_t flags = 0;
        uint16_t next = 0;
    };

    explicit VirtqueueBuilder(uint16_t size = 16, uint64_t features = 0,
                              uint64_t memory_size = kMemorySize)
        : memory_(vmm::GuestMemory::create({{vmm::GuestAddress(0), memory_size}})),
          queue_(kMaxSize) {
        queue_.set_size(size);
        queue_.set_desc_table(kDescTable);
        queue_.set_avail_ring(kAvailRing);
        queue_.set_used_ring(kUsedRing);
        queue_.set_features(features);
        queue_.set_ready(true);
        queue_.validate_layout(memory_);
    }

    const vmm::GuestMemory& memory() const { return memory_; }
    vmm::Queue& queue() { return queue_; }
    uint16_t size() const { return queue_.size(); }

    // A fresh, zeroed, 16-byte-aligned area of the data region.
    uint64_t alloc(uint64_t bytes) {
        uint64_t address = next_data_;
        next_data_ = (next_data_ + bytes + 15) & ~uint64_t(15);
        return address;
    }
    // Descriptors for freshly allocated buffers.
    Desc readable(uint32_t len) { return Desc{alloc(len), len, 0, 0}; }
    Desc writable(uint32_t len) { return Desc{alloc(len), len, vmm::VIRTQ_DESC_F_WRITE, 0}; }

    // Raw access to the queue's descriptor table.
    void set_desc(uint16_t index, const Desc& desc) {
        write_desc(kDescTable.value() + 16ull * index, desc);
    }
    // Writes `descs` as an indirect table at `address` (no linking).
    void write_table(uint64_t address, const std::vector<Desc>& descs) {
        for (size_t i = 0; i < descs.size(); ++i) {
            write_desc(address + 16 * i, descs[i]);
        }
    }

    // Links `descs` with NEXT into free entries of the descriptor table (their
    // other flags are kept), publishes the head and returns it.
    uint16_t add_chain(std::vector<Desc> descs) {
        uint16_t head = next_desc_;
        for (size_t i = 0; i < descs.size(); ++i) {
            uint16_t index = next_desc_;
            // Entries are reused round the table, as a driver does once used.
            next_desc_ = static_cast<uint16_t>((next_desc_ + 1) % size());
            if (i + 1 < descs.size()) {
                descs[i].flags |= vmm::VIRTQ_DESC_F_NEXT;
                descs[i].next = next_desc_;
            }
            set_desc(index, descs[i]);
        }
        publish(head);
        return head;
    }
    // Links `descs` (0, 1, 2, ...) into an indirect table, points one INDIRECT
    // descriptor at it, publishes that and returns its index.
    uint16_t add_indirect_chain(std::vector<Desc> descs) {
        for (size_t i = 0; i + 1 < descs.size(); ++i) {
            descs[i].flags |= vmm::VIRTQ_DESC_F_NEXT;
            descs[i].next = static_cast<uint16_t>(i + 1);
        }
        uint32_t bytes = static_cast<uint32_t>(16 * descs.size());
        uint64_t table = alloc(bytes);
        write_table(table, descs);
        return add_chain({Desc{table, bytes, vmm::VIRTQ_DESC_F_INDIRECT, 0}});
    }

    // Puts `head` in the next available ring slot, then advances avail idx.
    void publish(uint16_t head) {
        write16(kAvailRing.value() + 4 + 2 * (avail_idx_ % size()), head);
        set_avail_idx(static_cast<uint16_t>(avail_idx_ + 1));
    }
    void set_avail_idx(uint16_t idx) {
        avail_idx_ = idx;
        write16(kAvailRing.value() + 2, idx);
    }
    uint16_t avail_idx() const { return avail_idx_; }
    void set_avail_flags(uint16_t flags) { write16(kAvailRing.value(), flags); }
    void set_used_event(uint16_t event) { write16(kAvailRing.value() + 4 + 2 * size(), event); }

    // Both sides' indices start at `index`: for wrap-around tests.
    void start_indices_at(uint16_t index) {
        set_avail_idx(index);
        write16(kUsedRing.value() + 2, index);
        queue_.set_next_avail(index);
        queue_.set_next_used(index);
    }

    uint16_t used_idx() const { return read16(kUsedRing.value() + 2); }
    vmm::VirtqUsedElem used_elem(uint16_t slot) const {
        return memory_.read_obj<vmm::VirtqUsedElem>(
            vmm::GuestAddress(kUsedRing.value() + 4 + 8 * (slot % size())));
    }
    uint16_t avail_event() const { return read16(kUsedRing.value() + 4 + 8 * size()); }

  private:
    void write_desc(uint64_t address, const Desc& desc) {
        memory_.write_obj(vmm::GuestAddress(address),
                          vmm::VirtqDesc{desc.addr, desc.len, desc.flags, desc.next});
    }
    void write16(uint64_t address, uint16_t value) {
        memory_.write_obj(vmm::GuestAddress(address), value);
    }
    uint16_t read16(uint64_t address) const {
        return memory_.read_obj<uint16_t>(vmm::GuestAddress(address));
    }

    vmm::GuestMemory memory_;
    vmm::Queue queue_;
    uint64_t next_data_ = kDataStart;
    uint16_t next_desc_ = 0;
    uint16_t avail_idx_ = 0;
};

}  // namespace test
