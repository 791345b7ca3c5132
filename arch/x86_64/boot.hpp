// Puts everything a guest kernel needs at boot into guest memory: the kernel,
// initrd, command line, zero page or PVH start info, GDT and page tables. The
// result says how the boot vCPU must start.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "arch/x86_64/boot_params.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/memory/image_file.hpp"

namespace vmm::x86 {

enum class BootEntry { Auto, Linux64, Pvh };

// The kernel and initrd, opened and checked (readable, regular, not empty)
// before the VM is built, so that a bad path is reported as such even where
// KVM is missing. Their contents are checked when they are loaded.
struct BootFiles {
    // Throws Error naming the file and the problem.
    BootFiles(const std::string& kernel_path, const std::optional<std::string>& initrd_path);

    ImageFile kernel;
    std::optional<ImageFile> initrd;
};

struct BootRequest {
    std::string cmdline;
    BootEntry entry = BootEntry::Auto;
};

// Where and how the boot vCPU starts.
struct BootSetup {
    BootEntry entry;  // Linux64 or Pvh, never Auto
    uint64_t instruction_pointer;
    uint64_t boot_info_address;  // zero page (RSI) or PVH start info (EBX)
    uint64_t page_table_root;    // CR3 for the 64-bit entry
    uint64_t kernel_end;
    std::optional<InitrdPlacement> initrd;
};

BootSetup setup_boot(const GuestMemory& memory, const BootFiles& files, const BootRequest& request);

// The highest page-aligned spot for an initrd of `size` bytes above `kernel_end`
// whose last byte is at most `address_max` and which ends inside low RAM.
std::optional<uint64_t> place_initrd(uint64_t size, uint64_t kernel_end, uint64_t address_max,
                                     uint64_t low_ram_end);

}  // namespace vmm::x86
