// Helpers for the unit tests: RAII temporary files (in /tmp unless told) and
// directories in /tmp, and in-memory builders for ELF64 and bzImage kernel
// images, crafted byte by byte from the structs in <elf.h> and <asm/bootparam.h>.
#pragma once

#include <asm/bootparam.h>
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "arch/x86_64/e820.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace test {

using Bytes = std::vector<uint8_t>;

// A file in /tmp (or `directory`) holding `contents`, removed when the
// object is destroyed.
class TempFile {
  public:
    explicit TempFile(const Bytes& contents = {}, const std::string& directory = "/tmp") {
        std::string name = directory + "/vmm-unit-XXXXXX";
        int fd = ::mkstemp(name.data());
        if (fd < 0) {
            throw std::runtime_error("mkstemp failed in " + directory);
        }
        path_ = name;
        size_t done = 0;
        while (done < contents.size()) {
            ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
            if (n <= 0) {
                ::close(fd);
                throw std::runtime_error("cannot write temp file");
            }
            done += static_cast<size_t>(n);
        }
        ::close(fd);
    }
    // A sparse file of `size` bytes (nothing written, so huge sizes are cheap).
    static TempFile sparse(uint64_t size) {
        TempFile file;
        if (::truncate(file.path_.c_str(), static_cast<off_t>(size)) != 0) {
            throw std::runtime_error("cannot truncate temp file");
        }
        return file;
    }
    TempFile(TempFile&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    TempFile& operator=(TempFile&&) = delete;
    ~TempFile() {
        if (!path_.empty()) {
            ::unlink(path_.c_str());
        }
    }

    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

// A directory in /tmp, removed (it must be empty) when destroyed.
class TempDir {
  public:
    TempDir() {
        char name[] = "/tmp/vmm-unit-dir-XXXXXX";
        if (::mkdtemp(name) == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        path_ = name;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() { ::rmdir(path_.c_str()); }

    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

// A named pipe in a fresh /tmp directory, both removed when destroyed.
class TempFifo {
  public:
    TempFifo() : path_(dir_.path() + "/fifo") {
        if (::mkfifo(path_.c_str(), 0600) != 0) {
            throw std::runtime_error("mkfifo failed");
        }
    }
    TempFifo(const TempFifo&) = delete;
    TempFifo& operator=(const TempFifo&) = delete;
    ~TempFifo() { ::unlink(path_.c_str()); }

    const std::string& path() const { return path_; }
    // Opens both ends for a moment, which lets an open() waiting for a peer
    // go on.
    void unblock() const {
        int fd = ::open(path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            ::close(fd);
        }
    }

  private:
    TempDir dir_;
    std::string path_;
};

struct Outcome {
    bool prompt = false;  // finished within the time allowed
    std::string error;    // what it threw (empty: nothing)
};

// Runs `open` on a thread and says whether it finished within `timeout` and
// what it threw. If it did not finish, `fifo` is unblocked so that the
// thread ends and the test fails instead of hanging.
template <class F>
Outcome outcome_within(F open, std::chrono::milliseconds timeout, const TempFifo& fifo) {
    auto result = std::async(std::launch::async, [open]() -> std::string {
        try {
            open();
        } catch (const std::exception& e) {
            return e.what();
        }
        return {};
    });
    Outcome outcome;
    outcome.prompt = result.wait_for(timeout) == std::future_status::ready;
    while (result.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) {
        fifo.unblock();
    }
    outcome.error = result.get();
    return outcome;
}

// `count` bytes of a recognisable pattern, different for each `seed`.
inline Bytes pattern(size_t count, uint8_t seed = 1) {
    Bytes bytes(count);
    for (size_t i = 0; i < count; ++i) {
        bytes[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 8));
    }
    return bytes;
}

// Copies a trivially copyable value into / out of a byte buffer (no aliasing).
template <typename T>
void put(Bytes& bytes, size_t offset, const T& value) {
    if (bytes.size() < offset + sizeof(T)) {
        bytes.resize(offset + sizeof(T));
    }
    std::memcpy(bytes.data() + offset, &value, sizeof(T));
}
template <typename T>
T get(const Bytes& bytes, size_t offset) {
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

// Guest memory laid out like a real VM of `size` bytes (split around the hole).
inline vmm::GuestMemory make_guest_memory(uint64_t size = 128ull << 20) {
    return vmm::GuestMemory::create(vmm::x86::guest_ram_regions(size));
}

inline Bytes read_guest(const vmm::GuestMemory& memory, uint64_t address, size_t count) {
    Bytes bytes(count);
    memory.read(vmm::GuestAddress(address), bytes);
    return bytes;
}

// ---- ELF64 ----------------------------------------------------------------

// One program header with its file contents; data is placed after the
// program header table unless `offset` says where.
struct ElfSegment {
    uint32_t type = PT_LOAD;
    uint64_t vaddr = 0;
    uint64_t paddr = 0;
    Bytes data;
    uint64_t memsz = 0;  // 0: same as data.size()
    std::optional<uint64_t> offset;
    std::optional<uint64_t> filesz;  // default data.size()
};

struct ElfSpec {
    uint64_t entry = 0;
    std::vector<ElfSegment> segments;
};

inline constexpr size_t kElfPhdrOffset = sizeof(Elf64_Ehdr);

// A well-formed x86_64 ET_EXEC image for `spec`.
inline Bytes make_elf(const ElfSpec& spec) {
    Elf64_Ehdr ehdr{};
    std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
    ehdr.e_ident[EI_CLASS] = ELFCLASS64;
    ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
    ehdr.e_ident[EI_VERSION] = EV_CURRENT;
    ehdr.e_type = ET_EXEC;
    ehdr.e_machine = EM_X86_64;
    ehdr.e_version = EV_CURRENT;
    ehdr.e_entry = spec.entry;
    ehdr.e_phoff = kElfPhdrOffset;
    ehdr.e_ehsize = sizeof(Elf64_Ehdr);
    ehdr.e_phentsize = sizeof(Elf64_Phdr);
    ehdr.e_phnum = static_cast<uint16_t>(spec.segments.size());

    Bytes bytes;
    put(bytes, 0, ehdr);
    uint64_t data_offset = kElfPhdrOffset + spec.segments.size() * sizeof(Elf64_Phdr);
    data_offset = (data_offset + 15) & ~uint64_t(15);
    bytes.resize(data_offset);
    for (size_t i = 0; i < spec.segments.size(); ++i) {
        const ElfSegment& segment = spec.segments[i];
        uint64_t offset = segment.offset.value_or(data_offset);
        if (!segment.offset) {
            data_offset += (segment.data.size() + 15) & ~uint64_t(15);
        }
        if (!segment.data.empty()) {
            if (bytes.size() < offset + segment.data.size()) {
                bytes.resize(offset + segment.data.size());
            }
            std::memcpy(bytes.data() + offset, segment.data.data(), segment.data.size());
        }

        Elf64_Phdr phdr{};
        phdr.p_type = segment.type;
        phdr.p_flags = PF_R | PF_X;
        phdr.p_offset = offset;
        phdr.p_vaddr = segment.vaddr;
        phdr.p_paddr = segment.paddr;
        phdr.p_filesz = segment.filesz.value_or(segment.data.size());
        phdr.p_memsz = segment.memsz != 0 ? segment.memsz : segment.data.size();
        phdr.p_align = segment.type == PT_NOTE ? 4 : 0x1000;
        put(bytes, kElfPhdrOffset + i * sizeof(Elf64_Phdr), phdr);
    }
    return bytes;
}

// Modifies the ELF header of an image in place.
template <typename F>
void edit_ehdr(Bytes& bytes, F&& edit) {
    auto ehdr = get<Elf64_Ehdr>(bytes, 0);
    edit(ehdr);
    put(bytes, 0, ehdr);
}

// One ELF note (name and desc padded to 4 bytes, as in 64-bit Linux images).
inline Bytes make_note(const std::string& name, uint32_t type, const Bytes& desc) {
    Elf64_Nhdr nhdr{};
    nhdr.n_namesz = static_cast<uint32_t>(name.size() + 1);
    nhdr.n_descsz = static_cast<uint32_t>(desc.size());
    nhdr.n_type = type;
    Bytes bytes;
    put(bytes, 0, nhdr);
    Bytes name_bytes(name.begin(), name.end());
    name_bytes.push_back(0);
    name_bytes.resize((name_bytes.size() + 3) & ~size_t(3));
    bytes.insert(bytes.end(), name_bytes.begin(), name_bytes.end());
    Bytes desc_bytes = desc;
    desc_bytes.resize((desc_bytes.size() + 3) & ~size_t(3));
    bytes.insert(bytes.end(), desc_bytes.begin(), desc_bytes.end());
    return bytes;
}

inline constexpr uint32_t kXenElfnotePhys32Entry = 18;

inline Bytes pvh_note32(uint32_t entry) {
    Bytes desc;
    put(desc, 0, entry);
    return make_note("Xen", kXenElfnotePhys32Entry, desc);
}
inline Bytes pvh_note64(uint64_t entry) {
    Bytes desc;
    put(desc, 0, entry);
    return make_note("Xen", kXenElfnotePhys32Entry, desc);
}

inline constexpr uint64_t kKernelPaddr = 0x1000000;  // 16 MiB, like vmlinux
inline constexpr uint64_t kKernelVaddr = 0xffffffff81000000;

// A small vmlinux-like image: one text segment linked high, loaded at 16 MiB,
// e_entry virtual; optionally with a PVH note.
inline ElfSpec simple_kernel_spec(std::optional<uint64_t> pvh_entry = std::nullopt) {
    ElfSpec spec;
    spec.entry = kKernelVaddr + 0x40;
    spec.segments.push_back({PT_LOAD, kKernelVaddr, kKernelPaddr, pattern(0x3000, 3), 0x5000,
                             std::nullopt, std::nullopt});
    if (pvh_entry) {
        spec.segments.push_back({PT_NOTE, 0, 0, pvh_note32(static_cast<uint32_t>(*pvh_entry)), 0,
                                 std::nullopt, std::nullopt});
    }
    return spec;
}

// ---- bzImage --------------------------------------------------------------

inline constexpr size_t kSetupHeaderOffset = 0x1f1;
inline constexpr uint32_t kHdrSMagic = 0x53726448;  // "HdrS"

// A setup header for a protocol 2.15, 64-bit-capable, loaded-high bzImage.
inline setup_header default_setup_header(size_t kernel_size) {
    setup_header hdr{};
    hdr.setup_sects = 1;
    hdr.syssize = static_cast<uint32_t>((kernel_size + 15) / 16);
    hdr.boot_flag = 0xaa55;
    // jmp short over the header: the header ends at 0x202 + the jump offset.
    uint16_t jump_length = static_cast<uint16_t>(kSetupHeaderOffset + sizeof(setup_header) - 0x202);
    hdr.jump = static_cast<uint16_t>(0xeb | (jump_length << 8));
    hdr.header = kHdrSMagic;
    hdr.version = 0x020f;
    hdr.loadflags = LOADED_HIGH;
    hdr.xloadflags = XLF_KERNEL_64;
    hdr.cmdline_size = 2047;
    hdr.initrd_addr_max = 0x7fffffff;
    hdr.kernel_alignment = 0x200000;
    hdr.init_size = 0x400000;
    return hdr;
}

// Boot sector + setup sectors (the header at 0x1f1) followed by `kernel`, the
// protected-mode code. `setup_sectors_in_file` overrides how many setup sectors
// are really in the file (default: as hdr.setup_sects says).
inline Bytes make_bzimage(const setup_header& hdr, const Bytes& kernel,
                          std::optional<size_t> setup_sectors_in_file = std::nullopt) {
    size_t sectors = setup_sectors_in_file.value_or(hdr.setup_sects == 0 ? 4 : hdr.setup_sects);
    Bytes bytes((sectors + 1) * 512, 0);
    put(bytes, kSetupHeaderOffset, hdr);
    bytes.resize((sectors + 1) * 512);
    bytes.insert(bytes.end(), kernel.begin(), kernel.end());
    return bytes;
}

}  // namespace test
