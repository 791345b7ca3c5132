// What a snapshot request asks for (Firecracker's SnapshotCreateParams and
// SnapshotLoadParams), as plain data: the API parses it, the core does it.
#pragma once

#include <string>
#include <vector>

namespace vmm {

enum class SnapshotType { Full, Diff };

struct SnapshotCreateParams {
    SnapshotType type = SnapshotType::Full;
    std::string snapshot_path;  // the state file
    std::string mem_file_path;  // guest memory
};

// File: guest memory mapped from the memory file. Uffd: page faults served
// by a process listening on a Unix socket (Firecracker's protocol).
enum class MemoryBackendType { File, Uffd };

// Gives a restored network interface another host tap.
struct NetworkOverride {
    std::string iface_id;
    std::string host_dev_name;
};

struct SnapshotLoadParams {
    std::string snapshot_path;
    MemoryBackendType backend = MemoryBackendType::File;
    std::string backend_path;  // the memory file, or the Uffd handler's socket
    bool track_dirty_pages = false;
    bool resume_vm = false;
    std::vector<NetworkOverride> network_overrides;
};

}  // namespace vmm
