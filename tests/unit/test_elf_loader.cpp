// vmlinux (ELF64) loader: segments, entry translation, the PVH note, and the
// rejection of malformed or unsuitable images.
#include <catch2/catch.hpp>

#include "arch/x86_64/kernel_image.hpp"
#include "test_helpers.hpp"
#include "vmm/memory/image_file.hpp"

using Catch::Contains;
using test::Bytes;
using test::ElfSegment;
using test::ElfSpec;
using test::kKernelPaddr;
using test::kKernelVaddr;
using vmm::GuestAddress;
using vmm::ImageFile;
using vmm::x86::KernelImage;

namespace {

KernelImage load(const Bytes& image, const vmm::GuestMemory& memory) {
    test::TempFile file(image);
    ImageFile kernel(file.path(), "kernel");
    return vmm::x86::load_kernel(kernel, memory);
}

KernelImage load(const Bytes& image) {
    vmm::GuestMemory memory = test::make_guest_memory();
    return load(image, memory);
}

ElfSegment load_segment(uint64_t vaddr, uint64_t paddr, Bytes data, uint64_t memsz = 0) {
    return {PT_LOAD, vaddr, paddr, std::move(data), memsz, std::nullopt, std::nullopt};
}

ElfSegment note_segment(Bytes data) {
    return {PT_NOTE, 0, 0, std::move(data), 0, std::nullopt, std::nullopt};
}

Bytes simple_elf() {
    return test::make_elf(test::simple_kernel_spec());
}

}  // namespace

TEST_CASE("ELF loader places segments at p_paddr", "[elf]") {
    vmm::GuestMemory memory = test::make_guest_memory();
    ElfSpec spec;
    spec.entry = kKernelVaddr + 0x40;
    Bytes text = test::pattern(0x3000, 3);
    Bytes data = test::pattern(0x800, 99);
    spec.segments.push_back(load_segment(kKernelVaddr, kKernelPaddr, text, 0x3000));
    // The second segment has a bss part: memsz beyond filesz.
    spec.segments.push_back(
        load_segment(kKernelVaddr + 0x200000, kKernelPaddr + 0x200000, data, 0x2000));
    KernelImage image = load(test::make_elf(spec), memory);

    CHECK(image.format == KernelImage::Format::Elf);
    CHECK(test::read_guest(memory, kKernelPaddr, text.size()) == text);
    CHECK(test::read_guest(memory, kKernelPaddr + 0x200000, data.size()) == data);
    // Nothing at the virtual address (which is not RAM anyway) or just below.
    CHECK(memory.read_obj<uint8_t>(GuestAddress(kKernelPaddr - 1)) == 0);
    // The bss reads as zero.
    CHECK(test::read_guest(memory, kKernelPaddr + 0x200800, 0x1800) == Bytes(0x1800, 0));
    CHECK(image.load_end == kKernelPaddr + 0x202000);
    CHECK(image.cmdline_max == 2047);
    CHECK(image.initrd_address_max == 0xbfffffff);
    CHECK_FALSE(image.header.has_value());
    CHECK_FALSE(image.pvh_entry.has_value());
}

TEST_CASE("ELF loader translates a virtual entry point to physical", "[elf]") {
    KernelImage image = load(simple_elf());
    CHECK(image.entry64 == kKernelPaddr + 0x40);
}

TEST_CASE("ELF loader translates the entry in the segment that holds it", "[elf]") {
    ElfSpec spec;
    spec.entry = kKernelVaddr + 0x400010;
    spec.segments.push_back(load_segment(kKernelVaddr, kKernelPaddr, test::pattern(0x1000)));
    spec.segments.push_back(
        load_segment(kKernelVaddr + 0x400000, kKernelPaddr + 0x600000, test::pattern(0x1000)));
    CHECK(load(test::make_elf(spec)).entry64 == kKernelPaddr + 0x600010);
}

TEST_CASE("ELF loader keeps a physical entry point", "[elf]") {
    // Like a real vmlinux: segments linked high, e_entry physical.
    ElfSpec spec = test::simple_kernel_spec();
    spec.entry = kKernelPaddr + 0x100;
    CHECK(load(test::make_elf(spec)).entry64 == kKernelPaddr + 0x100);
    // And an identity-linked image.
    ElfSpec flat;
    flat.entry = 0x200000;
    flat.segments.push_back(load_segment(0x200000, 0x200000, test::pattern(0x100)));
    CHECK(load(test::make_elf(flat)).entry64 == 0x200000);
}

