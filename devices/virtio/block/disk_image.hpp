// A disk image behind a virtio-blk device, a regular file or a block device:
// opened read-only or read-write without waiting on a named pipe
// (vmm/base/input_file.hpp), locked against a second VMM (OFD locks), sized
// in sectors.
// Discard and write-zeroes adapt to what the image's filesystem supports.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vmm/base/unique_fd.hpp"

namespace vmm {

inline constexpr uint64_t kSectorSize = 512;

class DiskImage {
  public:
    // Throws Error (one line, naming the path) for a missing, unreadable,
    // empty or locked image, and for anything but a regular file or a block
    // device. A size that is not a multiple of
    // 512 is rounded down: the partial last sector is not visible.
    DiskImage(const std::string& path, bool read_only);
    // How long a lock held elsewhere is waited for before "locked".
    static constexpr std::chrono::milliseconds kLockRetryLimit{200};

    const std::string& path() const { return path_; }
    bool read_only() const { return read_only_; }
    uint64_t sectors() const { return sectors_; }
    int fd() const { return fd_.get(); }

    // Whole transfers at byte `offset`; return 0 or -errno.
    int read_vectored(const std::vector<iovec>& iov, uint64_t offset) const;
    int write_vectored(const std::vector<iovec>& iov, uint64_t offset) const;
    int flush() const;
    // Not const: these two learn what the filesystem supports (one thread).
    // Punches a hole; a no-op (0) where the filesystem has no holes, since a
    // discard is only a hint. Real I/O errors are returned.
    int discard(uint64_t offset, uint64_t length);
    // The range reads back as zeros afterwards, by the first of ZeroMethod
    // that the filesystem supports. Real I/O errors are returned.
    int write_zeroes(uint64_t offset, uint64_t length);

    // How write_zeroes() zeroes, best first: FALLOC_FL_ZERO_RANGE (keeps the
    // blocks allocated), FALLOC_FL_PUNCH_HOLE (tmpfs has no ZERO_RANGE),
    // writing zeros. A method the filesystem refuses is not tried again.
    enum class ZeroMethod { ZeroRange, PunchHole, Write };
    ZeroMethod zero_method() const;
    // Starts at `method`, as if the filesystem lacked the ones before it
    // (Write also makes discard a no-op). For tests.
    void assume_zero_method(ZeroMethod method);

  private:
    std::string path_;
    bool read_only_;
    UniqueFd fd_;
    uint64_t sectors_ = 0;
    // Cleared when fallocate() says the filesystem cannot do it.
    std::optional<int> try_mode(bool& supported, int mode, const char* what, uint64_t offset,
                                uint64_t length);

    bool zero_range_ = true;
    bool punch_hole_ = true;
};

}  // namespace vmm
