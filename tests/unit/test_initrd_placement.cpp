// place_initrd: the highest page-aligned spot above the kernel, below both the
// kernel's initrd_addr_max and the end of low RAM.
#include <catch2/catch.hpp>

#include "arch/x86_64/boot.hpp"

using vmm::x86::place_initrd;

namespace {
constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kNoLimit = 0xbfffffff;
}  // namespace

TEST_CASE("place_initrd puts the initrd at the top of low RAM", "[initrd]") {
    auto address = place_initrd(0x10000, 16 * kMiB, kNoLimit, 128 * kMiB);
    REQUIRE(address.has_value());
    CHECK(*address == 128 * kMiB - 0x10000);
}

TEST_CASE("place_initrd page-aligns an initrd of odd size", "[initrd]") {
    auto address = place_initrd(10000, 16 * kMiB, kNoLimit, 128 * kMiB);
    REQUIRE(address.has_value());
    CHECK(*address % 0x1000 == 0);
    CHECK(*address + 10000 <= 128 * kMiB);
    CHECK(*address == 0x7ffd000);  // the highest such spot
}

TEST_CASE("place_initrd respects address_max", "[initrd]") {
    // A legacy kernel: the initrd's last byte at most 0x37ffffff.
    auto address = place_initrd(0x100000, 16 * kMiB, 0x37ffffff, 2048 * kMiB);
    REQUIRE(address.has_value());
    CHECK(*address == 0x38000000 - 0x100000);
    CHECK(*address + 0x100000 - 1 <= 0x37ffffff);

    // An unaligned limit rounds down to a page.
    auto unaligned = place_initrd(0x1000, 16 * kMiB, 0x37ffff00, 2048 * kMiB);
    REQUIRE(unaligned.has_value());
    CHECK(*unaligned == 0x37ffe000);
    CHECK(*unaligned + 0x1000 - 1 <= 0x37ffff00);

    // address_max exactly at the end of RAM minus one, and far beyond it.
    CHECK(place_initrd(0x1000, 0, 128 * kMiB - 1, 128 * kMiB) == 128 * kMiB - 0x1000);
    CHECK(place_initrd(0x1000, 0, UINT64_MAX, 128 * kMiB) == 128 * kMiB - 0x1000);
}

TEST_CASE("place_initrd respects the end of low RAM", "[initrd]") {
    // RAM ends below the kernel's limit, and not on a page boundary.
    auto address = place_initrd(0x2000, 16 * kMiB, kNoLimit, 0x7fff800);
    REQUIRE(address.has_value());
    CHECK(*address == 0x7ffd000);
    CHECK(*address + 0x2000 <= 0x7fff800);
}

TEST_CASE("place_initrd fails when the initrd would overlap the kernel", "[initrd]") {
    CHECK_FALSE(place_initrd(0x10000, 128 * kMiB - 0x8000, kNoLimit, 128 * kMiB).has_value());
    // Exactly adjacent to the kernel's end is fine...
    CHECK(place_initrd(0x10000, 128 * kMiB - 0x10000, kNoLimit, 128 * kMiB) ==
          128 * kMiB - 0x10000);
    // ...but a kernel ending one byte later rounds up to the next page.
    CHECK_FALSE(place_initrd(0x10000, 128 * kMiB - 0x10000 + 1, kNoLimit, 128 * kMiB).has_value());
    // The kernel beyond RAM entirely.
    CHECK_FALSE(place_initrd(0x1000, 256 * kMiB, kNoLimit, 128 * kMiB).has_value());
}

TEST_CASE("place_initrd fails when the initrd does not fit", "[initrd]") {
    CHECK_FALSE(place_initrd(129 * kMiB, 0, kNoLimit, 128 * kMiB).has_value());
    CHECK_FALSE(place_initrd(0x100000, 0, 0xfffff - 0x1000, 128 * kMiB).has_value());
    CHECK_FALSE(place_initrd(0, 16 * kMiB, kNoLimit, 128 * kMiB).has_value());
    CHECK_FALSE(place_initrd(UINT64_MAX, 0, UINT64_MAX, UINT64_MAX).has_value());
    // The whole of RAM, with no kernel in the way, does fit.
    CHECK(place_initrd(128 * kMiB, 0, kNoLimit, 128 * kMiB) == 0);
}