TEST_CASE("ELF loader load_elf_kernel works directly", "[elf]") {
    vmm::GuestMemory memory = test::make_guest_memory();
    test::TempFile file(simple_elf());
    ImageFile kernel(file.path(), "kernel");
    KernelImage image = vmm::x86::load_elf_kernel(kernel, memory);
    CHECK(image.entry64 == kKernelPaddr + 0x40);
    CHECK(image.load_end == kKernelPaddr + 0x5000);
}

TEST_CASE("ELF loader finds the PVH note with a 4-byte desc", "[elf][pvh]") {
    KernelImage image = load(test::make_elf(test::simple_kernel_spec(kKernelPaddr + 0x80)));
    REQUIRE(image.pvh_entry.has_value());
    CHECK(*image.pvh_entry == kKernelPaddr + 0x80);
    CHECK(image.entry64 == kKernelPaddr + 0x40);
}

TEST_CASE("ELF loader finds the PVH note with an 8-byte desc", "[elf][pvh]") {
    ElfSpec spec = test::simple_kernel_spec();
    spec.segments.push_back(note_segment(test::pvh_note64(kKernelPaddr + 0x123)));
    KernelImage image = load(test::make_elf(spec));
    REQUIRE(image.pvh_entry.has_value());
    CHECK(*image.pvh_entry == kKernelPaddr + 0x123);
}

TEST_CASE("ELF loader finds the PVH note among other notes", "[elf][pvh]") {
    ElfSpec spec = test::simple_kernel_spec();
    Bytes notes = test::make_note("GNU", 3, test::pattern(20));     // build id
    Bytes other_xen = test::make_note("Xen", 6, test::pattern(6));  // XEN_ELFNOTE_LOADER
    Bytes pvh = test::pvh_note32(kKernelPaddr + 0x200);
    notes.insert(notes.end(), other_xen.begin(), other_xen.end());
    notes.insert(notes.end(), pvh.begin(), pvh.end());
    spec.segments.push_back(note_segment(notes));
    KernelImage image = load(test::make_elf(spec));
    REQUIRE(image.pvh_entry.has_value());
    CHECK(*image.pvh_entry == kKernelPaddr + 0x200);
}

TEST_CASE("ELF loader ignores notes that are not the Xen PVH entry", "[elf][pvh]") {
    ElfSpec spec = test::simple_kernel_spec();
    Bytes desc;
    test::put(desc, 0, uint32_t(kKernelPaddr));
    Bytes notes = test::make_note("Xe", test::kXenElfnotePhys32Entry, desc);  // wrong name
    Bytes wrong_type = test::make_note("Xen", 17, desc);
    notes.insert(notes.end(), wrong_type.begin(), wrong_type.end());
    spec.segments.push_back(note_segment(notes));
    CHECK_FALSE(load(test::make_elf(spec)).pvh_entry.has_value());
}

TEST_CASE("ELF loader rejects a PVH entry outside guest memory", "[elf][pvh]") {
    Bytes image = test::make_elf(test::simple_kernel_spec(0xd0000000));
    CHECK_THROWS_WITH(load(image), Contains("PVH entry") && Contains("outside guest memory"));
}

TEST_CASE("ELF loader rejects malformed notes", "[elf][pvh]") {
    SECTION("name size past the segment") {
        Bytes note = test::pvh_note32(kKernelPaddr);
        test::put(note, 0, uint32_t{0x1000});  // n_namesz
        ElfSpec spec = test::simple_kernel_spec();
        spec.segments.push_back(note_segment(note));
        CHECK_THROWS_WITH(load(test::make_elf(spec)), Contains("malformed ELF note"));
    }
    SECTION("desc size past the segment") {
        Bytes note = test::pvh_note32(kKernelPaddr);
        test::put(note, 4, uint32_t{0xfffffff0});  // n_descsz
        ElfSpec spec = test::simple_kernel_spec();
        spec.segments.push_back(note_segment(note));
        CHECK_THROWS_WITH(load(test::make_elf(spec)), Contains("malformed ELF note"));
    }
    SECTION("PVH desc neither 4 nor 8 bytes") {
        ElfSpec spec = test::simple_kernel_spec();
        spec.segments.push_back(
            note_segment(test::make_note("Xen", test::kXenElfnotePhys32Entry, Bytes{1, 2})));
        CHECK_THROWS_WITH(load(test::make_elf(spec)), Contains("malformed PVH entry note"));
    }
    SECTION("note segment past the end of the file") {
        ElfSpec spec = test::simple_kernel_spec();
        ElfSegment note = note_segment(test::pvh_note32(kKernelPaddr));
        note.offset = 0x100000;
        note.data.clear();
        note.filesz = 24;
        spec.segments.push_back(note);
        CHECK_THROWS_WITH(load(test::make_elf(spec)),
                          Contains("truncated") && Contains("note segment"));
    }
}

