#include "devices/virtio/block/disk_image.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "vmm/base/error.hpp"
#include "vmm/base/input_file.hpp"
#include "vmm/base/logger.hpp"

namespace vmm {

namespace {

// preadv/pwritev until done: a short transfer continues where it stopped.
template <typename Transfer>
int transfer_all(std::vector<iovec> iov, uint64_t offset, Transfer transfer) {
    size_t first = 0;
    while (first < iov.size()) {
        int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
        ssize_t n = transfer(iov.data() + first, count, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return -EIO;  // past the end of the file: the image shrank under us
        }
        offset += uint64_t(n);
        size_t left = size_t(n);
        while (first < iov.size() && left >= iov[first].iov_len) {
            left -= iov[first].iov_len;
            ++first;
        }
        if (left > 0) {
            iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
            iov[first].iov_len -= left;
        }
    }
    return 0;
}

// fallocate() answers that mean "this filesystem cannot do that mode", not
// "it failed" (ENOTSUP is EOPNOTSUPP on Linux). Callers pass only non-empty
// ranges inside the file, so EINVAL can only be about the mode.
bool unsupported(int result) {
    return result == -EOPNOTSUPP || result == -ENOSYS || result == -EINVAL;
}

int fallocate_range(int fd, int mode, uint64_t offset, uint64_t length) {
    while (::fallocate(fd, mode, off_t(offset), off_t(length)) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

// Writes zeros over the range from one static block, up to 1 MiB per call:
// the memory used does not grow with the length the guest asked for.
int write_zero_bytes(int fd, uint64_t offset, uint64_t length) {
    static const std::array<uint8_t, 64 << 10> zeros{};
    std::array<iovec, 16> iov{};
    while (length > 0) {
        int count = 0;
        uint64_t batch = 0;
        for (; count < int(iov.size()) && batch < length; ++count) {
            size_t n = size_t(std::min<uint64_t>(zeros.size(), length - batch));
            // pwritev only reads the buffers: the const_cast is safe.
            iov[size_t(count)] = {const_cast<uint8_t*>(zeros.data()), n};
            batch += n;
        }
        ssize_t n = ::pwritev(fd, iov.data(), count, off_t(offset));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return -EIO;
        }
        offset += uint64_t(n);  // a short write goes on where it stopped
        length -= uint64_t(n);
    }
    return 0;
}

}  // namespace

DiskImage::DiskImage(const std::string& path, bool read_only) : path_(path), read_only_(read_only) {
    InputFile file = open_input_file(path, read_only ? O_RDONLY : O_RDWR, "disk image",
                                     InputKind::RegularFileOrBlockDevice);
    fd_ = std::move(file.fd);
    int fd = fd_.get();
    uint64_t bytes = uint64_t(file.info.st_size);
    if (S_ISBLK(file.info.st_mode) && ::ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
        throw_errno(fmt::format("cannot read the size of disk image '{}'", path));
    }
    sectors_ = bytes / kSectorSize;
    if (sectors_ == 0) {
        throw Error(
            fmt::format("disk image '{}' is empty (smaller than one 512-byte sector)", path));
    }
    // An OFD lock belongs to this open file, not the process: a second VMM
    // (or a second drive on the same file) cannot take it.
    struct flock lock {};
    lock.l_type = read_only ? F_RDLCK : F_WRLCK;
    lock.l_whence = SEEK_SET;
    // A conflict is retried for a moment: the lock lives as long as the open
    // file, and io_uring's workers drop their references to a closed image
    // only after its last completion was seen, so a drive reopened at once
    // (or a VMM restarted on the same image) finds it still held.
    auto deadline = std::chrono::steady_clock::now() + kLockRetryLimit;
    while (::fcntl(fd, F_OFD_SETLK, &lock) < 0) {
        if (errno != EAGAIN && errno != EACCES) {
            throw_errno(fmt::format("cannot lock disk image '{}'", path));
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            throw Error(
                fmt::format("disk image '{}' is locked by another process (is another VMM "
                            "using it?)",
                            path));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

int DiskImage::read_vectored(const std::vector<iovec>& iov, uint64_t offset) const {
    return transfer_all(iov, offset, [this](const iovec* v, int n, off_t at) {
        return ::preadv(fd_.get(), v, n, at);
    });
}

int DiskImage::write_vectored(const std::vector<iovec>& iov, uint64_t offset) const {
    return transfer_all(iov, offset, [this](const iovec* v, int n, off_t at) {
        return ::pwritev(fd_.get(), v, n, at);
    });
}

int DiskImage::flush() const {
    return ::fdatasync(fd_.get()) < 0 ? -errno : 0;
}

// fallocate() with `mode` while `supported` holds; a filesystem that lacks
// the mode clears it (logged once), so the caller falls back for good.
// nullopt: not done, fall back; otherwise fallocate's result.
std::optional<int> DiskImage::try_mode(bool& supported, int mode, const char* what, uint64_t offset,
                                       uint64_t length) {
    if (!supported) {
        return std::nullopt;
    }
    int result = fallocate_range(fd_.get(), mode | FALLOC_FL_KEEP_SIZE, offset, length);
    if (!unsupported(result)) {
        return result;
    }
    log_debug("disk image '{}': no {} here ({})", path_, what, std::strerror(-result));
    supported = false;
    return std::nullopt;
}

int DiskImage::discard(uint64_t offset, uint64_t length) {
    if (length == 0) {
        return 0;
    }
    // Without holes a discard does nothing: it is only a hint.
    return try_mode(punch_hole_, FALLOC_FL_PUNCH_HOLE, "hole punching", offset, length).value_or(0);
}

int DiskImage::write_zeroes(uint64_t offset, uint64_t length) {
    if (length == 0) {
        return 0;
    }
    // Every method suits a request with or without the unmap flag: the guest
    // reads back zeros either way and cannot see how the host allocates
    // (write_zeroes_may_unmap stays 0).
    if (auto done =
            try_mode(zero_range_, FALLOC_FL_ZERO_RANGE, "FALLOC_FL_ZERO_RANGE", offset, length)) {
        return *done;
    }
    if (auto done = try_mode(punch_hole_, FALLOC_FL_PUNCH_HOLE, "hole punching", offset, length)) {
        return *done;
    }
    return write_zero_bytes(fd_.get(), offset, length);
}

DiskImage::ZeroMethod DiskImage::zero_method() const {
    return zero_range_   ? ZeroMethod::ZeroRange
           : punch_hole_ ? ZeroMethod::PunchHole
                         : ZeroMethod::Write;
}

void DiskImage::assume_zero_method(ZeroMethod method) {
    zero_range_ = method == ZeroMethod::ZeroRange;
    punch_hole_ = method != ZeroMethod::Write;
}

}  // namespace vmm
