// bzImage loader, per Documentation/x86/boot.rst: the setup header is parsed
// and validated, the protected-mode kernel goes to 1 MiB, and the 64-bit
// entry (protocol 2.12+, XLF_KERNEL_64) is load address + 0x200.
#include <cstring>

#include "arch/x86_64/kernel_image.hpp"
#include "arch/x86_64/layout.hpp"

namespace vmm::x86 {

namespace {

constexpr uint64_t kHeaderOffset = 0x1f1;
constexpr uint16_t kMinimumVersion = 0x020c;  // xloadflags first appear in 2.12
constexpr uint64_t kEntry64Offset = 0x200;
constexpr uint32_t kLegacyInitrdMax = 0x37ffffff;

Error bad_bzimage(const ImageFile& file, const std::string& problem) {
    return Error(fmt::format("kernel '{}': {}", file.path(), problem));
}

// kernel_alignment is a 32-bit field, so this cannot overflow for values below 4 GiB.
uint64_t align_up(uint64_t value, uint64_t alignment) {
    return alignment == 0 ? value : (value + alignment - 1) / alignment * alignment;
}

}  // namespace

KernelImage load_bzimage(const ImageFile& file, const GuestMemory& memory) {
    // The header's own length is given by the jump at 0x200 (its second byte
    // is the offset of the jump target from 0x202).
    uint8_t jump_length = 0;
    file.read_exact(0x201, std::span(&jump_length, 1));
    uint64_t header_end =
        std::min<uint64_t>(0x202 + jump_length, kHeaderOffset + sizeof(setup_header));

    setup_header hdr{};
    file.read_exact(kHeaderOffset,
                    std::span(reinterpret_cast<uint8_t*>(&hdr), header_end - kHeaderOffset));
    if (hdr.boot_flag != 0xaa55) {
        throw bad_bzimage(file, "bzImage boot flag is not 0xAA55");
    }
    if (hdr.version < kMinimumVersion) {
        throw bad_bzimage(file, fmt::format("boot protocol {}.{:02} is too old; the 64-bit entry "
                                            "needs 2.12 or later",
                                            hdr.version >> 8, hdr.version & 0xff));
    }
    if (!(hdr.loadflags & LOADED_HIGH)) {
        throw bad_bzimage(file, "zImage (loaded low) kernels are not supported");
    }
    if (!(hdr.xloadflags & XLF_KERNEL_64)) {
        throw bad_bzimage(file, "bzImage has no 64-bit entry point (XLF_KERNEL_64 not set)");
    }

    uint64_t setup_sectors = hdr.setup_sects == 0 ? 4 : hdr.setup_sects;
    uint64_t setup_bytes = (setup_sectors + 1) * 512;
    if (setup_bytes >= file.size()) {
        throw bad_bzimage(file, fmt::format("truncated: {} bytes of setup code but the file has {}",
                                            setup_bytes, file.size()));
    }
    uint64_t kernel_bytes = file.size() - setup_bytes;
    // syssize counts 16-byte paragraphs, rounded up by the kernel's build.
    uint64_t declared_bytes = uint64_t(hdr.syssize) * 16;
    if (declared_bytes > kernel_bytes + 15) {
        throw bad_bzimage(file,
                          fmt::format("truncated: header declares {} bytes of kernel, the file "
                                      "has {}",
                                      declared_bytes, kernel_bytes));
    }
    if (kernel_bytes <= kEntry64Offset) {
        throw bad_bzimage(file, "truncated: no code at the 64-bit entry point");
    }

    // The kernel decompresses in place and needs init_size bytes from its
    // (aligned) run address; a relocatable kernel runs at pref_address at least.
    uint64_t load_address = kHighMemoryStart;
    uint64_t run_address = load_address;
    if (hdr.relocatable_kernel) {
        run_address =
            std::max<uint64_t>(align_up(load_address, hdr.kernel_alignment), hdr.pref_address);
    }
    uint64_t low_ram_end = std::min(memory.total_size(), kMmioHoleStart);
    uint64_t init_end = 0;
    // pref_address and init_size come from the file: the sum may wrap.
    bool wraps = __builtin_add_overflow(run_address, uint64_t(hdr.init_size), &init_end);
    uint64_t needed_end = std::max(init_end, load_address + kernel_bytes);
    if (wraps || needed_end > low_ram_end) {
        uint64_t needed_mib = wraps ? UINT64_MAX >> 20 : (needed_end + (1 << 20) - 1) >> 20;
        throw bad_bzimage(
            file, fmt::format("kernel needs {} MiB of memory but the guest has {} MiB", needed_mib,
                              memory.total_size() >> 20));
    }
    file.read_into_guest(setup_bytes, kernel_bytes, memory, GuestAddress(load_address));

    KernelImage image;
    image.format = KernelImage::Format::BzImage;
    image.entry64 = load_address + kEntry64Offset;
    image.load_end = needed_end;
    image.header = hdr;
    // cmdline_size exists from 2.06 on and excludes the terminating NUL.
    image.cmdline_max = hdr.cmdline_size;
    image.initrd_address_max = hdr.initrd_addr_max != 0 ? hdr.initrd_addr_max : kLegacyInitrdMax;
    return image;
}

}  // namespace vmm::x86
