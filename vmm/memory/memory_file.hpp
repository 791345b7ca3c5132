// A snapshot's memory file: guest RAM as one flat file, region after region
// in address order (region i at the sum of the sizes below it), as
// Firecracker's mem_file_path. Pages that are all zeros are left as holes,
// so a mostly idle guest's file stays small on disk.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vmm/memory/guest_memory.hpp"

namespace vmm {

struct MemoryFileStats {
    uint64_t file_bytes = 0;     // the file's size: all of guest memory
    uint64_t written_bytes = 0;  // what was written (the pages that are not zero)
};

// Creates or truncates `path` (mode 0600), writes every region and syncs
// the file; throws Error naming the path, or when `path` is the file the
// memory is mapped from.
MemoryFileStats save_memory_file(const GuestMemory& memory, const std::string& path);

// Per region, one bit per 4 KiB page (bit i of word w: page 64 w + i).
using DirtyPages = std::vector<std::vector<uint64_t>>;

// A Diff memory file: as large as guest memory, holding only the pages
// `dirty` names, every other page a hole; merged onto the memory file of
// the snapshot before it (tools/rebase-snap), it equals a Full one.
MemoryFileStats save_memory_diff(const GuestMemory& memory, const DirtyPages& dirty,
                                 const std::string& path);

// Maps guest memory privately from `path` (nothing is read until the guest
// touches a page); throws Error when the file is shorter than the regions.
GuestMemory load_memory_file(const std::vector<GuestRegionSpec>& specs, const std::string& path);

}  // namespace vmm
