// The Linux "zero page" (struct boot_params) for the 64-bit boot protocol.
#pragma once

#include <asm/bootparam.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "arch/x86_64/e820.hpp"

namespace vmm::x86 {

struct InitrdPlacement {
    uint64_t address;
    uint64_t size;
};

// Fills boot_params from the kernel's own setup header (bzImage) or a minimal
// synthetic one (vmlinux), pointing at the command line, initrd and e820 map.
// Throws if the map has more entries than the zero page holds.
boot_params make_boot_params(const std::optional<setup_header>& kernel_header,
                             uint64_t cmdline_address, uint32_t cmdline_size,
                             const std::optional<InitrdPlacement>& initrd,
                             const std::vector<E820Entry>& e820);

}  // namespace vmm::x86
