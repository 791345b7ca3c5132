// Which loader a kernel file needs: told apart by their magic numbers.
#include "arch/x86_64/kernel_image.hpp"

#include <elf.h>

#include <cstring>

#include "vmm/base/error.hpp"

namespace vmm::x86 {

KernelImage load_kernel(const ImageFile& file, const GuestMemory& memory) {
    uint8_t magic[4] = {};
    if (file.size() >= sizeof(magic)) {
        file.read_exact(0, magic);
    }
    if (std::memcmp(magic, ELFMAG, SELFMAG) == 0) {
        return load_elf_kernel(file, memory);
    }
    // A bzImage has "HdrS" at 0x202; anything shorter than its header is neither.
    uint8_t hdrs[4] = {};
    if (file.size() >= 0x206) {
        file.read_exact(0x202, hdrs);
    }
    if (std::memcmp(hdrs, "HdrS", 4) == 0) {
        return load_bzimage(file, memory);
    }
    throw Error(fmt::format("kernel '{}' is neither an ELF vmlinux nor a bzImage", file.path()));
}

}  // namespace vmm::x86
