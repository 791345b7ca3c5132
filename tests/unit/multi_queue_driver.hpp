// Test helper: the driver side of several split virtqueues sharing one test
// guest memory (VirtqueueBuilder drives one queue in a memory of its own).
// Queue q's rings live at 0x10000 * (q + 1); buffers are allocated above 1 MiB.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "devices/virtio/queue.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace test {

class MultiQueueDriver {
  public:
    static constexpr uint64_t kMemorySize = 16 << 20;
    static constexpr uint64_t kDataStart = 1 << 20;

    struct Desc {
        uint64_t addr = 0;
        uint32_t len = 0;
        uint16_t flags = 0;
    };

    MultiQueueDriver(size_t queues, uint16_t size, uint64_t features)
        : memory_(vmm::GuestMemory::create({{vmm::GuestAddress(0), kMemorySize}})) {
        for (size_t q = 0; q < queues; ++q) {
            vmm::Queue queue(256);
            queue.set_size(size);
            queue.set_desc_table(vmm::GuestAddress(base(q)));
            queue.set_avail_ring(vmm::GuestAddress(base(q) + 0x4000));
            queue.set_used_ring(vmm::GuestAddress(base(q) + 0x8000));
            queue.set_features(features);
            queue.set_ready(true);
            queue.validate_layout(memory_);
            queues_.push_back(queue);
            state_.push_back({});
        }
    }

    const vmm::GuestMemory& memory() const { return memory_; }
    std::vector<vmm::Queue>& queues() { return queues_; }

    uint64_t alloc(uint64_t bytes) {
        uint64_t address = next_data_;
        next_data_ = (next_data_ + bytes + 15) & ~uint64_t(15);
        return address;
    }
    Desc readable(const std::vector<uint8_t>& bytes) {
        uint64_t address = alloc(bytes.size());
        memory_.write(vmm::GuestAddress(address), std::span<const uint8_t>(bytes));
        return Desc{address, uint32_t(bytes.size()), 0};
    }
    Desc writable(uint32_t len) { return Desc{alloc(len), len, vmm::VIRTQ_DESC_F_WRITE}; }

    // Links `descs` into free entries of queue q's table and publishes the head.
    uint16_t add_chain(size_t q, const std::vector<Desc>& descs) {
        State& s = state_[q];
        uint16_t size = queues_[q].size();
        uint16_t head = s.next_desc;
        for (size_t i = 0; i < descs.size(); ++i) {
            uint16_t index = s.next_desc;
            s.next_desc = uint16_t((s.next_desc + 1) % size);
            uint16_t flags = descs[i].flags;
            uint16_t next = 0;
            if (i + 1 < descs.size()) {
                flags |= vmm::VIRTQ_DESC_F_NEXT;
                next = s.next_desc;
            }
            memory_.write_obj(vmm::GuestAddress(base(q) + 16ull * index),
                              vmm::VirtqDesc{descs[i].addr, descs[i].len, flags, next});
        }
        memory_.write_obj(vmm::GuestAddress(base(q) + 0x4000 + 4 + 2ull * (s.avail_idx % size)),
                          head);
        ++s.avail_idx;
        memory_.write_obj(vmm::GuestAddress(base(q) + 0x4002), s.avail_idx);
        return head;
    }

    uint16_t used_idx(size_t q) const {
        return memory_.read_obj<uint16_t>(vmm::GuestAddress(base(q) + 0x8002));
    }
    vmm::VirtqUsedElem used_elem(size_t q, uint16_t slot) const {
        return memory_.read_obj<vmm::VirtqUsedElem>(
            vmm::GuestAddress(base(q) + 0x8004 + 8ull * (slot % queues_.at(q).size())));
    }
    std::vector<uint8_t> read_bytes(uint64_t address, size_t length) const {
        std::vector<uint8_t> bytes(length);
        memory_.read(vmm::GuestAddress(address), std::span<uint8_t>(bytes));
        return bytes;
    }

  private:
    struct State {
        uint16_t next_desc = 0;
        uint16_t avail_idx = 0;
    };
    static uint64_t base(size_t q) { return 0x10000 * (q + 1); }

    vmm::GuestMemory memory_;
    std::vector<vmm::Queue> queues_;
    std::vector<State> state_;
    uint64_t next_data_ = kDataStart;
};

}  // namespace test
