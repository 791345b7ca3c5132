#include "vmm/jailer/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/base/error.hpp"
#include "vmm/base/unique_fd.hpp"

namespace vmm::jailer {

std::string read_text_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
        throw_errno("cannot open " + path);
    }
    std::string text;
    char buffer[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("cannot read " + path);
        }
        if (n == 0) {
            return text;
        }
        // Every file read here (mounts, cgroup files) is small.
        if (text.size() > (1u << 20)) {
            throw Error(path + ": larger than 1 MiB");
        }
        text.append(buffer, static_cast<size_t>(n));
    }
}

void write_text_file(const std::string& path, const std::string& text) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) {
        throw_errno("cannot open " + path);
    }
    ssize_t n = ::write(fd.get(), text.data(), text.size());
    if (n < 0) {
        throw_errno(fmt::format("cannot write '{}' to {}", text, path));
    }
    if (static_cast<size_t>(n) != text.size()) {
        throw Error(fmt::format("cannot write '{}' to {}: short write", text, path));
    }
}

void make_directory(const std::string& path, mode_t mode) {
    if (::mkdir(path.c_str(), mode) == 0) {
        return;
    }
    int err = errno;
    struct stat st {};
    if (err == EEXIST && ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        return;
    }
    if (err == EEXIST) {
        throw Error(fmt::format("cannot create the folder {}: something else is there", path));
    }
    throw SystemError("cannot create the folder " + path, err);
}

void make_directories(const std::string& path, mode_t mode) {
    for (size_t slash = path.find('/', 1); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
        make_directory(path.substr(0, slash), mode);
    }
    make_directory(path, mode);
}

}  // namespace vmm::jailer
