#include "arch/x86_64/gdt.hpp"

namespace vmm::x86 {

std::array<uint64_t, 5> boot_gdt() {
    return {
        0,                              // null
        gdt_entry(0xc09b, 0, 0xfffff),  // 0x08: code, 32-bit, 4 KiB granular
        gdt_entry(0xa09b, 0, 0xfffff),  // 0x10: code, 64-bit (L bit)
        gdt_entry(0xc093, 0, 0xfffff),  // 0x18: data, read/write
        gdt_entry(0x008b, 0, 0xfffff),  // 0x20: TSS, busy (type 11)
    };
}

kvm_segment segment_from_gdt_entry(uint64_t entry, uint16_t selector) {
    kvm_segment segment{};
    segment.base = ((entry >> 16) & 0xffffff) | (((entry >> 56) & 0xff) << 24);
    uint32_t limit = (entry & 0xffff) | (((entry >> 48) & 0xf) << 16);
    segment.g = (entry >> 55) & 1;
    // With 4 KiB granularity the limit counts pages; KVM wants it in bytes.
    segment.limit = segment.g ? (limit << 12) | 0xfff : limit;
    segment.selector = selector;
    segment.type = (entry >> 40) & 0xf;
    segment.s = (entry >> 44) & 1;
    segment.dpl = (entry >> 45) & 3;
    segment.present = (entry >> 47) & 1;
    segment.avl = (entry >> 52) & 1;
    segment.l = (entry >> 53) & 1;
    segment.db = (entry >> 54) & 1;
    segment.unusable = segment.present ? 0 : 1;
    return segment;
}

}  // namespace vmm::x86
