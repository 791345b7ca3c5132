// setup_boot end to end with temporary kernel and initrd files: the command
// line, zero page or PVH start info, initrd, GDT and page tables in guest RAM.
#include <catch2/catch.hpp>

#include "arch/x86_64/boot.hpp"
#include "arch/x86_64/e820.hpp"
#include "arch/x86_64/gdt.hpp"
#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/pvh.hpp"
#include "test_helpers.hpp"

using Catch::Contains;
using test::Bytes;
using test::kKernelPaddr;
using vmm::GuestAddress;
using vmm::x86::BootEntry;
using vmm::x86::BootFiles;
using vmm::x86::BootRequest;
using vmm::x86::BootSetup;
using vmm::x86::setup_boot;

namespace {

constexpr uint64_t kMemory = 128ull << 20;
constexpr uint64_t kPvhEntry = kKernelPaddr + 0x80;

struct Boot {
    vmm::GuestMemory memory = test::make_guest_memory(kMemory);
    test::TempFile kernel;
    std::string kernel_path;
    std::optional<std::string> initrd_path;
    BootRequest request;

    explicit Boot(const Bytes& image, std::string cmdline = "console=ttyS0 reboot=k")
        : kernel(image), kernel_path(kernel.path()) {
        request.cmdline = std::move(cmdline);
    }
    // Opens the files as the VMM does before KVM, then boots from them.
    BootSetup run() { return setup_boot(memory, BootFiles(kernel_path, initrd_path), request); }
};

Bytes plain_elf() {
    return test::make_elf(test::simple_kernel_spec());
}
Bytes pvh_elf() {
    return test::make_elf(test::simple_kernel_spec(kPvhEntry));
}

std::string guest_string(const vmm::GuestMemory& memory, uint64_t address, size_t max) {
    Bytes bytes = test::read_guest(memory, address, max);
    return std::string(bytes.begin(), std::find(bytes.begin(), bytes.end(), 0));
}

}  // namespace

TEST_CASE("setup_boot writes the command line at 0x20000", "[setup_boot]") {
    Boot boot(plain_elf(), "console=ttyS0 root=/dev/vda");
    boot.run();
    CHECK(guest_string(boot.memory, vmm::x86::kCmdlineAddress, 256) ==
          "console=ttyS0 root=/dev/vda");
    // NUL-terminated.
    CHECK(boot.memory.read_obj<uint8_t>(GuestAddress(vmm::x86::kCmdlineAddress + 27)) == 0);
}

TEST_CASE("setup_boot linux64 entry writes the zero page at 0x7000", "[setup_boot]") {
    Boot boot(plain_elf());
    BootSetup setup = boot.run();
    CHECK(setup.entry == BootEntry::Linux64);
    CHECK(setup.instruction_pointer == kKernelPaddr + 0x40);
    CHECK(setup.boot_info_address == vmm::x86::kZeroPageAddress);
    CHECK(setup.page_table_root == vmm::x86::kPml4Address);
    CHECK(setup.kernel_end == kKernelPaddr + 0x5000);
    CHECK_FALSE(setup.initrd.has_value());

    auto params = boot.memory.read_obj<boot_params>(GuestAddress(0x7000));
    CHECK(uint16_t(params.hdr.boot_flag) == 0xaa55);
    CHECK(uint32_t(params.hdr.header) == test::kHdrSMagic);
    CHECK(uint8_t(params.hdr.type_of_loader) == 0xff);
    CHECK(uint32_t(params.hdr.cmd_line_ptr) == 0x20000);
    CHECK(uint32_t(params.hdr.cmdline_size) == 2047);
    CHECK(uint32_t(params.hdr.ramdisk_image) == 0);
    auto e820 = vmm::x86::e820_map(kMemory);
    REQUIRE(params.e820_entries == e820.size());
    for (size_t i = 0; i < e820.size(); ++i) {
        CHECK(uint64_t(params.e820_table[i].addr) == e820[i].address);
        CHECK(uint64_t(params.e820_table[i].size) == e820[i].size);
        CHECK(uint32_t(params.e820_table[i].type) == e820[i].type);
    }
    // Page tables are in place; no PVH start info.
    CHECK((boot.memory.read_obj<uint64_t>(GuestAddress(0x9000)) & ~0xfffull) == 0xa000);
    CHECK(boot.memory.read_obj<uint32_t>(GuestAddress(0x6000)) == 0);
}

