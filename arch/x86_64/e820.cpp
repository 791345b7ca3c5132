#include "arch/x86_64/e820.hpp"

#include <algorithm>

#include "arch/x86_64/layout.hpp"

namespace vmm::x86 {

std::vector<GuestRegionSpec> guest_ram_regions(uint64_t memory_size) {
    uint64_t below_hole = std::min(memory_size, kMmioHoleStart);
    std::vector<GuestRegionSpec> regions{{GuestAddress(0), below_hole}};
    if (memory_size > kMmioHoleStart) {
        regions.push_back({GuestAddress(kMmioHoleEnd), memory_size - kMmioHoleStart});
    }
    return regions;
}

std::vector<E820Entry> e820_map(uint64_t memory_size) {
    uint64_t below_hole = std::min(memory_size, kMmioHoleStart);
    std::vector<E820Entry> map{
        {0, kEbdaStart, kE820Ram},
        {kEbdaStart, 0xa0000 - kEbdaStart, kE820Reserved},
    };
    if (below_hole > kHighMemoryStart) {
        map.push_back({kHighMemoryStart, below_hole - kHighMemoryStart, kE820Ram});
    }
    if (memory_size > kMmioHoleStart) {
        map.push_back({kMmioHoleEnd, memory_size - kMmioHoleStart, kE820Ram});
    }
    return map;
}

}  // namespace vmm::x86
