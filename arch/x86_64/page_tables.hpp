// Identity page tables for the 64-bit entry: the first 4 GiB mapped with
// 2 MiB pages, so the kernel, boot structures, MMIO hole and LAPIC are all
// reachable before the guest builds its own tables.
#pragma once

#include "vmm/memory/guest_memory.hpp"

namespace vmm::x86 {

inline constexpr uint64_t kIdentityMappedBytes = 4ull << 30;

// Writes PML4, PDPT and four page directories; returns the CR3 value.
uint64_t write_identity_page_tables(const GuestMemory& memory);

}  // namespace vmm::x86
