// A disk image file behind a virtio-blk device: opened read-only or
// read-write, locked against a second VMM (OFD locks), sized in sectors.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vmm/unique_fd.hpp"

namespace vmm {

inline constexpr uint64_t kSectorSize = 512;

class DiskImage {
  public:
    // Throws Error (one line, naming the path) for a missing, unreadable,
    // non-regular, empty or locked image. A size that is not a multiple of
    // 512 is rounded down: the partial last sector is not visible.
    DiskImage(const std::string& path, bool read_only);

    const std::string& path() const { return path_; }
    bool read_only() const { return read_only_; }
    uint64_t sectors() const { return sectors_; }
    int fd() const { return fd_.get(); }

    // Whole transfers at byte `offset`; return 0 or -errno.
    int read_vectored(const std::vector<iovec>& iov, uint64_t offset) const;
    int write_vectored(const std::vector<iovec>& iov, uint64_t offset) const;
    int flush() const;
    int discard(uint64_t offset, uint64_t length) const;
    int write_zeroes(uint64_t offset, uint64_t length) const;

  private:
    std::string path_;
    bool read_only_;
    UniqueFd fd_;
    uint64_t sectors_ = 0;
};

}  // namespace vmm
