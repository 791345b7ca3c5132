#include "vmm/kvm/coalesced_pio_ring.hpp"

#include <linux/kvm.h>
#include <unistd.h>

#include <atomic>

namespace vmm {

namespace {

// The ring's layout as the kernel (C) sees it. linux/kvm.h declares the
// entries with __DECLARE_FLEX_ARRAY, whose empty struct takes a byte in
// C++ and moves the array 8 bytes on: its own struct cannot be used here.
struct RingHeader {
    uint32_t first;  // the next entry we take (ours to move)
    uint32_t last;   // one past the newest entry (KVM's to move)
};
static_assert(sizeof(kvm_coalesced_mmio) == 24 && alignof(kvm_coalesced_mmio) <= 8);

// KVM_COALESCED_MMIO_MAX, computed as the kernel does.
uint32_t ring_entries() {
    static const uint32_t entries =
        static_cast<uint32_t>((static_cast<size_t>(sysconf(_SC_PAGESIZE)) - sizeof(RingHeader)) /
                              sizeof(kvm_coalesced_mmio));
    return entries;
}

}  // namespace

CoalescedPioRing::CoalescedPioRing(void* page, Write write)
    : page_(static_cast<uint8_t*>(page)), write_(std::move(write)) {}

size_t CoalescedPioRing::drain() {
    // KVM publishes an entry, then moves `last` (smp_wmb); we read `last`
    // with acquire, the entries, then release `first` back to KVM.
    auto* header = reinterpret_cast<RingHeader*>(page_);
    std::atomic_ref<uint32_t> last(header->last);
    std::atomic_ref<uint32_t> first(header->first);
    if (first.load(std::memory_order_relaxed) == last.load(std::memory_order_acquire)) {
        return 0;
    }
    std::lock_guard lock(mutex_);
    const auto* entries = reinterpret_cast<const kvm_coalesced_mmio*>(page_ + sizeof(RingHeader));
    const uint32_t count = ring_entries();
    uint32_t head = first.load(std::memory_order_relaxed);
    uint32_t tail = last.load(std::memory_order_acquire);
    size_t delivered = 0;
    // Indices come from KVM, not the guest; a bad one stops the drain
    // rather than reading past the page.
    while (head != tail && head < count && tail < count) {
        const kvm_coalesced_mmio& entry = entries[head];
        uint32_t length = entry.len <= sizeof(entry.data) ? entry.len : 0;
        if (entry.pio != 0 && length != 0) {
            write_(static_cast<uint16_t>(entry.phys_addr), std::span(entry.data, length));
        }
        head = (head + 1) % count;
        first.store(head, std::memory_order_release);
        ++delivered;
    }
    return delivered;
}

}  // namespace vmm
