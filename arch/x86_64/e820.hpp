// The guest's RAM layout, as guest memory regions and as the e820 map that the
// kernel sees; both derive from one function so they always agree.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/memory/guest_memory.hpp"

namespace vmm::x86 {

inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

struct E820Entry {
    uint64_t address;
    uint64_t size;
    uint32_t type;
};

// RAM of `memory_size` bytes split around the 32-bit MMIO hole.
std::vector<GuestRegionSpec> guest_ram_regions(uint64_t memory_size);

// The e820 map for that RAM: low memory below the EBDA, the EBDA reserved, RAM
// from 1 MiB to the hole, and the remainder above 4 GiB. Sorted, disjoint.
std::vector<E820Entry> e820_map(uint64_t memory_size);

}  // namespace vmm::x86