TEST_CASE("setup_boot auto entry picks PVH when the ELF has the note", "[setup_boot][pvh]") {
    Boot boot(pvh_elf(), "console=ttyS0");
    BootSetup setup = boot.run();
    CHECK(setup.entry == BootEntry::Pvh);
    CHECK(setup.instruction_pointer == kPvhEntry);
    CHECK(setup.boot_info_address == vmm::x86::kPvhStartInfoAddress);
    CHECK(setup.page_table_root == 0);

    auto info = boot.memory.read_obj<vmm::x86::HvmStartInfo>(GuestAddress(0x6000));
    CHECK(info.magic == 0x336ec578);
    CHECK(info.version == 1);
    CHECK(info.cmdline_paddr == 0x20000);
    CHECK(info.nr_modules == 0);
    CHECK(info.memmap_paddr == vmm::x86::kPvhMemmapAddress);
    auto e820 = vmm::x86::e820_map(kMemory);
    REQUIRE(info.memmap_entries == e820.size());
    for (size_t i = 0; i < e820.size(); ++i) {
        auto entry = boot.memory.read_obj<vmm::x86::HvmMemmapEntry>(
            GuestAddress(info.memmap_paddr + i * sizeof(vmm::x86::HvmMemmapEntry)));
        CHECK(entry.addr == e820[i].address);
        CHECK(entry.size == e820[i].size);
        CHECK(entry.type == e820[i].type);
    }
    CHECK(guest_string(boot.memory, info.cmdline_paddr, 64) == "console=ttyS0");
    // No zero page for PVH.
    CHECK(boot.memory.read_obj<uint16_t>(GuestAddress(0x7000 + 0x1fe)) == 0);
}

TEST_CASE("setup_boot linux64 entry can be forced on a PVH kernel", "[setup_boot][pvh]") {
    Boot boot(pvh_elf());
    boot.request.entry = BootEntry::Linux64;
    BootSetup setup = boot.run();
    CHECK(setup.entry == BootEntry::Linux64);
    CHECK(setup.instruction_pointer == kKernelPaddr + 0x40);
    CHECK(setup.boot_info_address == 0x7000);
    CHECK(boot.memory.read_obj<uint32_t>(GuestAddress(0x6000)) == 0);
}

TEST_CASE("setup_boot PVH entry on an ELF without the note throws", "[setup_boot][pvh]") {
    Boot boot(plain_elf());
    boot.request.entry = BootEntry::Pvh;
    CHECK_THROWS_WITH(boot.run(), Contains("no PVH entry note"));
}

TEST_CASE("setup_boot rejects a command line over the kernel's limit", "[setup_boot]") {
    Boot boot(plain_elf(), std::string(2048, 'a'));
    CHECK_THROWS_WITH(boot.run(), Contains("2048 bytes") && Contains("at most 2047"));

    Boot fits(plain_elf(), std::string(2047, 'b'));
    CHECK_NOTHROW(fits.run());
    CHECK(guest_string(fits.memory, 0x20000, 4096).size() == 2047);
}

TEST_CASE("setup_boot rejects a command line with a NUL byte", "[setup_boot]") {
    Boot boot(plain_elf(), std::string("console=ttyS0\0evil", 18));
    CHECK_THROWS_WITH(boot.run(), Contains("NUL"));
}

TEST_CASE("setup_boot places and loads the initrd", "[setup_boot][initrd]") {
    Bytes contents = test::pattern(10000, 77);
    test::TempFile initrd(contents);
    Boot boot(plain_elf());
    boot.initrd_path = initrd.path();
    BootSetup setup = boot.run();

    REQUIRE(setup.initrd.has_value());
    CHECK(setup.initrd->size == 10000);
    CHECK(setup.initrd->address == 0x7ffd000);  // highest page below 128 MiB
    CHECK(test::read_guest(boot.memory, setup.initrd->address, contents.size()) == contents);

    auto params = boot.memory.read_obj<boot_params>(GuestAddress(0x7000));
    CHECK(uint32_t(params.hdr.ramdisk_image) == 0x7ffd000);
    CHECK(uint32_t(params.hdr.ramdisk_size) == 10000);
}

TEST_CASE("setup_boot lists the initrd as a PVH module", "[setup_boot][initrd][pvh]") {
    Bytes contents = test::pattern(0x2000, 12);
    test::TempFile initrd(contents);
    Boot boot(pvh_elf());
    boot.initrd_path = initrd.path();
    BootSetup setup = boot.run();
    REQUIRE(setup.initrd.has_value());

    auto info = boot.memory.read_obj<vmm::x86::HvmStartInfo>(GuestAddress(0x6000));
    CHECK(info.nr_modules == 1);
    REQUIRE(info.modlist_paddr == vmm::x86::kPvhModlistAddress);
    auto module = boot.memory.read_obj<vmm::x86::HvmModlistEntry>(GuestAddress(info.modlist_paddr));
    CHECK(module.paddr == setup.initrd->address);
    CHECK(module.size == 0x2000);
    CHECK(test::read_guest(boot.memory, module.paddr, module.size) == contents);
}