TEST_CASE("ELF loader: ImageFile rejects an empty kernel file", "[elf]") {
    test::TempFile file;
    CHECK_THROWS_WITH(ImageFile(file.path(), "kernel"), Contains("is empty"));
}

TEST_CASE("ELF loader: ImageFile rejects a directory", "[elf]") {
    test::TempDir dir;
    CHECK_THROWS_WITH(ImageFile(dir.path(), "kernel"), Contains("is a directory"));
}

TEST_CASE("ELF loader rejects random bytes", "[elf]") {
    CHECK_THROWS_WITH(load(test::pattern(4096, 0x42)),
                      Contains("neither an ELF vmlinux nor a bzImage"));
    CHECK_THROWS_WITH(load(Bytes{1, 2}), Contains("neither an ELF vmlinux nor a bzImage"));
}

TEST_CASE("ELF loader rejects a truncated ELF header", "[elf]") {
    Bytes image = simple_elf();
    image.resize(40);
    CHECK_THROWS_WITH(load(image), Contains("truncated ELF header"));
}

TEST_CASE("ELF loader rejects truncated program headers", "[elf]") {
    ElfSpec spec = test::simple_kernel_spec(kKernelPaddr);
    Bytes image = test::make_elf(spec);
    image.resize(test::kElfPhdrOffset + sizeof(Elf64_Phdr) + 10);  // half of the second
    CHECK_THROWS_WITH(load(image), Contains("truncated") && Contains("program headers"));

    Bytes far = simple_elf();
    test::edit_ehdr(far, [](Elf64_Ehdr& ehdr) { ehdr.e_phoff = 0xffffffffffffff00; });
    CHECK_THROWS_WITH(load(far), Contains("truncated") && Contains("program headers"));
}

TEST_CASE("ELF loader rejects a segment past the end of the file", "[elf]") {
    ElfSpec spec = test::simple_kernel_spec();
    spec.segments[0].filesz = 0x4000;  // data is 0x3000 bytes, at the end of the file
    CHECK_THROWS_WITH(load(test::make_elf(spec)), Contains("truncated") && Contains("segment 0"));

    ElfSpec far = test::simple_kernel_spec();
    far.segments[0].offset = 0x7fffffff;
    far.segments[0].data.clear();
    far.segments[0].filesz = 0x100;
    far.segments[0].memsz = 0x100;
    CHECK_THROWS_WITH(load(test::make_elf(far)), Contains("truncated"));
}

TEST_CASE("ELF loader rejects a segment with filesz > memsz", "[elf]") {
    ElfSpec spec = test::simple_kernel_spec();
    spec.segments[0].memsz = 0x2000;  // filesz is 0x3000
    CHECK_THROWS_WITH(load(test::make_elf(spec)), Contains("more file bytes than memory bytes"));
}

TEST_CASE("ELF loader rejects ELFCLASS32", "[elf]") {
    Bytes image = simple_elf();
    test::edit_ehdr(image, [](Elf64_Ehdr& ehdr) { ehdr.e_ident[EI_CLASS] = ELFCLASS32; });
    CHECK_THROWS_WITH(load(image), Contains("32-bit"));
}

TEST_CASE("ELF loader rejects big-endian ELF", "[elf]") {
    Bytes image = simple_elf();
    test::edit_ehdr(image, [](Elf64_Ehdr& ehdr) { ehdr.e_ident[EI_DATA] = ELFDATA2MSB; });
    CHECK_THROWS_WITH(load(image), Contains("big-endian"));
}

TEST_CASE("ELF loader rejects another architecture", "[elf]") {
    Bytes image = simple_elf();
    test::edit_ehdr(image, [](Elf64_Ehdr& ehdr) { ehdr.e_machine = EM_AARCH64; });
    CHECK_THROWS_WITH(load(image), Contains("another architecture") && Contains("aarch64"));
}

TEST_CASE("ELF loader rejects ET_DYN", "[elf]") {
    Bytes image = simple_elf();
    test::edit_ehdr(image, [](Elf64_Ehdr& ehdr) { ehdr.e_type = ET_DYN; });
    CHECK_THROWS_WITH(load(image), Contains("ET_EXEC"));
}

