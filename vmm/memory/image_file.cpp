#include "vmm/memory/image_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace vmm {

ImageFile::ImageFile(const std::string& path, std::string role)
    : path_(path), role_(std::move(role)) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw SystemError(fmt::format("cannot open {} '{}'", role_, path), errno);
    }
    fd_.reset(fd);
    struct stat st {};
    if (::fstat(fd, &st) < 0) {
        throw_errno(fmt::format("cannot stat {} '{}'", role_, path));
    }
    if (S_ISDIR(st.st_mode)) {
        throw Error(fmt::format("{} '{}' is a directory", role_, path));
    }
    if (!S_ISREG(st.st_mode)) {
        throw Error(fmt::format("{} '{}' is not a regular file", role_, path));
    }
    if (st.st_size == 0) {
        throw Error(fmt::format("{} '{}' is empty", role_, path));
    }
    size_ = static_cast<uint64_t>(st.st_size);
}

void ImageFile::read_exact(uint64_t offset, std::span<uint8_t> out) const {
    if (offset > size_ || out.size() > size_ - offset) {
        throw Error(fmt::format("{} '{}' is truncated: needs {} bytes at offset {:#x}, file has {}",
                                role_, path_, out.size(), offset, size_));
    }
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::pread(fd_.get(), out.data() + done, out.size() - done,
                            static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            throw_errno(fmt::format("cannot read {} '{}'", role_, path_));
        }
        if (n == 0) {
            throw Error(fmt::format("{} '{}' shrank while being read", role_, path_));
        }
        done += static_cast<size_t>(n);
    }
}

void ImageFile::read_into_guest(uint64_t offset, uint64_t length, const GuestMemory& memory,
                                GuestAddress address) const {
    GuestSlice target = memory.slice(address, length);
    // SAFETY: the slice is a checked window of guest RAM of exactly `length` bytes.
    read_exact(offset, std::span(target.data(), target.size()));
}

}  // namespace vmm
