#include "vmm/memory/image_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "vmm/base/input_file.hpp"

namespace vmm {

ImageFile::ImageFile(const std::string& path, std::string role)
    : path_(path), role_(std::move(role)) {
    InputFile file = open_input_file(path, O_RDONLY, role_);
    if (file.info.st_size == 0) {
        throw Error(fmt::format("{} '{}' is empty", role_, path));
    }
    fd_ = std::move(file.fd);
    size_ = static_cast<uint64_t>(file.info.st_size);
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
