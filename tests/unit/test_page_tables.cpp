// write_identity_page_tables: walk PML4 -> PDPT -> PD in guest memory.
#include <catch2/catch.hpp>

#include <optional>

#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/page_tables.hpp"
#include "test_helpers.hpp"

using vmm::GuestAddress;

namespace {

constexpr uint64_t kPresent = 1ull << 0;
constexpr uint64_t kWritable = 1ull << 1;
constexpr uint64_t kHuge = 1ull << 7;
constexpr uint64_t kAddressMask = 0x000ffffffffff000ull;

uint64_t entry_at(const vmm::GuestMemory& memory, uint64_t table, uint64_t index) {
    return memory.read_obj<uint64_t>(GuestAddress(table + index * 8));
}

// Translates `va` the way the MMU would; nothing if it is not mapped.
std::optional<uint64_t> translate(const vmm::GuestMemory& memory, uint64_t cr3, uint64_t va) {
    uint64_t pml4e = entry_at(memory, cr3 & kAddressMask, (va >> 39) & 0x1ff);
    if (!(pml4e & kPresent)) {
        return std::nullopt;
    }
    uint64_t pdpte = entry_at(memory, pml4e & kAddressMask, (va >> 30) & 0x1ff);
    if (!(pdpte & kPresent) || (pdpte & kHuge)) {
        return std::nullopt;  // we never use 1 GiB pages
    }
    uint64_t pde = entry_at(memory, pdpte & kAddressMask, (va >> 21) & 0x1ff);
    if (!(pde & kPresent) || !(pde & kHuge) || !(pde & kWritable)) {
        return std::nullopt;
    }
    return (pde & 0x000fffffffe00000ull) | (va & 0x1fffff);
}

}  // namespace

TEST_CASE("identity page tables map the first 4 GiB with 2 MiB pages", "[page_tables]") {
    vmm::GuestMemory memory = test::make_guest_memory();
    uint64_t cr3 = vmm::x86::write_identity_page_tables(memory);
    CHECK(cr3 == vmm::x86::kPml4Address);

    for (uint64_t va :
         {0x0ull, 0x1234ull, 0x100000ull, 0x1000000ull, 0x7ffffffull, 0xbfffffffull, 0xc0000000ull,
          0xfee00000ull, 0xfee000f0ull, 0xfffff000ull, 0xffffffffull}) {
        INFO("address " << std::hex << va);
        auto pa = translate(memory, cr3, va);
        REQUIRE(pa.has_value());
        CHECK(*pa == va);
    }
}

TEST_CASE("identity page tables have the expected entries", "[page_tables]") {
    vmm::GuestMemory memory = test::make_guest_memory();
    uint64_t cr3 = vmm::x86::write_identity_page_tables(memory);

    uint64_t pml4e = entry_at(memory, cr3, 0);
    CHECK((pml4e & kAddressMask) == vmm::x86::kPdptAddress);
    CHECK((pml4e & (kPresent | kWritable)) == (kPresent | kWritable));
    CHECK(entry_at(memory, cr3, 1) == 0);
    CHECK(entry_at(memory, cr3, 511) == 0);

    for (uint64_t i = 0; i < 4; ++i) {
        uint64_t pdpte = entry_at(memory, vmm::x86::kPdptAddress, i);
        CHECK((pdpte & kAddressMask) == vmm::x86::kPdAddress + i * 0x1000);
        CHECK((pdpte & kHuge) == 0);
    }
    CHECK(entry_at(memory, vmm::x86::kPdptAddress, 4) == 0);

    // 0xfee00000 (the LAPIC): PD 3, entry 0x1f7.
    uint64_t lapic_pde = entry_at(memory, vmm::x86::kPdAddress + 3 * 0x1000, 0x1f7);
    CHECK(lapic_pde == (0xfee00000 | kPresent | kWritable | kHuge));
    // 0xc0000000 (the MMIO hole start): PD 3, entry 0.
    uint64_t hole_pde = entry_at(memory, vmm::x86::kPdAddress + 3 * 0x1000, 0);
    CHECK(hole_pde == (0xc0000000 | kPresent | kWritable | kHuge));
    // The last 2 MiB page below 4 GiB.
    CHECK(entry_at(memory, vmm::x86::kPdAddress + 3 * 0x1000, 511) ==
          (0xffe00000 | kPresent | kWritable | kHuge));
}

TEST_CASE("identity page tables do not map above 4 GiB", "[page_tables]") {
    vmm::GuestMemory memory = test::make_guest_memory();
    uint64_t cr3 = vmm::x86::write_identity_page_tables(memory);
    CHECK_FALSE(translate(memory, cr3, 0x100000000).has_value());
    CHECK_FALSE(translate(memory, cr3, 0xffffffff81000000).has_value());
}

TEST_CASE("identity page tables stay inside their pages", "[page_tables]") {
    vmm::GuestMemory memory = test::make_guest_memory();
    memory.fill(GuestAddress(0x8000), 0x1000, 0xcc);
    memory.fill(GuestAddress(0xf000), 0x1000, 0xcc);
    vmm::x86::write_identity_page_tables(memory);
    CHECK(test::read_guest(memory, 0x8000, 0x1000) == test::Bytes(0x1000, 0xcc));
    CHECK(test::read_guest(memory, 0xf000, 0x1000) == test::Bytes(0x1000, 0xcc));
}
