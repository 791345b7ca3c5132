#include "vmm/base/input_file.hpp"

#include <fcntl.h>

#include "vmm/base/error.hpp"

namespace vmm {

namespace {

// What a file that is neither regular nor a directory is, for the error.
std::string_view kind_of(mode_t mode) {
    switch (mode & S_IFMT) {
        case S_IFIFO:
            return "a named pipe";
        case S_IFCHR:
            return "a character device";
        case S_IFBLK:
            return "a block device";
        case S_IFSOCK:
            return "a socket";
        default:
            return {};
    }
}

}  // namespace

InputFile open_input_file(const std::string& path, int flags, std::string_view what,
                          InputKind kind) {
    // O_NONBLOCK: opening a FIFO for reading would wait for a writer.
    int fd = ::open(path.c_str(), flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        throw SystemError(fmt::format("cannot open {} '{}'", what, path), errno);
    }
    InputFile file{UniqueFd(fd), {}};
    if (::fstat(fd, &file.info) < 0) {
        throw_errno(fmt::format("cannot stat {} '{}'", what, path));
    }
    mode_t type = file.info.st_mode & S_IFMT;
    if (type == S_IFDIR) {
        throw Error(fmt::format("{} '{}' is a directory", what, path));
    }
    bool block_ok = kind == InputKind::RegularFileOrBlockDevice && type == S_IFBLK;
    if (type != S_IFREG && !block_ok) {
        std::string_view wanted =
            kind == InputKind::RegularFile ? "a regular file" : "a regular file or block device";
        std::string_view found = kind_of(file.info.st_mode);
        if (found.empty()) {
            throw Error(fmt::format("{} '{}' is not {}", what, path, wanted));
        }
        throw Error(fmt::format("{} '{}' is {}, not {}", what, path, found, wanted));
    }
    // Reads and writes of the file itself may wait as usual.
    int status = ::fcntl(fd, F_GETFL);
    if (status < 0 || ::fcntl(fd, F_SETFL, status & ~O_NONBLOCK) < 0) {
        throw_errno(fmt::format("cannot use {} '{}'", what, path));
    }
    return file;
}

}  // namespace vmm
