#include "vmm/memory/uffd_memory.hpp"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "vmm/base/unique_fd.hpp"

namespace vmm {

namespace {

constexpr uint64_t kPageSize = 4096;

UniqueFd registered_userfaultfd(const GuestMemory& memory) {
    int raw = int(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    if (raw < 0) {
        throw_errno("userfaultfd (the Uffd memory backend)");
    }
    UniqueFd uffd(raw);
    uffdio_api api{};
    api.api = UFFD_API;
    if (::ioctl(uffd.get(), UFFDIO_API, &api) != 0) {
        throw_errno("UFFDIO_API");
    }
    for (const GuestRegion& region : memory.regions()) {
        uffdio_register range{};
        range.range.start = region.host_address();
        range.range.len = region.size();
        range.mode = UFFDIO_REGISTER_MODE_MISSING;
        if (::ioctl(uffd.get(), UFFDIO_REGISTER, &range) != 0) {
            throw_errno(
                fmt::format("UFFDIO_REGISTER of {} MiB of guest memory", region.size() >> 20));
        }
    }
    return uffd;
}

UniqueFd connect_handler(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(address.sun_path)) {
        throw Error(fmt::format("Uffd backend_path '{}': a Unix socket path is 1 to {} bytes", path,
                                sizeof(address.sun_path) - 1));
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock.valid()) {
        throw_errno("socket for the Uffd handler");
    }
    if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        throw_errno(fmt::format("cannot connect to the Uffd page-fault handler at '{}'", path));
    }
    return sock;
}

void send_with_fd(int sock, const std::string& body, int fd, const std::string& path) {
    iovec data{const_cast<char*>(body.data()), body.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr message{};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(header), &fd, sizeof(int));
    ssize_t sent;
    do {
        sent = ::sendmsg(sock, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent != ssize_t(body.size())) {
        throw_errno(
            fmt::format("sending the guest memory regions to the Uffd handler at '{}'", path));
    }
}

}  // namespace

std::string uffd_region_mappings(const GuestMemory& memory) {
    std::string json = "[";
    uint64_t offset = 0;
    for (const GuestRegion& region : memory.regions()) {
        json += fmt::format(
            "{}{{\"base_host_virt_addr\":{},\"size\":{},\"offset\":{},\"page_size\":{},"
            "\"page_size_kib\":{}}}",
            offset == 0 ? "" : ",", region.host_address(), region.size(), offset, kPageSize,
            kPageSize / 1024);
        offset += region.size();
    }
    return json + "]";
}

GuestMemory load_uffd_memory(const std::vector<GuestRegionSpec>& specs,
                             const std::string& socket_path) {
    UniqueFd sock = connect_handler(socket_path);
    GuestMemory memory = GuestMemory::create(specs);
    UniqueFd uffd = registered_userfaultfd(memory);
    send_with_fd(sock.get(), uffd_region_mappings(memory), uffd.get(), socket_path);
    memory.keep_page_server(std::move(uffd), std::move(sock));
    return memory;
}

}  // namespace vmm
