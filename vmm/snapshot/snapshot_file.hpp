// The snapshot state file (PUT /snapshot/create's snapshot_path): a fixed
// header, the state, and a CRC over both.
//
//   0   magic "VMMSNAP" 0x1a        8 bytes
//   8   format version (u32)        kSnapshotFormatVersion
//   12  architecture (u32)          1 x86_64, 2 aarch64
//   16  state size (u64)            at most kMaxSnapshotStateBytes
//   24  state                       StateWriter bytes (vmm/core/snapshot_state.*)
//   ..  CRC-64 (u64)                over everything before it
//
// All little-endian. A file with another magic, version or architecture,
// a size that disagrees with the file's, or a wrong CRC is refused whole:
// nothing of it is used.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vmm {

// 2: drives and network interfaces keep their rate limiters.
inline constexpr uint32_t kSnapshotFormatVersion = 2;
// Far above any real state (a 32-vCPU VM's is well under 1 MiB): a corrupt
// size must not make us allocate gigabytes.
inline constexpr uint64_t kMaxSnapshotStateBytes = 64ull << 20;

enum class SnapshotArch : uint32_t { X86_64 = 1, Aarch64 = 2 };
SnapshotArch host_snapshot_arch();
const char* snapshot_arch_name(uint32_t arch);

struct SnapshotFileInfo {
    uint32_t version;
    uint32_t arch;
    uint64_t state_bytes;
};

// Writes the file (created with mode 0600, or truncated) and syncs it;
// throws Error naming the path.
void write_snapshot_file(const std::string& path, std::span<const uint8_t> state);
// Reads and checks the whole file (version, architecture, size, CRC) and
// returns the state; throws Error saying what is wrong.
std::vector<uint8_t> read_snapshot_file(const std::string& path);
// What read_snapshot_file() does once the file is read: the same checks on
// the whole file in memory (`name` stands for its path in the errors), and
// the state it holds. tests/fuzz/fuzz_snapshot.cpp feeds it hostile files.
std::vector<uint8_t> parse_snapshot_bytes(std::span<const uint8_t> file, const std::string& name);
// The header and CRC check only, for --describe-snapshot; throws Error.
SnapshotFileInfo describe_snapshot_file(const std::string& path);

}  // namespace vmm
