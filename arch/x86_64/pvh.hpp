// The PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h): a start
// info block with the command line, modules (the initrd) and memory map,
// handed to a 32-bit entry point in EBX.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "arch/x86_64/boot_params.hpp"
#include "arch/x86_64/e820.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace vmm::x86 {

inline constexpr uint32_t kPvhStartInfoMagic = 0x336ec578;

struct HvmStartInfo {
    uint32_t magic;
    uint32_t version;
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);

struct HvmModlistEntry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};

struct HvmMemmapEntry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
    uint32_t reserved;
};
static_assert(sizeof(HvmMemmapEntry) == 24);

// Writes start info, memmap and modlist at their fixed addresses; returns the
// start info address (for EBX).
uint64_t write_pvh_start_info(const GuestMemory& memory, uint64_t cmdline_address,
                              const std::optional<InitrdPlacement>& initrd,
                              const std::vector<E820Entry>& e820);

}  // namespace vmm::x86
