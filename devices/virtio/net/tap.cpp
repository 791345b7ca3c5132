#include "devices/virtio/net/tap.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>

#include "vmm/base/error.hpp"

namespace vmm {

namespace {

std::string describe_open_error(const std::string& name, int error) {
    if (error == EPERM || error == EACCES) {
        return fmt::format(
            "tap '{}': permission denied (creating or attaching a tap needs CAP_NET_ADMIN, or "
            "a persistent tap owned by this user)",
            name);
    }
    if (error == EBUSY) {
        return fmt::format("tap '{}' is in use by another process (or not a multi-queue tap)",
                           name);
    }
    if (error == EINVAL) {
        return fmt::format("'{}' exists but is not a tap interface", name);
    }
    return fmt::format("tap '{}': {}", name, std::strerror(error));
}

}  // namespace

std::unique_ptr<Tap> Tap::open(const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ) {
        throw Error(fmt::format("tap name '{}' must be 1 to {} characters", name, IFNAMSIZ - 1));
    }
    UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
    if (!fd.valid()) {
        throw SystemError("open /dev/net/tun (needed for --net tap=)", errno);
    }
    ifreq request{};
    std::memcpy(request.ifr_name, name.data(), name.size());
    request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (::ioctl(fd.get(), TUNSETIFF, &request) < 0) {
        throw Error(describe_open_error(name, errno));
    }
    std::unique_ptr<Tap> tap(new Tap(std::move(fd), request.ifr_name));
    tap->configure();
    return tap;
}

std::unique_ptr<Tap> Tap::adopt(int raw_fd) {
    UniqueFd fd(raw_fd);
    ifreq request{};
    if (::ioctl(fd.get(), TUNGETIFF, &request) < 0) {
        if (errno == EBADF) {
            throw Error(fmt::format("--net fd={}: not an open file descriptor", raw_fd));
        }
        throw Error(fmt::format("--net fd={}: not a tap device", raw_fd));
    }
    if ((request.ifr_flags & IFF_TAP) == 0) {
        throw Error(fmt::format("--net fd={}: a tun (layer 3) device, not a tap", raw_fd));
    }
    if ((request.ifr_flags & IFF_VNET_HDR) == 0) {
        throw Error(fmt::format("--net fd={}: the tap was opened without IFF_VNET_HDR", raw_fd));
    }
    if ((request.ifr_flags & IFF_NO_PI) == 0) {
        throw Error(fmt::format("--net fd={}: the tap was opened without IFF_NO_PI", raw_fd));
    }
    int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0 ||
        ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC) < 0) {
        throw SystemError(fmt::format("--net fd={}: fcntl", raw_fd), errno);
    }
    request.ifr_name[IFNAMSIZ - 1] = '\0';
    std::unique_ptr<Tap> tap(new Tap(std::move(fd), request.ifr_name));
    tap->configure();
    return tap;
}

void Tap::configure() {
    int header_size = kVnetHeaderSize;
    if (::ioctl(fd_.get(), TUNSETVNETHDRSZ, &header_size) < 0) {
        throw SystemError(fmt::format("tap '{}': TUNSETVNETHDRSZ", name_), errno);
    }
    // Probe the richest offload set the host kernel takes; UFO went away in
    // some kernels, and every bit needs TUN_F_CSUM.
    const unsigned candidates[] = {TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO,
                                   TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, TUN_F_CSUM};
    for (unsigned flags : candidates) {
        if (::ioctl(fd_.get(), TUNSETOFFLOAD, flags) == 0) {
            supported_offloads_ = flags;
            break;
        }
    }
    // Nothing offloaded until the guest negotiates it.
    set_offloads(0);
}

void Tap::set_offloads(unsigned flags) {
    if (::ioctl(fd_.get(), TUNSETOFFLOAD, flags & supported_offloads_) < 0) {
        throw SystemError(fmt::format("tap '{}': TUNSETOFFLOAD", name_), errno);
    }
}

unsigned Tap::mtu() const {
    UniqueFd socket(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!socket.valid()) {
        return 0;
    }
    ifreq request{};
    std::memcpy(request.ifr_name, name_.data(), std::min(name_.size(), size_t(IFNAMSIZ - 1)));
    if (::ioctl(socket.get(), SIOCGIFMTU, &request) < 0) {
        return 0;
    }
    return unsigned(request.ifr_mtu);
}

ssize_t Tap::read_frame(std::span<const iovec> buffers) {
    ssize_t n;
    do {
        n = ::readv(fd_.get(), buffers.data(), int(buffers.size()));
    } while (n < 0 && errno == EINTR);
    return n;
}

ssize_t Tap::write_frame(std::span<const iovec> frame) {
    ssize_t n;
    do {
        n = ::writev(fd_.get(), frame.data(), int(frame.size()));
    } while (n < 0 && errno == EINTR);
    return n;
}

}  // namespace vmm
