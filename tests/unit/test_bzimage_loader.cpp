// bzImage loader: setup header validation, protected-mode code at 1 MiB, the
// 64-bit entry, and the memory the kernel needs to decompress.
#include <catch2/catch.hpp>

#include "arch/x86_64/kernel_image.hpp"
#include "test_helpers.hpp"
#include "vmm/memory/image_file.hpp"

using Catch::Contains;
using test::Bytes;
using vmm::ImageFile;
using vmm::x86::KernelImage;

namespace {

constexpr size_t kKernelSize = 0x1000;

KernelImage load(const Bytes& image, const vmm::GuestMemory& memory) {
    test::TempFile file(image);
    ImageFile kernel(file.path(), "kernel");
    return vmm::x86::load_kernel(kernel, memory);
}

KernelImage load(const Bytes& image) {
    vmm::GuestMemory memory = test::make_guest_memory();
    return load(image, memory);
}

Bytes kernel_code() {
    return test::pattern(kKernelSize, 0x31);
}

setup_header header() {
    return test::default_setup_header(kKernelSize);
}

}  // namespace

TEST_CASE("bzImage loads protected-mode code at 1 MiB with entry64 at +0x200", "[bzimage]") {
    vmm::GuestMemory memory = test::make_guest_memory();
    Bytes code = kernel_code();
    KernelImage image = load(test::make_bzimage(header(), code), memory);

    CHECK(image.format == KernelImage::Format::BzImage);
    CHECK(image.entry64 == 0x100200);
    CHECK(test::read_guest(memory, 0x100000, code.size()) == code);
    // The setup sectors are not loaded anywhere near.
    CHECK(memory.read_obj<uint8_t>(vmm::GuestAddress(0x100000 + kKernelSize)) == 0);
    CHECK(memory.read_obj<uint8_t>(vmm::GuestAddress(0xfffff)) == 0);
    // Not relocatable: it decompresses at 1 MiB and needs init_size from there.
    CHECK(image.load_end == 0x100000 + 0x400000);
    CHECK(image.cmdline_max == 2047);
    CHECK(image.initrd_address_max == 0x7fffffff);
    CHECK_FALSE(image.pvh_entry.has_value());
}

TEST_CASE("bzImage setup header is copied into the image", "[bzimage]") {
    setup_header hdr = header();
    hdr.kernel_version = 0x1234;
    hdr.vid_mode = 0xfffd;
    KernelImage image = load(test::make_bzimage(hdr, kernel_code()));
    REQUIRE(image.header.has_value());
    setup_header copy = *image.header;
    CHECK(uint16_t(copy.boot_flag) == 0xaa55);
    CHECK(uint32_t(copy.header) == test::kHdrSMagic);
    CHECK(uint16_t(copy.version) == 0x020f);
    CHECK(uint16_t(copy.kernel_version) == 0x1234);
    CHECK(uint16_t(copy.vid_mode) == 0xfffd);
    CHECK(uint8_t(copy.setup_sects) == 1);
    CHECK(uint32_t(copy.syssize) == kKernelSize / 16);
    CHECK(uint32_t(copy.init_size) == 0x400000);
    CHECK((copy.xloadflags & XLF_KERNEL_64) != 0);
    CHECK(std::memcmp(&copy, &hdr, sizeof(hdr)) == 0);
}

TEST_CASE("bzImage with setup_sects 0 means four setup sectors", "[bzimage]") {
    vmm::GuestMemory memory = test::make_guest_memory();
    setup_header hdr = header();
    hdr.setup_sects = 0;
    Bytes code = kernel_code();
    load(test::make_bzimage(hdr, code, 4), memory);
    CHECK(test::read_guest(memory, 0x100000, code.size()) == code);
}

TEST_CASE("bzImage relocatable kernel needs init_size from its run address", "[bzimage]") {
    setup_header hdr = header();
    hdr.relocatable_kernel = 1;
    hdr.kernel_alignment = 0x200000;
    hdr.pref_address = 0x1000000;
    hdr.init_size = 0x1000000;
    KernelImage image = load(test::make_bzimage(hdr, kernel_code()));
    CHECK(image.load_end == 0x2000000);
    CHECK(image.entry64 == 0x100200);
}

TEST_CASE("bzImage without initrd_addr_max uses the legacy limit", "[bzimage]") {
    setup_header hdr = header();
    hdr.initrd_addr_max = 0;
    CHECK(load(test::make_bzimage(hdr, kernel_code())).initrd_address_max == 0x37ffffff);
}

TEST_CASE("bzImage rejects a bad boot flag", "[bzimage]") {
    setup_header hdr = header();
    hdr.boot_flag = 0x55aa;
    CHECK_THROWS_WITH(load(test::make_bzimage(hdr, kernel_code())), Contains("boot flag"));
}

