#include "arch/x86_64/pvh.hpp"

#include "arch/x86_64/layout.hpp"

namespace vmm::x86 {

uint64_t write_pvh_start_info(const GuestMemory& memory, uint64_t cmdline_address,
                              const std::optional<InitrdPlacement>& initrd,
                              const std::vector<E820Entry>& e820) {
    constexpr size_t kMaxEntries =
        (kPvhModlistAddress - kPvhMemmapAddress) / sizeof(HvmMemmapEntry);
    if (e820.size() > kMaxEntries) {
        throw Error(fmt::format("memory map has {} entries; PVH start info holds {}", e820.size(),
                                kMaxEntries));
    }
    for (size_t i = 0; i < e820.size(); ++i) {
        HvmMemmapEntry entry{e820[i].address, e820[i].size, e820[i].type, 0};
        memory.write_obj(GuestAddress(kPvhMemmapAddress + i * sizeof(entry)), entry);
    }

    HvmStartInfo info{};
    info.magic = kPvhStartInfoMagic;
    info.version = 1;  // version 1 adds the memory map
    info.cmdline_paddr = cmdline_address;
    info.memmap_paddr = kPvhMemmapAddress;
    info.memmap_entries = static_cast<uint32_t>(e820.size());
    if (initrd) {
        HvmModlistEntry module{initrd->address, initrd->size, 0, 0};
        memory.write_obj(GuestAddress(kPvhModlistAddress), module);
        info.nr_modules = 1;
        info.modlist_paddr = kPvhModlistAddress;
    }
    memory.write_obj(GuestAddress(kPvhStartInfoAddress), info);
    return kPvhStartInfoAddress;
}

}  // namespace vmm::x86
