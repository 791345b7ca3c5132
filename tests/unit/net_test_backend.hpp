// Test helper: a NetBackend over a SOCK_SEQPACKET socket pair, which keeps
// frame boundaries like a tap. The test plays the host network on peer();
// errors can be injected to act out a tap that fills up or goes away.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <vector>

#include "devices/virtio/net/net_backend.hpp"

namespace test {

class SocketNetBackend : public vmm::NetBackend {
  public:
    struct Shared {
        int peer = -1;
        unsigned offloads_set = ~0u;
        int read_error = 0;   // errno to fail reads with (0: none)
        int write_error = 0;  // errno to fail writes with
    };

    explicit SocketNetBackend(Shared& shared, unsigned mtu = 1500, unsigned offloads = 0x1f)
        : shared_(shared), mtu_(mtu), offloads_(offloads) {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
            throw std::runtime_error("socketpair failed");
        }
        // Room for many 64 KiB frames on either side.
        int bytes = 8 << 20;
        for (int fd : fds) {
            ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
            ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
        }
        fd_ = fds[0];
        shared_.peer = fds[1];
    }
    ~SocketNetBackend() override {
        ::close(fd_);
        ::close(shared_.peer);
        shared_.peer = -1;
    }

    const std::string& name() const override { return name_; }
    int fd() const override { return fd_; }
    unsigned mtu() const override { return mtu_; }
    unsigned supported_offloads() const override { return offloads_; }
    void set_offloads(unsigned flags) override { shared_.offloads_set = flags; }
    ssize_t read_frame(std::span<const iovec> buffers) override {
        if (shared_.read_error != 0) {
            errno = shared_.read_error;
            return -1;
        }
        return ::readv(fd_, buffers.data(), int(buffers.size()));
    }
    ssize_t write_frame(std::span<const iovec> frame) override {
        if (shared_.write_error != 0) {
            errno = shared_.write_error;
            return -1;
        }
        return ::writev(fd_, frame.data(), int(frame.size()));
    }

  private:
    Shared& shared_;
    std::string name_ = "testtap";
    int fd_ = -1;
    unsigned mtu_;
    unsigned offloads_;
};

// Sends one frame from the host side; reads one (empty vector if none).
inline void host_send(const SocketNetBackend::Shared& s, const std::vector<uint8_t>& frame) {
    if (::write(s.peer, frame.data(), frame.size()) != ssize_t(frame.size())) {
        throw std::runtime_error("host_send failed");
    }
}
inline std::vector<uint8_t> host_receive(const SocketNetBackend::Shared& s) {
    std::vector<uint8_t> frame(70000);
    ssize_t n = ::read(s.peer, frame.data(), frame.size());
    frame.resize(n < 0 ? 0 : size_t(n));
    return frame;
}

}  // namespace test