TEST_CASE("bzImage rejects an old boot protocol", "[bzimage]") {
    setup_header hdr = header();
    hdr.version = 0x0200;
    CHECK_THROWS_WITH(load(test::make_bzimage(hdr, kernel_code())),
                      Contains("too old") && Contains("2.00"));
    hdr.version = 0x020b;  // 2.11: one short of xloadflags
    CHECK_THROWS_WITH(load(test::make_bzimage(hdr, kernel_code())), Contains("too old"));
    hdr.version = 0x020c;
    CHECK_NOTHROW(load(test::make_bzimage(hdr, kernel_code())));
}

TEST_CASE("bzImage rejects a kernel without XLF_KERNEL_64", "[bzimage]") {
    setup_header hdr = header();
    hdr.xloadflags = XLF_CAN_BE_LOADED_ABOVE_4G;
    CHECK_THROWS_WITH(load(test::make_bzimage(hdr, kernel_code())), Contains("XLF_KERNEL_64"));
}

TEST_CASE("bzImage rejects a zImage (not LOADED_HIGH)", "[bzimage]") {
    setup_header hdr = header();
    hdr.loadflags = 0;
    CHECK_THROWS_WITH(load(test::make_bzimage(hdr, kernel_code())), Contains("zImage"));
}

TEST_CASE("bzImage reads only as much header as the jump says", "[bzimage]") {
    // The jump covers the header only up to the version field: loadflags and
    // everything after it are not part of this (old) header, so read as zero.
    setup_header hdr = header();
    hdr.jump = static_cast<uint16_t>(0xeb | (6 << 8));
    CHECK_THROWS_WITH(load(test::make_bzimage(hdr, kernel_code())), Contains("zImage"));
}

TEST_CASE("bzImage rejects a kernel shorter than syssize says", "[bzimage]") {
    setup_header hdr = header();
    hdr.syssize = (kKernelSize + 0x100) / 16;
    CHECK_THROWS_WITH(load(test::make_bzimage(hdr, kernel_code())),
                      Contains("truncated") && Contains("declares"));
}

TEST_CASE("bzImage accepts syssize rounded up to a 16-byte paragraph", "[bzimage]") {
    vmm::GuestMemory memory = test::make_guest_memory();
    Bytes code = test::pattern(kKernelSize + 8, 0x44);
    setup_header hdr = test::default_setup_header(code.size());
    REQUIRE(uint32_t(hdr.syssize) * 16 > code.size());
    load(test::make_bzimage(hdr, code), memory);
    CHECK(test::read_guest(memory, 0x100000, code.size()) == code);
}

TEST_CASE("bzImage rejects setup sectors beyond the end of the file", "[bzimage]") {
    setup_header hdr = header();
    hdr.setup_sects = 60;  // the file has one setup sector and 4 KiB of kernel
    CHECK_THROWS_WITH(load(test::make_bzimage(hdr, kernel_code(), 1)),
                      Contains("truncated") && Contains("setup code"));
}

TEST_CASE("bzImage rejects a file that ends inside the setup header", "[bzimage]") {
    Bytes image = test::make_bzimage(header(), kernel_code());
    image.resize(0x240);  // "HdrS" is there, the rest of the header is not
    CHECK_THROWS_WITH(load(image), Contains("truncated"));
}

TEST_CASE("bzImage rejects a kernel with no code at the 64-bit entry", "[bzimage]") {
    setup_header hdr = test::default_setup_header(0x200);
    CHECK_THROWS_WITH(load(test::make_bzimage(hdr, test::pattern(0x200))),
                      Contains("no code at the 64-bit entry point"));
}

TEST_CASE("bzImage rejects init_size too big for guest memory", "[bzimage]") {
    setup_header hdr = header();
    hdr.init_size = 0x10000000;  // 256 MiB to decompress in a 128 MiB guest
    CHECK_THROWS_WITH(load(test::make_bzimage(hdr, kernel_code())),
                      Contains("kernel needs") && Contains("128 MiB"));

    setup_header high = header();
    high.relocatable_kernel = 1;
    high.pref_address = 0x100000000;  // runs at 4 GiB: not low RAM
    high.init_size = 0x1000000;
    vmm::GuestMemory big = test::make_guest_memory(5ull << 30);
    CHECK_THROWS_WITH(load(test::make_bzimage(high, kernel_code()), big), Contains("kernel needs"));
}

// Regression test for a fixed bug (arch/x86_64/bzimage_loader.cpp, load_bzimage, the `needed_end`
// computation): `run_address + hdr.init_size` is not overflow-checked. A
// relocatable bzImage whose pref_address is near 2^64 wraps the sum to a small
// value, so the "kernel needs N MiB" check passes and load_end is bogus.
// This test fails until the addition is checked.
TEST_CASE("bzImage rejects a pref_address that wraps past 2^64", "[bzimage]") {
    setup_header hdr = header();
    hdr.relocatable_kernel = 1;
    hdr.kernel_alignment = 0x200000;
    hdr.pref_address = 0xffffffffffe00000;
    hdr.init_size = 0x400000;  // run_address + init_size wraps to 0x200000
    CHECK_THROWS_WITH(load(test::make_bzimage(hdr, kernel_code())), Contains("kernel needs"));
}
