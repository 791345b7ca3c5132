// e820_map and guest_ram_regions: the RAM layout around the 32-bit MMIO hole.
#include <catch2/catch.hpp>

#include "arch/x86_64/e820.hpp"
#include "arch/x86_64/layout.hpp"

using vmm::x86::e820_map;
using vmm::x86::E820Entry;
using vmm::x86::guest_ram_regions;
using vmm::x86::kE820Ram;
using vmm::x86::kE820Reserved;

namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
// What the map leaves out of RAM below 1 MiB: the EBDA and the VGA/BIOS window.
constexpr uint64_t kLowNotRam = 0x100000 - 0x9fc00;

void check_sorted_and_disjoint(const std::vector<E820Entry>& map) {
    for (size_t i = 0; i < map.size(); ++i) {
        INFO("entry " << i);
        CHECK(map[i].size > 0);
        if (i > 0) {
            CHECK(map[i - 1].address + map[i - 1].size <= map[i].address);
        }
    }
}

uint64_t total_of_type(const std::vector<E820Entry>& map, uint32_t type) {
    uint64_t total = 0;
    for (const auto& entry : map) {
        if (entry.type == type) {
            total += entry.size;
        }
    }
    return total;
}

uint64_t regions_total(const std::vector<vmm::GuestRegionSpec>& regions) {
    uint64_t total = 0;
    for (const auto& region : regions) {
        total += region.size;
    }
    return total;
}

// Every RAM entry of the map lies inside one of the guest's RAM regions.
void check_map_inside_regions(const std::vector<E820Entry>& map,
                              const std::vector<vmm::GuestRegionSpec>& regions) {
    for (const auto& entry : map) {
        if (entry.type != kE820Ram) {
            continue;
        }
        bool inside = false;
        for (const auto& region : regions) {
            inside |= entry.address >= region.start.value() &&
                      entry.address + entry.size <= region.start.value() + region.size;
        }
        INFO("e820 RAM entry at " << std::hex << entry.address);
        CHECK(inside);
    }
}

}  // namespace

TEST_CASE("e820 map for 128 MiB", "[e820]") {
    auto map = e820_map(128 * kMiB);
    REQUIRE(map.size() == 3);
    CHECK(map[0].address == 0);
    CHECK(map[0].size == 0x9fc00);
    CHECK(map[0].type == kE820Ram);
    CHECK(map[1].address == 0x9fc00);
    CHECK(map[1].size == 0x400);
    CHECK(map[1].type == kE820Reserved);
    CHECK(map[2].address == 0x100000);
    CHECK(map[2].size == 127 * kMiB);
    CHECK(map[2].type == kE820Ram);
    check_sorted_and_disjoint(map);
    CHECK(total_of_type(map, kE820Ram) == 128 * kMiB - kLowNotRam);

    auto regions = guest_ram_regions(128 * kMiB);
    REQUIRE(regions.size() == 1);
    CHECK(regions[0].start.value() == 0);
    CHECK(regions[0].size == 128 * kMiB);
    check_map_inside_regions(map, regions);
}

TEST_CASE("e820 map for exactly 3 GiB ends at the MMIO hole", "[e820]") {
    auto map = e820_map(3 * kGiB);
    REQUIRE(map.size() == 3);
    CHECK(map[2].address == 0x100000);
    CHECK(map[2].address + map[2].size == vmm::x86::kMmioHoleStart);
    check_sorted_and_disjoint(map);
    CHECK(total_of_type(map, kE820Ram) == 3 * kGiB - kLowNotRam);

    auto regions = guest_ram_regions(3 * kGiB);
    REQUIRE(regions.size() == 1);
    CHECK(regions[0].size == 0xc0000000);
    check_map_inside_regions(map, regions);
}

TEST_CASE("e820 map for 4 GiB splits at 0xc0000000 and resumes at 4 GiB", "[e820]") {
    auto map = e820_map(4 * kGiB);
    REQUIRE(map.size() == 4);
    CHECK(map[2].address == 0x100000);
    CHECK(map[2].address + map[2].size == 0xc0000000);
    CHECK(map[3].address == 0x100000000);
    CHECK(map[3].size == 1 * kGiB);
    CHECK(map[3].type == kE820Ram);
    check_sorted_and_disjoint(map);
    CHECK(total_of_type(map, kE820Ram) == 4 * kGiB - kLowNotRam);
    CHECK(total_of_type(map, kE820Reserved) == 0x400);

    auto regions = guest_ram_regions(4 * kGiB);
    REQUIRE(regions.size() == 2);
    CHECK(regions[0].start.value() == 0);
    CHECK(regions[0].size == 0xc0000000);
    CHECK(regions[1].start.value() == 0x100000000);
    CHECK(regions[1].size == 1 * kGiB);
    CHECK(regions_total(regions) == 4 * kGiB);
    check_map_inside_regions(map, regions);
}

TEST_CASE("e820 map never covers the MMIO hole", "[e820]") {
    for (uint64_t size :
         {4 * kMiB, 512 * kMiB, 3 * kGiB - 4 * kMiB, 3 * kGiB + 4 * kMiB, 16 * kGiB}) {
        INFO("memory size " << (size >> 20) << " MiB");
        auto map = e820_map(size);
        check_sorted_and_disjoint(map);
        for (const auto& entry : map) {
            bool below = entry.address + entry.size <= vmm::x86::kMmioHoleStart;
            bool above = entry.address >= vmm::x86::kMmioHoleEnd;
            CHECK((below || above));
        }
        CHECK(total_of_type(map, kE820Ram) == size - kLowNotRam);
        auto regions = guest_ram_regions(size);
        CHECK(regions_total(regions) == size);
        check_map_inside_regions(map, regions);
    }
}
