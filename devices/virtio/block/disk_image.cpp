#include "devices/virtio/block/disk_image.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/error.hpp"

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

}  // namespace

DiskImage::DiskImage(const std::string& path, bool read_only) : path_(path), read_only_(read_only) {
    int fd = ::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        throw SystemError(fmt::format("cannot open disk image '{}'", path), errno);
    }
    fd_.reset(fd);
    struct stat st {};
    if (::fstat(fd, &st) < 0) {
        throw_errno(fmt::format("cannot stat disk image '{}'", path));
    }
    if (S_ISDIR(st.st_mode)) {
        throw Error(fmt::format("disk image '{}' is a directory", path));
    }
    if (!S_ISREG(st.st_mode)) {
        throw Error(fmt::format("disk image '{}' is not a regular file", path));
    }
    sectors_ = uint64_t(st.st_size) / kSectorSize;
    if (sectors_ == 0) {
        throw Error(
            fmt::format("disk image '{}' is empty (smaller than one 512-byte sector)", path));
    }
    // An OFD lock belongs to this open file, not the process: a second VMM
    // (or a second drive on the same file) cannot take it.
    struct flock lock {};
    lock.l_type = read_only ? F_RDLCK : F_WRLCK;
    lock.l_whence = SEEK_SET;
    if (::fcntl(fd, F_OFD_SETLK, &lock) < 0) {
        if (errno == EAGAIN || errno == EACCES) {
            throw Error(
                fmt::format("disk image '{}' is locked by another process (is another VMM "
                            "using it?)",
                            path));
        }
        throw_errno(fmt::format("cannot lock disk image '{}'", path));
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

int DiskImage::discard(uint64_t offset, uint64_t length) const {
    int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    return ::fallocate(fd_.get(), mode, off_t(offset), off_t(length)) < 0 ? -errno : 0;
}

int DiskImage::write_zeroes(uint64_t offset, uint64_t length) const {
    int mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
    return ::fallocate(fd_.get(), mode, off_t(offset), off_t(length)) < 0 ? -errno : 0;
}

}  // namespace vmm
