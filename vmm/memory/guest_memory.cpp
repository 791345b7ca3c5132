#include "vmm/memory/guest_memory.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>

namespace vmm {

namespace {

bool page_aligned(uint64_t value) {
    return value % static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) == 0;
}

// KVM maps 2 MiB of guest memory with one nested page-table entry only where
// the host address sits at the same offset in its 2 MiB page as the guest
// address and the host backs it with a huge page; otherwise every 4 KiB page
// costs the guest an exit on first touch (very expensive when nested).
constexpr uint64_t kHugePageSize = uint64_t{2} << 20;

// An inaccessible reservation of `size` bytes whose address is congruent to
// `guest_start` modulo 2 MiB, for a MAP_FIXED mapping to replace.
void* reserve_congruent(uint64_t size, uint64_t guest_start) {
    const uint64_t span = size + kHugePageSize;
    void* raw =
        ::mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) {
        return MAP_FAILED;
    }
    const auto base = reinterpret_cast<uintptr_t>(raw);
    const uint64_t shift = (guest_start - base) % kHugePageSize;  // unsigned: wraps as wanted
    const uintptr_t start = base + shift;
    if (shift != 0) {
        ::munmap(raw, shift);
    }
    ::munmap(reinterpret_cast<void*>(start + size), span - shift - size);
    return reinterpret_cast<void*>(start);
}

// mmap(2) of one guest region at a huge-page-congruent address (above).
void* map_region(const GuestRegionSpec& spec, int flags, int fd, off_t offset) {
    void* place = reserve_congruent(spec.size, spec.start.value());
    if (place == MAP_FAILED) {
        return MAP_FAILED;
    }
    void* host = ::mmap(place, spec.size, PROT_READ | PROT_WRITE, flags | MAP_FIXED, fd, offset);
    if (host == MAP_FAILED) {
        int saved = errno;
        ::munmap(place, spec.size);
        errno = saved;
    }
    return host;
}

}  // namespace

GuestMemory GuestMemory::create(const std::vector<GuestRegionSpec>& specs) {
    return create_mapped(specs, [](const GuestRegionSpec& spec, uint64_t) {
        // MAP_NORESERVE: the guest's RAM is committed only as the guest touches it.
        void* host = map_region(spec, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (host == MAP_FAILED) {
            throw_errno(fmt::format("cannot map {} MiB of guest memory", spec.size >> 20));
        }
        return Mapping(host, spec.size);
    });
}

GuestMemory GuestMemory::create_from_file(const std::vector<GuestRegionSpec>& specs, int fd) {
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
        throw_errno("memory file");
    }
    GuestMemory memory = create_mapped(specs, [fd](const GuestRegionSpec& spec, uint64_t offset) {
        // MAP_PRIVATE: pages are read from the file when the guest first
        // touches them, and its writes stay in this process.
        void* host = map_region(spec, MAP_PRIVATE | MAP_NORESERVE, fd, off_t(offset));
        if (host == MAP_FAILED) {
            throw_errno(
                fmt::format("cannot map {} MiB of guest memory from its file", spec.size >> 20));
        }
        return Mapping(host, spec.size);
    });
    memory.backing_file_ = FileIdentity{uint64_t(info.st_dev), uint64_t(info.st_ino)};
    return memory;
}

GuestMemory GuestMemory::create_mapped(
    const std::vector<GuestRegionSpec>& specs,
    const std::function<Mapping(const GuestRegionSpec&, uint64_t)>& map) {
    std::vector<GuestRegionSpec> sorted = specs;
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.start < b.start; });
    std::vector<GuestRegion> regions;
    uint64_t previous_end = 0;
    uint64_t offset = 0;
    for (const auto& spec : sorted) {
        auto end = spec.start.checked_add(spec.size);
        if (spec.size == 0 || !end || !page_aligned(spec.start.value()) ||
            !page_aligned(spec.size)) {
            throw Error(fmt::format("invalid guest memory region {:#x}+{:#x}", spec.start.value(),
                                    spec.size));
        }
        if (!regions.empty() && spec.start.value() < previous_end) {
            throw Error(fmt::format("guest memory region {:#x} overlaps the previous one",
                                    spec.start.value()));
        }
        regions.emplace_back(spec.start, map(spec, offset));
        previous_end = end->value();
        offset += spec.size;
    }
    return GuestMemory(std::move(regions));
}

void GuestMemory::advise_huge_pages() const {
    for (const auto& region : regions_) {
        // SAFETY: the range is exactly this region's own live mapping.
        if (::madvise(reinterpret_cast<void*>(region.host_address()), region.size(),
                      MADV_HUGEPAGE) != 0) {
            throw_errno("madvise(MADV_HUGEPAGE) on guest memory (transparent huge pages)");
        }
    }
}

uint64_t GuestMemory::total_size() const {
    uint64_t total = 0;
    for (const auto& region : regions_) {
        total += region.size();
    }
    return total;
}

const GuestRegion* GuestMemory::find(GuestAddress addr, uint64_t len) const {
    for (const auto& region : regions_) {
        if (addr < region.start() || addr.value() >= region.end()) {
            continue;
        }
        // addr is inside the region, so this subtraction cannot underflow and the
        // comparison cannot overflow.
        uint64_t room = region.end() - addr.value();
        return len <= room ? &region : nullptr;
    }
    return nullptr;
}

bool GuestMemory::check_range(GuestAddress addr, uint64_t len) const {
    return find(addr, len) != nullptr;
}

void GuestMemory::track_dirty_pages() {
    dirty_.clear();
    for (const auto& region : regions_) {
        dirty_.push_back(std::make_unique<DirtyBitmap>(region.size()));
    }
}

std::pair<GuestSlice, size_t> GuestMemory::window(GuestAddress addr, uint64_t len) const {
    const GuestRegion* region = find(addr, len);
    if (region == nullptr) {
        throw GuestMemoryError(
            fmt::format("guest range {:#x}+{:#x} is outside guest RAM", addr.value(), len));
    }
    // SAFETY: find() proved [addr, addr+len) lies inside this region's mapping.
    uint64_t offset = addr.value() - region->start().value();
    return {GuestSlice(region->host_base() + offset, len), size_t(region - regions_.data())};
}

GuestSlice GuestMemory::slice(GuestAddress addr, uint64_t len) const {
    auto [slice, region] = window(addr, len);
    if (!dirty_.empty()) {
        dirty_[region]->mark(uint64_t(slice.data() - regions_[region].host_base()), len);
    }
    return slice;
}

void GuestMemory::read(GuestAddress addr, std::span<uint8_t> out) const {
    GuestSlice source = window(addr, out.size()).first;  // a read: not dirty
    // Guest RAM may change under us (other vCPUs); a plain copy is the snapshot.
    std::memcpy(out.data(), source.data(), out.size());
}

void GuestMemory::write(GuestAddress addr, std::span<const uint8_t> in) const {
    GuestSlice target = slice(addr, in.size());
    std::memcpy(target.data(), in.data(), in.size());
}

void GuestMemory::fill(GuestAddress addr, uint64_t len, uint8_t value) const {
    GuestSlice target = slice(addr, len);
    std::memset(target.data(), value, len);
}

}  // namespace vmm
