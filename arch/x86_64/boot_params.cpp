#include "arch/x86_64/boot_params.hpp"

#include "vmm/base/error.hpp"

namespace vmm::x86 {

namespace {
constexpr uint8_t kLoaderTypeUndefined = 0xff;  // boot.rst: "no assigned id"
constexpr uint32_t kHdrSMagic = 0x53726448;     // "HdrS"
constexpr uint16_t kSyntheticVersion = 0x020f;
constexpr uint32_t kDefaultKernelAlignment = 0x1000000;
}  // namespace

boot_params make_boot_params(const std::optional<setup_header>& kernel_header,
                             uint64_t cmdline_address, uint32_t cmdline_size,
                             const std::optional<InitrdPlacement>& initrd,
                             const std::vector<E820Entry>& e820) {
    boot_params params{};
    if (kernel_header) {
        params.hdr = *kernel_header;
    } else {
        params.hdr.boot_flag = 0xaa55;
        params.hdr.header = kHdrSMagic;
        params.hdr.version = kSyntheticVersion;
        params.hdr.kernel_alignment = kDefaultKernelAlignment;
    }
    params.hdr.type_of_loader = kLoaderTypeUndefined;
    params.hdr.vid_mode = 0xffff;  // "normal" video mode: don't ask
    params.hdr.cmd_line_ptr = static_cast<uint32_t>(cmdline_address);
    params.ext_cmd_line_ptr = static_cast<uint32_t>(cmdline_address >> 32);
    params.hdr.cmdline_size = cmdline_size;
    if (initrd) {
        params.hdr.ramdisk_image = static_cast<uint32_t>(initrd->address);
        params.ext_ramdisk_image = static_cast<uint32_t>(initrd->address >> 32);
        params.hdr.ramdisk_size = static_cast<uint32_t>(initrd->size);
        params.ext_ramdisk_size = static_cast<uint32_t>(initrd->size >> 32);
    }
    if (e820.size() > E820_MAX_ENTRIES_ZEROPAGE) {
        throw Error(fmt::format("e820 map has {} entries; the zero page holds {}", e820.size(),
                                E820_MAX_ENTRIES_ZEROPAGE));
    }
    params.e820_entries = static_cast<uint8_t>(e820.size());
    for (size_t i = 0; i < e820.size(); ++i) {
        params.e820_table[i].addr = e820[i].address;
        params.e820_table[i].size = e820[i].size;
        params.e820_table[i].type = e820[i].type;
    }
    return params;
}

}  // namespace vmm::x86
