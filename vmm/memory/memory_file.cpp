#include "vmm/memory/memory_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/base/input_file.hpp"
#include "vmm/base/unique_fd.hpp"

namespace vmm {

namespace {

constexpr uint64_t kPage = 4096;

bool page_is_zero(const uint8_t* page) {
    // SAFETY: `page` is kPage bytes inside a guest region (the caller's loop).
    const auto* words = reinterpret_cast<const uint64_t*>(page);
    uint64_t any = 0;
    for (size_t i = 0; i < kPage / sizeof(uint64_t); ++i) {
        any |= words[i];
    }
    return any == 0;
}

void write_run(int fd, const uint8_t* data, uint64_t size, uint64_t offset,
               const std::string& path) {
    while (size > 0) {
        ssize_t n = ::pwrite(fd, data, size, off_t(offset));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            throw_errno(fmt::format("writing memory file '{}'", path));
        }
        data += n;
        size -= uint64_t(n);
        offset += uint64_t(n);
    }
}

// Creates `path` at the size of guest memory and writes the pages `wanted`
// picks (region index, page index), in runs; the rest stay holes.
template <typename Wanted>
MemoryFileStats write_pages(const GuestMemory& memory, const std::string& path, Wanted wanted) {
    struct stat existing {};
    const auto& backing = memory.backing_file();
    if (backing && ::stat(path.c_str(), &existing) == 0 &&
        uint64_t(existing.st_dev) == backing->device &&
        uint64_t(existing.st_ino) == backing->inode) {
        // Truncating it would take the pages the guest has not touched yet.
        throw Error(fmt::format(
            "mem_file_path '{}' is the file this VM's memory was restored from; write the "
            "snapshot to another file",
            path));
    }
    int raw = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
    if (raw < 0) {
        throw_errno(fmt::format("cannot create memory file '{}'", path));
    }
    UniqueFd fd(raw);
    MemoryFileStats stats;
    stats.file_bytes = memory.total_size();
    if (::ftruncate(fd.get(), off_t(stats.file_bytes)) != 0) {
        throw_errno(fmt::format("sizing memory file '{}'", path));
    }
    uint64_t file_offset = 0;
    for (size_t index = 0; index < memory.regions().size(); ++index) {
        const GuestRegion& region = memory.regions()[index];
        // SAFETY: host_base()..+size() is this region's live mapping; the
        // guest is paused, so the bytes are stable while they are written.
        const uint8_t* base = region.host_base();
        uint64_t run_start = 0, run_size = 0;
        auto flush = [&] {
            if (run_size > 0) {
                write_run(fd.get(), base + run_start, run_size, file_offset + run_start, path);
                stats.written_bytes += run_size;
                run_size = 0;
            }
        };
        for (uint64_t at = 0; at < region.size(); at += kPage) {
            if (!wanted(index, at / kPage, base + at)) {
                flush();
                continue;
            }
            if (run_size == 0) {
                run_start = at;
            }
            run_size += kPage;
        }
        flush();
        file_offset += region.size();
    }
    if (::fdatasync(fd.get()) != 0 && errno != EINVAL) {
        throw_errno(fmt::format("syncing memory file '{}'", path));
    }
    return stats;
}

}  // namespace

MemoryFileStats save_memory_file(const GuestMemory& memory, const std::string& path) {
    return write_pages(memory, path,
                       [](size_t, uint64_t, const uint8_t* page) { return !page_is_zero(page); });
}

MemoryFileStats save_memory_diff(const GuestMemory& memory, const DirtyPages& dirty,
                                 const std::string& path) {
    if (dirty.size() != memory.regions().size()) {
        throw Error("dirty page bitmaps do not match guest memory");
    }
    // Zero pages too: a page the guest cleared must overwrite the base's.
    return write_pages(memory, path, [&](size_t region, uint64_t page, const uint8_t*) {
        const std::vector<uint64_t>& bits = dirty[region];
        return page / 64 < bits.size() && ((bits[page / 64] >> (page % 64)) & 1);
    });
}

GuestMemory load_memory_file(const std::vector<GuestRegionSpec>& specs, const std::string& path) {
    InputFile file = open_input_file(path, O_RDONLY, "memory file");
    uint64_t needed = 0;
    for (const GuestRegionSpec& spec : specs) {
        needed += spec.size;
    }
    if (uint64_t(file.info.st_size) < needed) {
        throw Error(fmt::format(
            "memory file '{}' is {} bytes, shorter than the snapshot's guest memory ({} bytes)",
            path, file.info.st_size, needed));
    }
    return GuestMemory::create_from_file(specs, file.fd.get());
}

}  // namespace vmm
