#include "vmm/memory/guest_memory.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

namespace vmm {

namespace {

bool page_aligned(uint64_t value) {
    return value % static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) == 0;
}

}  // namespace

GuestMemory GuestMemory::create(const std::vector<GuestRegionSpec>& specs) {
    std::vector<GuestRegionSpec> sorted = specs;
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.start < b.start; });
    std::vector<GuestRegion> regions;
    uint64_t previous_end = 0;
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
        // MAP_NORESERVE: the guest's RAM is committed only as the guest touches it.
        void* host = ::mmap(nullptr, spec.size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (host == MAP_FAILED) {
            throw_errno(fmt::format("cannot map {} MiB of guest memory", spec.size >> 20));
        }
        regions.emplace_back(spec.start, Mapping(host, spec.size));
        previous_end = end->value();
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

GuestSlice GuestMemory::slice(GuestAddress addr, uint64_t len) const {
    const GuestRegion* region = find(addr, len);
    if (region == nullptr) {
        throw GuestMemoryError(
            fmt::format("guest range {:#x}+{:#x} is outside guest RAM", addr.value(), len));
    }
    // SAFETY: find() proved [addr, addr+len) lies inside this region's mapping.
    return GuestSlice(region->host_base() + (addr.value() - region->start().value()), len);
}

void GuestMemory::read(GuestAddress addr, std::span<uint8_t> out) const {
    GuestSlice source = slice(addr, out.size());
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
