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
T get(const std::vector<uint8_t>& in, size_t offset) {
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

// The whole file, checked for magic, size and CRC; the version and the
// architecture are the caller's to judge.
struct CheckedFile {
    SnapshotFileInfo info;
    std::vector<uint8_t> bytes;
};

CheckedFile read_checked(const std::string& path) {
    InputFile file = open_input_file(path, O_RDONLY, "snapshot");
    uint64_t size = uint64_t(file.info.st_size);
    if (size < kHeaderBytes + kTrailerBytes) {
        throw Error(
            fmt::format("snapshot '{}' is truncated ({} bytes): not a snapshot file", path, size));
    }
    if (size > kHeaderBytes + kMaxSnapshotStateBytes + kTrailerBytes) {
        throw Error(
            fmt::format("snapshot '{}' is {} bytes: larger than any snapshot state", path, size));
    }
    CheckedFile checked;
    checked.bytes.resize(size);
    size_t done = 0;
    while (done < size) {
        ssize_t n = ::pread(file.fd.get(), checked.bytes.data() + done, size - done, off_t(done));
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
    if (std::memcmp(checked.bytes.data(), kMagic, sizeof(kMagic)) != 0) {
        throw Error(fmt::format("'{}' is not a snapshot file (no snapshot magic)", path));
    }
    checked.info.version = get<uint32_t>(checked.bytes, 8);
    checked.info.arch = get<uint32_t>(checked.bytes, 12);
    checked.info.state_bytes = get<uint64_t>(checked.bytes, 16);
    if (checked.info.state_bytes != size - kHeaderBytes - kTrailerBytes) {
        throw Error(fmt::format(
            "snapshot '{}' is truncated or corrupt: its header says {} bytes of state, the file "
            "holds {}",
            path, checked.info.state_bytes, size - kHeaderBytes - kTrailerBytes));
    }
    uint64_t stored = get<uint64_t>(checked.bytes, size - kTrailerBytes);
    uint64_t computed = crc64(std::span(checked.bytes).first(size - kTrailerBytes));
    if (stored != computed) {
        throw Error(fmt::format("snapshot '{}' is corrupt: CRC {:016x}, expected {:016x}", path,
                                computed, stored));
    }
    return checked;
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

std::vector<uint8_t> read_snapshot_file(const std::string& path) {
    CheckedFile checked = read_checked(path);
    if (checked.info.version != kSnapshotFormatVersion) {
        throw Error(
            fmt::format("snapshot '{}' has format version {}; this VMM reads version {} only", path,
                        checked.info.version, kSnapshotFormatVersion));
    }
    if (checked.info.arch != uint32_t(host_snapshot_arch())) {
        throw Error(fmt::format("snapshot '{}' was taken on {}, this host is {}", path,
                                snapshot_arch_name(checked.info.arch),
                                snapshot_arch_name(uint32_t(host_snapshot_arch()))));
    }
    return {checked.bytes.begin() + kHeaderBytes, checked.bytes.end() - kTrailerBytes};
}

SnapshotFileInfo describe_snapshot_file(const std::string& path) {
    return read_checked(path).info;
}

}  // namespace vmm
