// make_boot_params: the zero page for the Linux 64-bit boot protocol.
#include <catch2/catch.hpp>

#include <cstddef>

#include "arch/x86_64/boot_params.hpp"
#include "test_helpers.hpp"

using Catch::Contains;
using vmm::x86::E820Entry;
using vmm::x86::InitrdPlacement;
using vmm::x86::make_boot_params;

namespace {

const std::vector<E820Entry> kMap{
    {0, 0x9fc00, vmm::x86::kE820Ram},
    {0x9fc00, 0x400, vmm::x86::kE820Reserved},
    {0x100000, 0x7f00000, vmm::x86::kE820Ram},
};

}  // namespace

TEST_CASE("boot_params layout matches the boot protocol offsets", "[boot_params]") {
    CHECK(offsetof(boot_params, hdr) == 0x1f1);
    CHECK(offsetof(boot_params, e820_entries) == 0x1e8);
    CHECK(offsetof(boot_params, e820_table) == 0x2d0);
    CHECK(offsetof(boot_params, ext_cmd_line_ptr) == 0x0c8);
    CHECK(sizeof(boot_params) == 0x1000);
}

TEST_CASE("make_boot_params fills loader, command line and e820 fields", "[boot_params]") {
    boot_params params = make_boot_params(std::nullopt, 0x20000, 2047, std::nullopt, kMap);
    CHECK(uint8_t(params.hdr.type_of_loader) == 0xff);
    CHECK(uint32_t(params.hdr.cmd_line_ptr) == 0x20000);
    CHECK(uint32_t(params.ext_cmd_line_ptr) == 0);
    CHECK(uint32_t(params.hdr.cmdline_size) == 2047);
    CHECK(uint16_t(params.hdr.vid_mode) == 0xffff);
    CHECK(uint32_t(params.hdr.ramdisk_image) == 0);
    CHECK(uint32_t(params.hdr.ramdisk_size) == 0);

    REQUIRE(params.e820_entries == 3);
    for (size_t i = 0; i < kMap.size(); ++i) {
        INFO("e820 entry " << i);
        CHECK(uint64_t(params.e820_table[i].addr) == kMap[i].address);
        CHECK(uint64_t(params.e820_table[i].size) == kMap[i].size);
        CHECK(uint32_t(params.e820_table[i].type) == kMap[i].type);
    }
    CHECK(uint64_t(params.e820_table[3].size) == 0);
}

TEST_CASE("make_boot_params synthesises a header when the kernel has none", "[boot_params]") {
    boot_params params = make_boot_params(std::nullopt, 0x20000, 2047, std::nullopt, kMap);
    CHECK(uint16_t(params.hdr.boot_flag) == 0xaa55);
    CHECK(uint32_t(params.hdr.header) == test::kHdrSMagic);
    CHECK(std::memcmp(&params.hdr.header, "HdrS", 4) == 0);
    CHECK(uint16_t(params.hdr.version) >= 0x020c);
    CHECK(uint32_t(params.hdr.kernel_alignment) != 0);
}

TEST_CASE("make_boot_params copies the kernel's setup header", "[boot_params]") {
    setup_header hdr = test::default_setup_header(0x1000);
    hdr.kernel_version = 0x4321;
    hdr.type_of_loader = 0x12;  // overwritten: we are an undefined loader
    hdr.cmd_line_ptr = 0xdead;  // overwritten too
    hdr.version = 0x020d;
    boot_params params = make_boot_params(hdr, 0x20000, 1000, std::nullopt, kMap);
    CHECK(uint16_t(params.hdr.version) == 0x020d);
    CHECK(uint16_t(params.hdr.kernel_version) == 0x4321);
    CHECK(uint32_t(params.hdr.init_size) == 0x400000);
    CHECK(uint8_t(params.hdr.type_of_loader) == 0xff);
    CHECK(uint32_t(params.hdr.cmd_line_ptr) == 0x20000);
    CHECK(uint32_t(params.hdr.cmdline_size) == 1000);
}

TEST_CASE("make_boot_params describes the initrd", "[boot_params]") {
    InitrdPlacement initrd{0x7000000, 0x123456};
    boot_params params = make_boot_params(std::nullopt, 0x20000, 2047, initrd, kMap);
    CHECK(uint32_t(params.hdr.ramdisk_image) == 0x7000000);
    CHECK(uint32_t(params.hdr.ramdisk_size) == 0x123456);
    CHECK(uint32_t(params.ext_ramdisk_image) == 0);
    CHECK(uint32_t(params.ext_ramdisk_size) == 0);
}

TEST_CASE("make_boot_params splits addresses above 4 GiB into ext_ fields", "[boot_params]") {
    InitrdPlacement initrd{0x123456000, 0x100001000};
    boot_params params = make_boot_params(std::nullopt, 0x200020000, 2047, initrd, kMap);
    CHECK(uint32_t(params.hdr.ramdisk_image) == 0x23456000);
    CHECK(uint32_t(params.ext_ramdisk_image) == 0x1);
    CHECK(uint32_t(params.hdr.ramdisk_size) == 0x00001000);
    CHECK(uint32_t(params.ext_ramdisk_size) == 0x1);
    CHECK(uint32_t(params.hdr.cmd_line_ptr) == 0x00020000);
    CHECK(uint32_t(params.ext_cmd_line_ptr) == 0x2);
}

TEST_CASE("make_boot_params accepts a full and rejects an overfull e820 table", "[boot_params]") {
    std::vector<E820Entry> map;
    for (uint64_t i = 0; i < E820_MAX_ENTRIES_ZEROPAGE; ++i) {
        map.push_back({i << 20, 0x1000, vmm::x86::kE820Ram});
    }
    boot_params params = make_boot_params(std::nullopt, 0x20000, 2047, std::nullopt, map);
    CHECK(params.e820_entries == E820_MAX_ENTRIES_ZEROPAGE);
    CHECK(uint64_t(params.e820_table[E820_MAX_ENTRIES_ZEROPAGE - 1].addr) == 127ull << 20);

    map.push_back({1ull << 40, 0x1000, vmm::x86::kE820Ram});
    CHECK_THROWS_WITH(make_boot_params(std::nullopt, 0x20000, 2047, std::nullopt, map),
                      Contains("e820") && Contains("129 entries") && Contains("128"));
}
