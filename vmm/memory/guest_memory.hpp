// Guest RAM: a set of non-overlapping regions of anonymous host memory, and the
// only place in the VMM that turns guest-physical addresses into host pointers.
// Every access is bounds-checked with overflow-safe arithmetic; a range must lie
// wholly inside one region. Devices use read/write/read_obj/write_obj, or a
// checked GuestSlice for zero-copy I/O.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "vmm/base/error.hpp"
#include "vmm/base/mapping.hpp"
#include "vmm/base/unique_fd.hpp"
#include "vmm/memory/dirty_bitmap.hpp"
#include "vmm/memory/guest_address.hpp"

namespace vmm {

// A guest access outside RAM (or wrapping); the guest's fault, not the host's.
class GuestMemoryError : public Error {
  public:
    using Error::Error;
};

struct GuestRegionSpec {
    GuestAddress start;
    uint64_t size;
};

// A bounds-checked window of guest RAM. Guest vCPUs may change the bytes at any
// time, so users copy out what they validate instead of reading twice.
class GuestSlice {
  public:
    GuestSlice(uint8_t* data, size_t size) : data_(data), size_(size) {}
    uint8_t* data() const { return data_; }
    size_t size() const { return size_; }

  private:
    uint8_t* data_;
    size_t size_;
};

class GuestRegion {
  public:
    GuestRegion(GuestAddress start, Mapping mapping)
        : start_(start), mapping_(std::move(mapping)) {}
    GuestAddress start() const { return start_; }
    uint64_t size() const { return mapping_.size(); }
    // One past the last byte; regions never end at 2^64 (checked at creation).
    uint64_t end() const { return start_.value() + size(); }
    uint64_t host_address() const { return reinterpret_cast<uint64_t>(mapping_.get()); }
    uint8_t* host_base() const { return static_cast<uint8_t*>(mapping_.get()); }

  private:
    GuestAddress start_;
    Mapping mapping_;
};

class GuestMemory {
  public:
    // Maps anonymous, lazily-committed memory (MAP_NORESERVE) for each region.
    // Regions must be page-aligned, non-empty and non-overlapping.
    static GuestMemory create(const std::vector<GuestRegionSpec>& specs);
    // The same regions mapped privately from a snapshot's memory file
    // (vmm/memory/memory_file.hpp): region i at the file offset that is the
    // sum of the sizes of the regions below it. The file must be large
    // enough (the caller checks).
    static GuestMemory create_from_file(const std::vector<GuestRegionSpec>& specs, int fd);

    // The file this memory is mapped from (device, inode), if it is: a new
    // memory file must not overwrite it while the guest still reads from it.
    struct FileIdentity {
        uint64_t device;
        uint64_t inode;
    };
    const std::optional<FileIdentity>& backing_file() const { return backing_file_; }
    // The userfaultfd a page-fault handler serves this memory through
    // (uffd_memory.hpp) and the connection to that handler, which sees it
    // close when this memory is gone: both kept as long as the memory.
    void keep_page_server(UniqueFd uffd, UniqueFd connection) {
        page_server_ = std::move(uffd);
        page_server_connection_ = std::move(connection);
    }

    // From now on, every write through this object (write, fill, write_obj,
    // and every slice(), which may be written through) marks its pages in
    // the region's DirtyBitmap; reads do not. For Diff snapshots.
    void track_dirty_pages();
    // Region i's bitmap, or nullptr when not tracking.
    const DirtyBitmap* dirty_bitmap(size_t region) const {
        return region < dirty_.size() ? dirty_[region].get() : nullptr;
    }

    GuestMemory(GuestMemory&&) = default;
    GuestMemory& operator=(GuestMemory&&) = default;

    const std::vector<GuestRegion>& regions() const { return regions_; }
    uint64_t total_size() const;
    // Asks for transparent huge pages (MADV_HUGEPAGE) on every region; throws
    // SystemError when the host refuses (THP disabled in the kernel).
    void advise_huge_pages() const;

    // True when [addr, addr+len) lies inside one region (len 0 needs addr in RAM).
    bool check_range(GuestAddress addr, uint64_t len) const;

    // Throw GuestMemoryError when the range is not wholly inside guest RAM.
    GuestSlice slice(GuestAddress addr, uint64_t len) const;
    void read(GuestAddress addr, std::span<uint8_t> out) const;
    void write(GuestAddress addr, std::span<const uint8_t> in) const;
    void fill(GuestAddress addr, uint64_t len, uint8_t value) const;

    template <typename T>
    T read_obj(GuestAddress addr) const {
        static_assert(std::is_trivially_copyable_v<T>);
        T value;
        read(addr, std::span(reinterpret_cast<uint8_t*>(&value), sizeof(T)));
        return value;
    }
    template <typename T>
    void write_obj(GuestAddress addr, const T& value) const {
        static_assert(std::is_trivially_copyable_v<T>);
        write(addr, std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
    }

  private:
    explicit GuestMemory(std::vector<GuestRegion> regions) : regions_(std::move(regions)) {}
    // Checks and sorts the specs, then maps each with `map(spec, file offset)`.
    static GuestMemory create_mapped(
        const std::vector<GuestRegionSpec>& specs,
        const std::function<Mapping(const GuestRegionSpec&, uint64_t)>& map);
    // The region holding [addr, addr+len), or nullptr.
    const GuestRegion* find(GuestAddress addr, uint64_t len) const;
    // The checked host window and the index of its region, not marked
    // dirty (slice() marks it).
    std::pair<GuestSlice, size_t> window(GuestAddress addr, uint64_t len) const;

    std::optional<FileIdentity> backing_file_;
    UniqueFd page_server_;
    UniqueFd page_server_connection_;

    std::vector<GuestRegion> regions_;
    std::vector<std::unique_ptr<DirtyBitmap>> dirty_;  // one per region, or none
};

}  // namespace vmm
