// One bit per 4 KiB page of a guest region that the VMM itself wrote (device
// buffers, used rings): KVM's dirty log sees only the guest's own writes, so
// a Diff snapshot needs both. Marked from any thread, taken (and cleared)
// while the VM is paused.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace vmm {

class DirtyBitmap {
  public:
    static constexpr uint64_t kPageSize = 4096;

    explicit DirtyBitmap(uint64_t bytes);

    // Marks the pages of [offset, offset + len) (offsets in the region; the
    // caller checked the range).
    void mark(uint64_t offset, uint64_t len) const;
    // The bits set since the last take(), as KVM_GET_DIRTY_LOG lays out its
    // bitmap (bit i of word w: page 64 w + i); clears them.
    std::vector<uint64_t> take() const;
    uint64_t pages() const { return pages_; }

  private:
    uint64_t pages_;
    std::unique_ptr<std::atomic<uint64_t>[]> words_;
};

}  // namespace vmm
