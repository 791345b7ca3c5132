// uffd-handler: the reference page-fault handler for the Uffd snapshot
// backend (vmm/memory/uffd_memory.hpp), on Firecracker's protocol. It
// listens on a Unix socket; the VMM restoring a snapshot connects and sends
// the JSON list of its guest memory regions with its userfaultfd. Every
// page fault in those regions is then served here with UFFDIO_COPY from the
// snapshot's memory file, one 4 KiB page at a time. Serves one VMM and exits
// when that VMM's memory goes away.
//
//   uffd-handler --socket PATH --mem-file FILE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "vmm/base/error.hpp"
#include "vmm/base/input_file.hpp"
#include "vmm/base/mapping.hpp"
#include "vmm/base/unique_fd.hpp"

namespace {

using vmm::Error;
using vmm::throw_errno;
using vmm::UniqueFd;

constexpr uint64_t kPage = 4096;

struct Region {
    uint64_t base;
    uint64_t size;
    uint64_t offset;
};

UniqueFd listen_on(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(address.sun_path)) {
        throw Error(fmt::format("socket path '{}' is too long", path));
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock.valid() ||
        ::bind(sock.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(sock.get(), 1) != 0) {
        throw_errno(fmt::format("cannot listen on '{}'", path));
    }
    return sock;
}

// The VMM's message: the JSON regions and the userfaultfd; no regions when
// the peer closed without a word (a client probing the socket).
std::pair<std::vector<Region>, UniqueFd> receive(int connection) {
    std::string body(64 * 1024, '\0');
    iovec data{body.data(), body.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr message{};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    ssize_t got = ::recvmsg(connection, &message, MSG_CMSG_CLOEXEC);
    if (got == 0) {
        return {};
    }
    if (got < 0) {
        throw_errno("receiving the VMM's regions");
    }
    body.resize(size_t(got));
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    if (header == nullptr || header->cmsg_type != SCM_RIGHTS) {
        throw Error("the VMM's message carried no userfaultfd");
    }
    int fd;
    std::memcpy(&fd, CMSG_DATA(header), sizeof(int));
    std::vector<Region> regions;
    for (const auto& item : nlohmann::json::parse(body)) {
        regions.push_back({item.at("base_host_virt_addr").get<uint64_t>(),
                           item.at("size").get<uint64_t>(), item.at("offset").get<uint64_t>()});
    }
    return {std::move(regions), UniqueFd(fd)};
}

// Serves faults until the VMM closes its connection (it exited, or its
// memory is gone); returns the pages served.
uint64_t serve(int uffd, int connection, const std::vector<Region>& regions, const uint8_t* file,
               uint64_t file_size) {
    uint64_t served = 0;
    for (;;) {
        pollfd wait[2] = {{uffd, POLLIN, 0}, {connection, POLLIN, 0}};
        if (::poll(wait, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("poll on the userfaultfd");
        }
        if (wait[1].revents != 0 || (wait[0].revents & (POLLHUP | POLLERR))) {
            return served;
        }
        if ((wait[0].revents & POLLIN) == 0) {
            continue;
        }
        uffd_msg event{};
        ssize_t got = ::read(uffd, &event, sizeof(event));
        if (got == 0) {
            return served;
        }
        if (got < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            throw_errno("reading the userfaultfd");
        }
        if (event.event != UFFD_EVENT_PAGEFAULT) {
            continue;
        }
        uint64_t page = event.arg.pagefault.address & ~(kPage - 1);
        const Region* region = nullptr;
        for (const Region& r : regions) {
            if (page >= r.base && page - r.base < r.size) {
                region = &r;
            }
        }
        uint64_t at = region ? region->offset + (page - region->base) : UINT64_MAX;
        if (region == nullptr || at > file_size - kPage) {
            throw Error(fmt::format("a fault at {:#x} outside the memory file", page));
        }
        uffdio_copy copy{};
        copy.dst = page;
        copy.src = reinterpret_cast<uint64_t>(file + at);
        copy.len = kPage;
        // EEXIST: another thread's fault on the same page was served first.
        if (::ioctl(uffd, UFFDIO_COPY, &copy) != 0 && errno != EEXIST && errno != EAGAIN) {
            throw_errno(fmt::format("UFFDIO_COPY at {:#x}", page));
        }
        ++served;
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Serves a restored VM's page faults from a snapshot memory file (Uffd backend)."};
    std::string socket_path, mem_file;
    app.add_option("--socket", socket_path, "the Unix socket the VMM connects to")->required();
    app.add_option("--mem-file", mem_file, "the snapshot's memory file")->required();
    CLI11_PARSE(app, argc, argv);
    try {
        vmm::InputFile file = vmm::open_input_file(mem_file, O_RDONLY, "memory file");
        uint64_t size = uint64_t(file.info.st_size);
        if (size < kPage) {
            throw Error(fmt::format("memory file '{}' is empty", mem_file));
        }
        void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, file.fd.get(), 0);
        if (mapped == MAP_FAILED) {
            throw_errno(fmt::format("mapping '{}'", mem_file));
        }
        vmm::Mapping memory(mapped, size);
        UniqueFd listener = listen_on(socket_path);
        std::printf("uffd-handler: listening on %s\n", socket_path.c_str());
        std::fflush(stdout);
        UniqueFd connection;
        std::vector<Region> regions;
        UniqueFd uffd;
        while (regions.empty()) {
            connection = UniqueFd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!connection.valid()) {
                throw_errno("accept");
            }
            std::tie(regions, uffd) = receive(connection.get());
        }
        uint64_t served = serve(uffd.get(), connection.get(), regions,
                                static_cast<const uint8_t*>(memory.get()), size);
        std::printf("uffd-handler: served %llu pages\n", static_cast<unsigned long long>(served));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "uffd-handler: %s\n", e.what());
        return 1;
    }
}