TEST_CASE("setup_boot rejects an initrd too big for guest memory", "[setup_boot][initrd]") {
    test::TempFile initrd = test::TempFile::sparse(130ull << 20);
    Boot boot(plain_elf());
    boot.initrd_path = initrd.path();
    CHECK_THROWS_WITH(boot.run(), Contains("initrd") && Contains("does not fit"));

    // Just too big to fit above the kernel (which ends at 16 MiB + 20 KiB).
    test::TempFile tight = test::TempFile::sparse(kMemory - kKernelPaddr - 0x5000 + 0x1000);
    Boot over_kernel(plain_elf());
    over_kernel.initrd_path = tight.path();
    CHECK_THROWS_WITH(over_kernel.run(), Contains("does not fit"));
}

TEST_CASE("boot files: a missing, directory or empty kernel or initrd is reported",
          "[setup_boot]") {
    test::TempFile kernel(plain_elf());
    test::TempFile empty;
    test::TempDir directory;
    CHECK_THROWS_WITH(BootFiles("/nonexistent/vmlinux", std::nullopt),
                      Contains("cannot open kernel"));
    CHECK_THROWS_WITH(BootFiles(directory.path(), std::nullopt),
                      Contains("kernel") && Contains("is a directory"));
    CHECK_THROWS_WITH(BootFiles(empty.path(), std::nullopt),
                      Contains("kernel") && Contains("is empty"));
    CHECK_THROWS_WITH(BootFiles(kernel.path(), "/nonexistent/initrd.img"),
                      Contains("cannot open initrd"));
    CHECK_THROWS_WITH(BootFiles(kernel.path(), empty.path()),
                      Contains("initrd") && Contains("is empty"));
    CHECK_NOTHROW(BootFiles(kernel.path(), std::nullopt));
}

TEST_CASE("setup_boot with a bzImage copies its header into the zero page", "[setup_boot]") {
    setup_header hdr = test::default_setup_header(0x1000);
    hdr.cmdline_size = 255;
    hdr.kernel_version = 0x0abc;
    Boot boot(test::make_bzimage(hdr, test::pattern(0x1000)), "console=ttyS0");
    BootSetup setup = boot.run();
    CHECK(setup.entry == BootEntry::Linux64);
    CHECK(setup.instruction_pointer == 0x100200);
    CHECK(setup.kernel_end == 0x500000);
    auto params = boot.memory.read_obj<boot_params>(GuestAddress(0x7000));
    CHECK(uint16_t(params.hdr.version) == 0x020f);
    CHECK(uint16_t(params.hdr.kernel_version) == 0x0abc);
    CHECK(uint32_t(params.hdr.init_size) == 0x400000);
    CHECK(uint8_t(params.hdr.type_of_loader) == 0xff);
    CHECK(uint32_t(params.hdr.cmdline_size) == 255);

    Boot too_long(test::make_bzimage(hdr, test::pattern(0x1000)), std::string(256, 'x'));
    CHECK_THROWS_WITH(too_long.run(), Contains("at most 255"));
    Boot pvh(test::make_bzimage(hdr, test::pattern(0x1000)));
    pvh.request.entry = BootEntry::Pvh;
    CHECK_THROWS_WITH(pvh.run(), Contains("no PVH entry note"));
}

// Regression test for a fixed bug (arch/x86_64/layout.hpp: kIdtAddress = 0x520, used by write_gdt
// in arch/x86_64/boot.cpp): the boot GDT has five 8-byte entries at 0x500..0x527, so the 8-byte
// empty IDT written at 0x520 overwrites GDT entry 4, the TSS descriptor (selector 0x20) that
// setup_boot_registers loads into TR. The GDT in guest memory then no longer matches the loaded
// segments. Fails until the IDT is moved past the GDT (e.g. 0x530).
TEST_CASE("setup_boot writes the whole boot GDT to guest memory", "[setup_boot][gdt]") {
    Boot boot(plain_elf());
    boot.run();
    auto gdt = vmm::x86::boot_gdt();
    for (size_t i = 0; i < gdt.size(); ++i) {
        INFO("GDT entry " << i);
        CHECK(boot.memory.read_obj<uint64_t>(GuestAddress(vmm::x86::kGdtAddress + i * 8)) ==
              gdt[i]);
    }
    CHECK(vmm::x86::kIdtAddress >= vmm::x86::kGdtAddress + sizeof(gdt));
}
