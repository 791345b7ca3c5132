// libFuzzer target: a hostile kernel image (and initrd) handed to the boot
// setup. The input's kernel bytes become a file that x86::setup_boot loads
// into a small guest memory (ELF vmlinux with its PVH note, or bzImage),
// followed by the initrd placement, command line, zero page or PVH start
// info and page tables. Each must be loaded or refused with an Error; a
// read or write outside the file or guest RAM is a sanitizer report or an
// Error from the checked accessors. What is accepted must be consistent:
// the entry point and boot info inside RAM, the initrd page-aligned, above
// the kernel, inside low RAM and under the kernel's limit.
//
// Input (little-endian):
//   u8 flags: bits 0-1 entry (auto, linux64, pvh), bit 2 with an initrd,
//             bits 3-4 guest memory (2 MiB, 4 MiB, 16 MiB, 3 GiB + 2 MiB)
//   u8 unused, u16 command line length, u32 initrd size in bytes
//   the command line, then the kernel file (the rest)
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "arch/x86_64/boot.hpp"
#include "arch/x86_64/layout.hpp"
#include "fuzz_support.hpp"

namespace {

using vmm::GuestAddress;
namespace x86 = vmm::x86;

struct Header {
    uint8_t flags;
    uint8_t unused;
    uint16_t cmdline_length;
    uint32_t initrd_size;
};
static_assert(sizeof(Header) == 8);

constexpr uint64_t kMemorySizes[] = {2 << 20, 4 << 20, 16 << 20, (3ull << 30) + (2 << 20)};
// Larger initrds that could fit are cut down to this: placement does not
// depend on the size beyond whether it fits, and copying costs.
constexpr uint64_t kMaxCopiedInitrd = 1 << 20;

// A scratch file, rewritten for each input.
class ScratchFile {
  public:
    explicit ScratchFile(const char* name) {
        // On tmpfs where there is one: rewritten thousands of times a second.
        for (const char* dir : {"/dev/shm", "/tmp"}) {
            std::snprintf(path_, sizeof(path_), "%s/vmm-fuzz-%s-XXXXXX", dir, name);
            fd_ = ::mkstemp(path_);
            if (fd_ >= 0) {
                break;
            }
        }
        if (fd_ < 0) {
            std::abort();
        }
    }
    ~ScratchFile() {
        ::close(fd_);
        ::unlink(path_);
    }
    const char* path() const { return path_; }
    void fill(const uint8_t* data, size_t size) {
        if (::ftruncate(fd_, 0) < 0 || ::pwrite(fd_, data, size, 0) != ssize_t(size)) {
            std::abort();
        }
    }
    // Sparse: only the size matters to the placement.
    void resize(uint64_t size) {
        if (::ftruncate(fd_, 0) < 0 || ::ftruncate(fd_, off_t(size)) < 0) {
            std::abort();
        }
    }

  private:
    char path_[64];
    int fd_;
};

void check_setup(const vmm::GuestMemory& memory, const x86::BootSetup& setup,
                 std::optional<uint64_t> initrd_size, x86::BootEntry asked) {
    FUZZ_CHECK(setup.entry != x86::BootEntry::Auto);
    FUZZ_CHECK(asked == x86::BootEntry::Auto || setup.entry == asked);
    FUZZ_CHECK(memory.check_range(GuestAddress(setup.instruction_pointer), 1));
    FUZZ_CHECK(memory.check_range(GuestAddress(setup.boot_info_address), 1));
    FUZZ_CHECK(setup.initrd.has_value() == initrd_size.has_value());
    if (setup.initrd) {
        uint64_t low_ram_end = std::min(memory.total_size(), x86::kMmioHoleStart);
        FUZZ_CHECK(setup.initrd->size == *initrd_size);
        FUZZ_CHECK(setup.initrd->address % 4096 == 0);
        FUZZ_CHECK(setup.initrd->address >= setup.kernel_end);
        FUZZ_CHECK(setup.initrd->address <= low_ram_end &&
                   setup.initrd->size <= low_ram_end - setup.initrd->address);
    }
    if (setup.entry == x86::BootEntry::Linux64) {
        FUZZ_CHECK(setup.page_table_root != 0);
        auto params = memory.read_obj<boot_params>(GuestAddress(x86::kZeroPageAddress));
        FUZZ_CHECK(params.hdr.cmd_line_ptr == x86::kCmdlineAddress);
        if (setup.initrd) {
            FUZZ_CHECK(params.hdr.ramdisk_image == setup.initrd->address);
            FUZZ_CHECK(params.hdr.ramdisk_size == setup.initrd->size);
            // The kernel's limit holds (it reads the initrd up to initrd_addr_max).
            if (params.hdr.initrd_addr_max != 0) {
                FUZZ_CHECK(setup.initrd->address + setup.initrd->size - 1 <=
                           params.hdr.initrd_addr_max);
            }
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static ScratchFile kernel_file("kernel");
    static ScratchFile initrd_file("initrd");
    Header header;
    if (size < sizeof(header)) {
        return -1;
    }
    std::memcpy(&header, data, sizeof(header));
    size_t cmdline_length = std::min<size_t>(header.cmdline_length, size - sizeof(header));
    std::string cmdline(reinterpret_cast<const char*>(data) + sizeof(header), cmdline_length);
    const uint8_t* kernel = data + sizeof(header) + cmdline_length;
    size_t kernel_size = size - sizeof(header) - cmdline_length;

    uint64_t memory_size = kMemorySizes[(header.flags >> 3) % 4];
    std::optional<uint64_t> initrd_size;
    if (header.flags & 4) {
        initrd_size = header.initrd_size;
        if (*initrd_size > kMaxCopiedInitrd && *initrd_size <= memory_size) {
            *initrd_size %= kMaxCopiedInitrd;
        }
        if (*initrd_size == 0) {
            initrd_size = 1;  // an empty file is refused before any loading
        }
        initrd_file.resize(*initrd_size);
    }
    kernel_file.fill(kernel, kernel_size);
    static constexpr x86::BootEntry kEntries[] = {x86::BootEntry::Auto, x86::BootEntry::Linux64,
                                                  x86::BootEntry::Pvh, x86::BootEntry::Auto};
    x86::BootEntry entry = kEntries[header.flags % 4];

    auto memory = vmm::GuestMemory::create(x86::guest_ram_regions(memory_size));
    try {
        std::optional<std::string> initrd_path;
        if (initrd_size) {
            initrd_path = initrd_file.path();
        }
        x86::BootFiles files(kernel_file.path(), initrd_path);
        x86::BootSetup setup = x86::setup_boot(memory, files, {cmdline, entry});
        check_setup(memory, setup, initrd_size, entry);
    } catch (const vmm::Error&) {
        // Refused with a message: what a bad kernel or initrd must get.
    }
    return 0;
}
