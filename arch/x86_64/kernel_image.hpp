// What a kernel loader found and placed in guest memory, for the boot setup
// that follows (zero page, PVH start info, initrd placement, registers).
#pragma once

#include <asm/bootparam.h>

#include <cstdint>
#include <optional>

#include "vmm/memory/guest_memory.hpp"
#include "vmm/memory/image_file.hpp"

namespace vmm::x86 {

struct KernelImage {
    enum class Format { Elf, BzImage };
    Format format = Format::Elf;
    uint64_t entry64 = 0;               // Linux 64-bit boot protocol entry
    std::optional<uint64_t> pvh_entry;  // XEN_ELFNOTE_PHYS32_ENTRY, when present
    uint64_t load_end = 0;              // first byte past the kernel's memory
    // The bzImage's own setup header, copied into the zero page.
    std::optional<setup_header> header;
    uint32_t cmdline_max = 0;         // longest command line, without the NUL
    uint64_t initrd_address_max = 0;  // highest byte an initrd may occupy
};

// Loads a vmlinux ELF or a bzImage, told apart by their magic numbers. Every
// field is validated; errors name the file and the problem.
KernelImage load_kernel(const ImageFile& file, const GuestMemory& memory);

KernelImage load_elf_kernel(const ImageFile& file, const GuestMemory& memory);
KernelImage load_bzimage(const ImageFile& file, const GuestMemory& memory);

}  // namespace vmm::x86
