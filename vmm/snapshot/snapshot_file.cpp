#include "vmm/snapshot/snapshot_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "vmm/base/error.hpp"
#include "vmm/base/input_file.hpp"
#include "vmm/base/unique_fd.hpp"
#include "vmm/snapshot/crc64.hpp"

namespace vmm {

namespace {

constexpr uint8_t kMagic[8] = {'V', 'M', 'M', 'S', 'N', 'A', 'P', 0x1a};
constexpr size_t kHeaderBytes = 24;
constexpr size_t kTrailerBytes = 8;

template <typename T>
void put(std::vector<uint8_t>& out, T value) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
    out.insert(out.end(), bytes, bytes + sizeof(T));
}

template <typename T>
T get(std::span<const uint8_t> in, size_t offset) {
    T value;
    std::memcpy(&value, in.data() + offset, sizeof(T));
    return value;
}

void write_all(int fd, std::span<const uint8_t> data, const std::string& path) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno(fmt::format("writing snapshot '{}'", path));
        }
        data = data.subspan(size_t(n));
    }
}

// A file size no snapshot has: too short for the header and CRC, or longer
// than the largest state allows (checked before a file is read, so that a
// huge one is not).
void check_size(uint64_t size, const std::string& path) {
    if (size < kHeaderBytes + kTrailerBytes) {
        throw Error(
            fmt::format("snapshot '{}' is truncated ({} bytes): not a snapshot file", path, size));
    }
    if (size > kHeaderBytes + kMaxSnapshotStateBytes + kTrailerBytes) {
        throw Error(
            fmt::format("snapshot '{}' is {} bytes: larger than any snapshot state", path, size));
    }
}

// The whole file, after check_size().
std::vector<uint8_t> read_whole(const std::string& path) {
    InputFile file = open_input_file(path, O_RDONLY, "snapshot");
    uint64_t size = uint64_t(file.info.st_size);
    check_size(size, path);
    std::vector<uint8_t> bytes(size);
    size_t done = 0;
    while (done < size) {
        ssize_t n = ::pread(file.fd.get(), bytes.data() + done, size - done, off_t(done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            throw_errno(fmt::format("reading snapshot '{}'", path));
        }
        if (n == 0) {
            throw Error(fmt::format("snapshot '{}' shrank while it was read", path));
        }
        done += size_t(n);
    }
    return bytes;
}

// A whole file checked for size, magic, state size and CRC; the version and
// the architecture are the caller's to judge.
SnapshotFileInfo check_file(std::span<const uint8_t> file, const std::string& path) {
    uint64_t size = file.size();
    check_size(size, path);
    if (std::memcmp(file.data(), kMagic, sizeof(kMagic)) != 0) {
        throw Error(fmt::format("'{}' is not a snapshot file (no snapshot magic)", path));
    }
    SnapshotFileInfo info;
    info.version = get<uint32_t>(file, 8);
    info.arch = get<uint32_t>(file, 12);
    info.state_bytes = get<uint64_t>(file, 16);
    if (info.state_bytes != size - kHeaderBytes - kTrailerBytes) {
        throw Error(fmt::format(
            "snapshot '{}' is truncated or corrupt: its header says {} bytes of state, the file "
            "holds {}",
            path, info.state_bytes, size - kHeaderBytes - kTrailerBytes));
    }
    uint64_t stored = get<uint64_t>(file, size - kTrailerBytes);
    uint64_t computed = crc64(file.first(size - kTrailerBytes));
    if (stored != computed) {
        throw Error(fmt::format("snapshot '{}' is corrupt: CRC {:016x}, expected {:016x}", path,
                                computed, stored));
    }
    return info;
}

}  // namespace

SnapshotArch host_snapshot_arch() {
#if defined(__x86_64__)
    return SnapshotArch::X86_64;
#else
    return SnapshotArch::Aarch64;
#endif
}

const char* snapshot_arch_name(uint32_t arch) {
    switch (arch) {
        case uint32_t(SnapshotArch::X86_64):
            return "x86_64";
        case uint32_t(SnapshotArch::Aarch64):
            return "aarch64";
        default:
            return "an unknown architecture";
    }
}

void write_snapshot_file(const std::string& path, std::span<const uint8_t> state) {
    if (state.size() > kMaxSnapshotStateBytes) {
        throw Error(fmt::format("snapshot state of {} bytes is larger than the format allows",
                                state.size()));
    }
    std::vector<uint8_t> header(kMagic, kMagic + sizeof(kMagic));
    put(header, kSnapshotFormatVersion);
    put(header, uint32_t(host_snapshot_arch()));
    put(header, uint64_t(state.size()));
    uint64_t crc = crc64(state, crc64(header));
    std::vector<uint8_t> trailer;
    put(trailer, crc);

    int raw = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
    if (raw < 0) {
        throw_errno(fmt::format("cannot create snapshot '{}'", path));
    }
    UniqueFd fd(raw);
    write_all(fd.get(), header, path);
    write_all(fd.get(), state, path);
    write_all(fd.get(), trailer, path);
    if (::fdatasync(fd.get()) != 0 && errno != EINVAL) {
        throw_errno(fmt::format("syncing snapshot '{}'", path));
    }
}

std::vector<uint8_t> parse_snapshot_bytes(std::span<const uint8_t> file, const std::string& name) {
    SnapshotFileInfo info = check_file(file, name);
    if (info.version != kSnapshotFormatVersion) {
        throw Error(
            fmt::format("snapshot '{}' has format version {}; this VMM reads version {} only", name,
                        info.version, kSnapshotFormatVersion));
    }
    if (info.arch != uint32_t(host_snapshot_arch())) {
        throw Error(fmt::format("snapshot '{}' was taken on {}, this host is {}", name,
                                snapshot_arch_name(info.arch),
                                snapshot_arch_name(uint32_t(host_snapshot_arch()))));
    }
    auto state = file.subspan(kHeaderBytes, file.size() - kHeaderBytes - kTrailerBytes);
    return {state.begin(), state.end()};
}

std::vector<uint8_t> read_snapshot_file(const std::string& path) {
    return parse_snapshot_bytes(read_whole(path), path);
}

SnapshotFileInfo describe_snapshot_file(const std::string& path) {
    return check_file(read_whole(path), path);
}

}  // namespace vmm
