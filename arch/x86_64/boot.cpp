#include "arch/x86_64/boot.hpp"

#include <algorithm>

#include "arch/x86_64/e820.hpp"
#include "arch/x86_64/gdt.hpp"
#include "arch/x86_64/kernel_image.hpp"
#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/page_tables.hpp"
#include "arch/x86_64/pvh.hpp"

namespace vmm::x86 {

namespace {

constexpr uint64_t kPageSize = 0x1000;

void write_cmdline(const GuestMemory& memory, const std::string& cmdline, uint32_t max_length) {
    uint64_t limit = std::min<uint64_t>(max_length, kCmdlineMaxSize - 1);
    if (cmdline.size() > limit) {
        throw Error(fmt::format("kernel command line is {} bytes; the kernel accepts at most {}",
                                cmdline.size(), limit));
    }
    if (cmdline.find('\0') != std::string::npos) {
        throw Error("kernel command line contains a NUL byte");
    }
    memory.write(GuestAddress(kCmdlineAddress),
                 std::span(reinterpret_cast<const uint8_t*>(cmdline.c_str()), cmdline.size() + 1));
}

InitrdPlacement load_initrd(const GuestMemory& memory, const ImageFile& file,
                            const KernelImage& kernel) {
    uint64_t low_ram_end = std::min(memory.total_size(), kMmioHoleStart);
    auto address =
        place_initrd(file.size(), kernel.load_end, kernel.initrd_address_max, low_ram_end);
    if (!address) {
        throw Error(
            fmt::format("initrd '{}' ({} KiB) does not fit in guest memory ({} MiB) "
                        "above the kernel",
                        file.path(), file.size() >> 10, memory.total_size() >> 20));
    }
    file.read_into_guest(0, file.size(), memory, GuestAddress(*address));
    return {*address, file.size()};
}

void write_gdt(const GuestMemory& memory) {
    memory.write_obj(GuestAddress(kGdtAddress), boot_gdt());
    // An empty IDT: any exception before the kernel loads its own is a triple
    // fault, which the VMM reports as a shutdown.
    memory.write_obj(GuestAddress(kIdtAddress), uint64_t{0});
}

}  // namespace

std::optional<uint64_t> place_initrd(uint64_t size, uint64_t kernel_end, uint64_t address_max,
                                     uint64_t low_ram_end) {
    // One past the highest usable byte, rounded down to a page.
    uint64_t ceiling = address_max >= low_ram_end ? low_ram_end : address_max + 1;
    ceiling &= ~(kPageSize - 1);
    if (size == 0 || size > ceiling) {
        return std::nullopt;
    }
    uint64_t address = (ceiling - size) & ~(kPageSize - 1);
    uint64_t floor = (kernel_end + kPageSize - 1) & ~(kPageSize - 1);
    if (address < floor) {
        return std::nullopt;
    }
    return address;
}

BootFiles::BootFiles(const std::string& kernel_path, const std::optional<std::string>& initrd_path)
    : kernel(kernel_path, "kernel") {
    if (initrd_path) {
        initrd.emplace(*initrd_path, "initrd");
    }
}

BootSetup setup_boot(const GuestMemory& memory, const BootFiles& files,
                     const BootRequest& request) {
    KernelImage kernel = load_kernel(files.kernel, memory);

    BootSetup setup{};
    setup.kernel_end = kernel.load_end;
    if (files.initrd) {
        setup.initrd = load_initrd(memory, *files.initrd, kernel);
    }
    write_cmdline(memory, request.cmdline, kernel.cmdline_max);
    write_gdt(memory);

    std::vector<E820Entry> e820 = e820_map(memory.total_size());
    BootEntry entry = request.entry;
    if (entry == BootEntry::Auto) {
        entry = kernel.pvh_entry ? BootEntry::Pvh : BootEntry::Linux64;
    }
    if (entry == BootEntry::Pvh && !kernel.pvh_entry) {
        throw Error(fmt::format("kernel '{}' has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)",
                                files.kernel.path()));
    }
    setup.entry = entry;
    if (entry == BootEntry::Pvh) {
        setup.instruction_pointer = *kernel.pvh_entry;
        setup.boot_info_address = write_pvh_start_info(memory, kCmdlineAddress, setup.initrd, e820);
        setup.page_table_root = 0;
    } else {
        setup.instruction_pointer = kernel.entry64;
        boot_params params = make_boot_params(kernel.header, kCmdlineAddress, kernel.cmdline_max,
                                              setup.initrd, e820);
        memory.write_obj(GuestAddress(kZeroPageAddress), params);
        setup.boot_info_address = kZeroPageAddress;
        setup.page_table_root = write_identity_page_tables(memory);
    }
    return setup;
}

}  // namespace vmm::x86
