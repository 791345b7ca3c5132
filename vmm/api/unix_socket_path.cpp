#include "vmm/api/unix_socket_path.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vmm/base/error.hpp"

namespace vmm::api {

namespace {

sockaddr_un socket_address(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(address.sun_path) ||
        path.find('\0') != std::string::npos) {
        throw Error(fmt::format("API socket path '{}': must be 1 to {} bytes", path,
                                sizeof(address.sun_path) - 1));
    }
    std::memcpy(address.sun_path, path.data(), path.size());
    return address;
}

UniqueFd unix_stream_socket(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
        throw_errno(fmt::format("API socket {}: socket", path));
    }
    return fd;
}

}  // namespace

void remove_stale_socket(const std::string& path) {
    sockaddr_un address = socket_address(path);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) {
            return;
        }
        throw_errno(fmt::format("API socket {}", path));
    }
    if (!S_ISSOCK(st.st_mode)) {
        throw Error(fmt::format("API socket {}: the path exists and is not a socket", path));
    }
    // Non-blocking, so a listener with a full backlog (EAGAIN) cannot stall
    // us; it counts as alive.
    UniqueFd probe = unix_stream_socket(path);
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0) {
        throw Error(fmt::format("API socket {}: another process is listening on it", path));
    }
    int err = errno;
    if (err == ENOENT) {
        return;  // gone meanwhile
    }
    if (err != ECONNREFUSED) {
        throw Error(
            fmt::format("API socket {}: exists and may be in use ({})", path, std::strerror(err)));
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        throw_errno(fmt::format("API socket {}: removing the stale socket", path));
    }
}

BoundSocket bind_listening_socket(const std::string& path, int backlog) {
    sockaddr_un address = socket_address(path);
    BoundSocket bound{unix_stream_socket(path)};
    // Linux creates the socket file with the socket inode's mode minus the
    // umask, so this gives 0600 at bind() without touching the process-wide
    // umask; the chmod below then undoes a umask that removed owner bits.
    if (::fchmod(bound.fd.get(), 0600) != 0) {
        throw_errno(fmt::format("API socket {}: fchmod", path));
    }
    if (::bind(bound.fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        throw_errno(fmt::format("API socket {}: bind", path));
    }
    struct stat st {};
    if (::chmod(path.c_str(), 0600) != 0 || ::lstat(path.c_str(), &st) != 0) {
        int err = errno;
        ::unlink(path.c_str());
        throw SystemError(fmt::format("API socket {}: chmod", path), err);
    }
    bound.device = st.st_dev;
    bound.inode = st.st_ino;
    if (::listen(bound.fd.get(), backlog) != 0) {
        int err = errno;
        ::unlink(path.c_str());
        throw SystemError(fmt::format("API socket {}: listen", path), err);
    }
    return bound;
}

void unlink_if_ours(const std::string& path, const BoundSocket& socket) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == socket.device &&
        st.st_ino == socket.inode) {
        ::unlink(path.c_str());
    }
}

}  // namespace vmm::api
