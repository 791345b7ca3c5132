#include "vmm/memory/dirty_bitmap.hpp"

namespace vmm {

DirtyBitmap::DirtyBitmap(uint64_t bytes)
    : pages_((bytes + kPageSize - 1) / kPageSize),
      words_(std::make_unique<std::atomic<uint64_t>[]>((pages_ + 63) / 64)) {}

void DirtyBitmap::mark(uint64_t offset, uint64_t len) const {
    if (len == 0) {
        return;
    }
    uint64_t first = offset / kPageSize, last = (offset + len - 1) / kPageSize;
    for (uint64_t page = first; page <= last && page < pages_; ++page) {
        words_[page / 64].fetch_or(uint64_t{1} << (page % 64), std::memory_order_relaxed);
    }
}

std::vector<uint64_t> DirtyBitmap::take() const {
    std::vector<uint64_t> bits((pages_ + 63) / 64);
    for (size_t i = 0; i < bits.size(); ++i) {
        bits[i] = words_[i].exchange(0, std::memory_order_relaxed);
    }
    return bits;
}

}  // namespace vmm