TEST_CASE("ELF loader rejects bad program header counts and sizes", "[elf]") {
    Bytes none = simple_elf();
    test::edit_ehdr(none, [](Elf64_Ehdr& ehdr) { ehdr.e_phnum = 0; });
    CHECK_THROWS_WITH(load(none), Contains("bad program header table"));

    Bytes huge = simple_elf();
    test::edit_ehdr(huge, [](Elf64_Ehdr& ehdr) { ehdr.e_phnum = 0xffff; });
    CHECK_THROWS_WITH(load(huge), Contains("bad program header table"));

    Bytes many = simple_elf();
    test::edit_ehdr(many, [](Elf64_Ehdr& ehdr) { ehdr.e_phnum = 129; });
    CHECK_THROWS_WITH(load(many), Contains("bad program header table"));

    Bytes wrong_size = simple_elf();
    test::edit_ehdr(wrong_size, [](Elf64_Ehdr& ehdr) { ehdr.e_phentsize = 32; });
    CHECK_THROWS_WITH(load(wrong_size), Contains("bad program header table"));
}

TEST_CASE("ELF loader rejects an image without loadable segments", "[elf]") {
    ElfSpec spec;
    spec.entry = kKernelPaddr;
    spec.segments.push_back(note_segment(test::make_note("GNU", 3, test::pattern(8))));
    CHECK_THROWS_WITH(load(test::make_elf(spec)), Contains("no loadable segments"));
}

TEST_CASE("ELF loader rejects a segment below 1 MiB", "[elf]") {
    ElfSpec spec;
    spec.entry = 0xff000;
    spec.segments.push_back(load_segment(0xff000, 0xff000, test::pattern(0x100)));
    CHECK_THROWS_WITH(load(test::make_elf(spec)), Contains("below 1 MiB"));
}

TEST_CASE("ELF loader rejects a kernel larger than guest memory", "[elf]") {
    ElfSpec spec = test::simple_kernel_spec();
    spec.segments[0].memsz = 200ull << 20;  // 200 MiB in a 128 MiB guest
    CHECK_THROWS_WITH(load(test::make_elf(spec)),
                      Contains("does not fit in guest memory") && Contains("128 MiB"));
}

TEST_CASE("ELF loader rejects segments in the MMIO hole or wrapping", "[elf]") {
    vmm::GuestMemory big = test::make_guest_memory(4ull << 30);
    ElfSpec hole;
    hole.entry = 0xc0000000;
    hole.segments.push_back(load_segment(0xc0000000, 0xc0000000, test::pattern(0x100)));
    CHECK_THROWS_WITH(load(test::make_elf(hole), big), Contains("does not fit in guest memory"));

    // Straddling the start of the hole.
    ElfSpec straddle;
    straddle.entry = 0xbffff000;
    straddle.segments.push_back(load_segment(0xbffff000, 0xbffff000, test::pattern(0x100), 0x2000));
    CHECK_THROWS_WITH(load(test::make_elf(straddle), big),
                      Contains("does not fit in guest memory"));

    ElfSpec wrap;
    wrap.entry = 0xfffffffffffff000;
    wrap.segments.push_back(
        load_segment(0xfffffffffffff000, 0xfffffffffffff000, test::pattern(0x100), 0x2000));
    CHECK_THROWS_WITH(load(test::make_elf(wrap)), Contains("does not fit in guest memory"));

    // Above 4 GiB is RAM in a 4 GiB guest.
    ElfSpec high;
    high.entry = 0x100000000;
    high.segments.push_back(load_segment(0x100000000, 0x100000000, test::pattern(0x100)));
    CHECK(load(test::make_elf(high), big).entry64 == 0x100000000);
}

TEST_CASE("ELF loader rejects an entry point outside every segment", "[elf]") {
    ElfSpec spec = test::simple_kernel_spec();
    spec.entry = kKernelVaddr + 0x5000;  // one past the end (memsz 0x5000)
    CHECK_THROWS_WITH(load(test::make_elf(spec)), Contains("not inside any loaded segment"));
    spec.entry = 0x400000;
    CHECK_THROWS_WITH(load(test::make_elf(spec)), Contains("not inside any loaded segment"));
}

TEST_CASE("ELF loader error messages name the file", "[elf]") {
    Bytes image = simple_elf();
    test::edit_ehdr(image, [](Elf64_Ehdr& ehdr) { ehdr.e_type = ET_REL; });
    test::TempFile file(image);
    vmm::GuestMemory memory = test::make_guest_memory();
    ImageFile kernel(file.path(), "kernel");
    CHECK_THROWS_WITH(vmm::x86::load_kernel(kernel, memory), Contains(file.path()));
    CHECK_THROWS_AS(vmm::x86::load_kernel(kernel, memory), vmm::Error);
}
