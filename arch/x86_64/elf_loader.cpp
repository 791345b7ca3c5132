// vmlinux (ELF64) loader: PT_LOAD segments at their physical addresses, the
// PVH entry from the Xen PHYS32_ENTRY note, the 64-bit entry from e_entry.
#include <elf.h>

#include <cstring>
#include <vector>

#include "arch/x86_64/kernel_image.hpp"
#include "arch/x86_64/layout.hpp"

namespace vmm::x86 {

namespace {

constexpr uint32_t kXenElfnotePhys32Entry = 18;
constexpr uint16_t kMaxProgramHeaders = 128;
constexpr uint64_t kMaxNoteSize = 1 << 20;
// Linux's COMMAND_LINE_SIZE on x86 is 2048 including the NUL; an ELF carries
// no setup header that could say otherwise.
constexpr uint32_t kElfCmdlineMax = 2047;

Error bad_elf(const ImageFile& file, const std::string& problem) {
    return Error(fmt::format("kernel '{}': {}", file.path(), problem));
}

const char* machine_name(uint16_t machine) {
    switch (machine) {
        case EM_386:
            return "i386";
        case EM_ARM:
            return "arm";
        case EM_AARCH64:
            return "aarch64";
        case EM_RISCV:
            return "riscv";
        case EM_PPC64:
            return "ppc64";
        case EM_S390:
            return "s390";
        default:
            return "unknown";
    }
}

Elf64_Ehdr read_header(const ImageFile& file) {
    Elf64_Ehdr ehdr{};
    if (file.size() < sizeof(ehdr)) {
        throw bad_elf(file, "truncated ELF header");
    }
    file.read_exact(0, std::span(reinterpret_cast<uint8_t*>(&ehdr), sizeof(ehdr)));
    if (ehdr.e_ident[EI_CLASS] != ELFCLASS64) {
        throw bad_elf(file, "32-bit ELF kernels are not supported; use a 64-bit vmlinux");
    }
    if (ehdr.e_ident[EI_DATA] != ELFDATA2LSB) {
        throw bad_elf(file, "big-endian ELF is not an x86_64 kernel");
    }
    if (ehdr.e_machine != EM_X86_64) {
        throw bad_elf(file, fmt::format("ELF for another architecture ({}, machine {}), not x86_64",
                                        machine_name(ehdr.e_machine), ehdr.e_machine));
    }
    if (ehdr.e_type != ET_EXEC) {
        throw bad_elf(file, "ELF is not an executable (ET_EXEC)");
    }
    if (ehdr.e_phentsize != sizeof(Elf64_Phdr) || ehdr.e_phnum == 0 ||
        ehdr.e_phnum > kMaxProgramHeaders) {
        throw bad_elf(file, fmt::format("bad program header table ({} entries of {} bytes)",
                                        ehdr.e_phnum, ehdr.e_phentsize));
    }
    return ehdr;
}

std::vector<Elf64_Phdr> read_program_headers(const ImageFile& file, const Elf64_Ehdr& ehdr) {
    std::vector<Elf64_Phdr> phdrs(ehdr.e_phnum);
    uint64_t bytes = uint64_t(ehdr.e_phnum) * sizeof(Elf64_Phdr);
    if (ehdr.e_phoff > file.size() || bytes > file.size() - ehdr.e_phoff) {
        throw bad_elf(file, "truncated: program headers lie past the end of the file");
    }
    file.read_exact(ehdr.e_phoff, std::span(reinterpret_cast<uint8_t*>(phdrs.data()), bytes));
    return phdrs;
}

// Finds the PVH entry in one PT_NOTE segment, if it has one.
std::optional<uint64_t> find_pvh_note(const ImageFile& file, const Elf64_Phdr& note) {
    if (note.p_filesz == 0 || note.p_filesz > kMaxNoteSize) {
        return std::nullopt;
    }
    if (note.p_offset > file.size() || note.p_filesz > file.size() - note.p_offset) {
        throw bad_elf(file, "truncated: a note segment lies past the end of the file");
    }
    std::vector<uint8_t> data(note.p_filesz);
    file.read_exact(note.p_offset, data);
    auto align4 = [](uint64_t n) { return (n + 3) & ~uint64_t(3); };
    uint64_t pos = 0;
    while (data.size() - pos >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nhdr;
        std::memcpy(&nhdr, data.data() + pos, sizeof(nhdr));
        pos += sizeof(nhdr);
        uint64_t name_size = align4(nhdr.n_namesz);
        uint64_t desc_size = align4(nhdr.n_descsz);
        if (name_size > data.size() - pos || desc_size > data.size() - pos - name_size) {
            throw bad_elf(file, "malformed ELF note");
        }
        const uint8_t* name = data.data() + pos;
        const uint8_t* desc = name + name_size;
        bool is_xen = nhdr.n_namesz == 4 && std::memcmp(name, "Xen", 4) == 0;
        if (is_xen && nhdr.n_type == kXenElfnotePhys32Entry) {
            if (nhdr.n_descsz == 4) {
                uint32_t entry;
                std::memcpy(&entry, desc, 4);
                return entry;
            }
            if (nhdr.n_descsz == 8) {
                uint64_t entry;
                std::memcpy(&entry, desc, 8);
                return entry;
            }
            throw bad_elf(file, "malformed PVH entry note");
        }
        pos += name_size + desc_size;
    }
    return std::nullopt;
}

}  // namespace

KernelImage load_elf_kernel(const ImageFile& file, const GuestMemory& memory) {
    Elf64_Ehdr ehdr = read_header(file);
    std::vector<Elf64_Phdr> phdrs = read_program_headers(file, ehdr);

    KernelImage image;
    image.format = KernelImage::Format::Elf;
    image.cmdline_max = kElfCmdlineMax;
    std::optional<uint64_t> entry;
    size_t loaded = 0;
    for (size_t i = 0; i < phdrs.size(); ++i) {
        const Elf64_Phdr& ph = phdrs[i];
        if (ph.p_type == PT_NOTE && !image.pvh_entry) {
            image.pvh_entry = find_pvh_note(file, ph);
        }
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0) {
            continue;
        }
        if (ph.p_filesz > ph.p_memsz) {
            throw bad_elf(file, fmt::format("segment {} has more file bytes than memory bytes", i));
        }
        if (ph.p_offset > file.size() || ph.p_filesz > file.size() - ph.p_offset) {
            throw bad_elf(file, fmt::format("truncated: segment {} needs {} bytes at offset {:#x}, "
                                            "file has {}",
                                            i, ph.p_filesz, ph.p_offset, file.size()));
        }
        if (ph.p_paddr < kHighMemoryStart) {
            throw bad_elf(file, fmt::format("segment {} at {:#x} is below 1 MiB, where the VMM's "
                                            "boot structures live",
                                            i, ph.p_paddr));
        }
        auto end = GuestAddress(ph.p_paddr).checked_add(ph.p_memsz);
        if (!end || !memory.check_range(GuestAddress(ph.p_paddr), ph.p_memsz)) {
            throw bad_elf(file, fmt::format("segment {} ({:#x}+{:#x}) does not fit in guest "
                                            "memory ({} MiB)",
                                            i, ph.p_paddr, ph.p_memsz, memory.total_size() >> 20));
        }
        // Fresh anonymous guest memory is already zero, so the bss part
        // (p_memsz beyond p_filesz) needs no clearing and stays untouched.
        file.read_into_guest(ph.p_offset, ph.p_filesz, memory, GuestAddress(ph.p_paddr));
        image.load_end = std::max(image.load_end, end->value());
        ++loaded;
        // e_entry may be virtual (a kernel linked high); find the segment it is in.
        if (ehdr.e_entry >= ph.p_vaddr && ehdr.e_entry - ph.p_vaddr < ph.p_memsz) {
            entry = ph.p_paddr + (ehdr.e_entry - ph.p_vaddr);
        } else if (ehdr.e_entry >= ph.p_paddr && ehdr.e_entry - ph.p_paddr < ph.p_memsz) {
            entry = ehdr.e_entry;
        }
    }
    if (loaded == 0) {
        throw bad_elf(file, "ELF has no loadable segments");
    }
    if (!entry) {
        throw bad_elf(
            file, fmt::format("entry point {:#x} is not inside any loaded segment", ehdr.e_entry));
    }
    image.entry64 = *entry;
    if (image.pvh_entry && !memory.check_range(GuestAddress(*image.pvh_entry), 1)) {
        throw bad_elf(file,
                      fmt::format("PVH entry {:#x} is outside guest memory", *image.pvh_entry));
    }
    // A 64-bit kernel can take its initrd anywhere in low RAM.
    image.initrd_address_max = kMmioHoleStart - 1;
    return image;
}

}  // namespace vmm::x86
