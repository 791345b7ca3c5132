// The boot GDT shared by both entry paths: flat 32-bit code (PVH), 64-bit code
// and flat data (Linux 64-bit boot protocol), and a TSS so TR is valid.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>

namespace vmm::x86 {

inline constexpr uint16_t kCode32Selector = 0x08;
inline constexpr uint16_t kCode64Selector = 0x10;  // __BOOT_CS
inline constexpr uint16_t kDataSelector = 0x18;    // __BOOT_DS
inline constexpr uint16_t kTssSelector = 0x20;

// Packs a segment descriptor from base, limit and the 12 flag bits (access byte
// in bits 0-7, granularity/size nibble in bits 12-15).
constexpr uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
    return ((uint64_t(base) & 0xff000000) << 32) | ((uint64_t(flags) & 0xf0ff) << 40) |
           ((uint64_t(limit) & 0x000f0000) << 32) | ((uint64_t(base) & 0x00ffffff) << 16) |
           (uint64_t(limit) & 0x0000ffff);
}

// The table written to guest memory, indexed by selector / 8.
std::array<uint64_t, 5> boot_gdt();

// The KVM view of descriptor `entry` loaded with `selector`.
kvm_segment segment_from_gdt_entry(uint64_t entry, uint16_t selector);

}  // namespace vmm::x86
