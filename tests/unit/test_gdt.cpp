// The boot GDT and the KVM segments decoded from it.
#include <catch2/catch.hpp>

#include "arch/x86_64/gdt.hpp"

using vmm::x86::boot_gdt;
using vmm::x86::gdt_entry;
using vmm::x86::segment_from_gdt_entry;

TEST_CASE("gdt_entry packs base, limit and flags", "[gdt]") {
    // The classic flat 64-bit code descriptor.
    CHECK(gdt_entry(0xa09b, 0, 0xfffff) == 0x00af9b000000ffffull);
    CHECK(gdt_entry(0xc093, 0, 0xfffff) == 0x00cf93000000ffffull);
    // Base split over bits 16-39 and 56-63, limit over 0-15 and 48-51.
    CHECK(gdt_entry(0x0093, 0x12345678, 0xabcde) == 0x120a93345678bcdeull);
}

TEST_CASE("gdt 64-bit code segment", "[gdt]") {
    auto gdt = boot_gdt();
    kvm_segment cs =
        segment_from_gdt_entry(gdt[vmm::x86::kCode64Selector / 8], vmm::x86::kCode64Selector);
    CHECK(cs.selector == 0x10);
    CHECK(cs.base == 0);
    CHECK(cs.limit == 0xffffffff);
    CHECK(cs.type == 0xb);  // execute/read, accessed
    CHECK(cs.present == 1);
    CHECK(cs.dpl == 0);
    CHECK(cs.s == 1);
    CHECK(cs.l == 1);
    CHECK(cs.db == 0);
    CHECK(cs.g == 1);
    CHECK(cs.unusable == 0);
}

TEST_CASE("gdt 32-bit code segment for PVH", "[gdt]") {
    auto gdt = boot_gdt();
    kvm_segment cs =
        segment_from_gdt_entry(gdt[vmm::x86::kCode32Selector / 8], vmm::x86::kCode32Selector);
    CHECK(cs.selector == 0x08);
    CHECK(cs.limit == 0xffffffff);
    CHECK(cs.type == 0xb);
    CHECK(cs.l == 0);
    CHECK(cs.db == 1);
}

TEST_CASE("gdt data segment", "[gdt]") {
    auto gdt = boot_gdt();
    kvm_segment ds =
        segment_from_gdt_entry(gdt[vmm::x86::kDataSelector / 8], vmm::x86::kDataSelector);
    CHECK(ds.selector == 0x18);
    CHECK(ds.base == 0);
    CHECK(ds.limit == 0xffffffff);
    CHECK(ds.type == 0x3);  // read/write, accessed
    CHECK(ds.s == 1);
    CHECK(ds.present == 1);
    CHECK(ds.l == 0);
    CHECK(ds.db == 1);
    CHECK(ds.g == 1);
}

TEST_CASE("gdt TSS descriptor is a busy system segment", "[gdt]") {
    auto gdt = boot_gdt();
    kvm_segment tr =
        segment_from_gdt_entry(gdt[vmm::x86::kTssSelector / 8], vmm::x86::kTssSelector);
    CHECK(tr.selector == 0x20);
    CHECK(tr.type == 0xb);
    CHECK(tr.s == 0);
    CHECK(tr.present == 1);
    CHECK(tr.g == 0);
    CHECK(tr.limit == 0xfffff);  // byte granular: not scaled
}

TEST_CASE("gdt null and non-present entries are unusable", "[gdt]") {
    CHECK(boot_gdt()[0] == 0);
    kvm_segment null = segment_from_gdt_entry(0, 0);
    CHECK(null.present == 0);
    CHECK(null.unusable == 1);
}

TEST_CASE("gdt segment decodes base and byte-granular limit", "[gdt]") {
    kvm_segment seg = segment_from_gdt_entry(gdt_entry(0x4093, 0x12345678, 0xabcde), 0x28);
    CHECK(seg.base == 0x12345678);
    CHECK(seg.limit == 0xabcde);
    CHECK(seg.g == 0);
    CHECK(seg.db == 1);
    CHECK(seg.selector == 0x28);
}
