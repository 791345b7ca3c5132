// A Linux tap device (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) as virtio-net's
// backend: every frame read or written carries a 12-byte virtio_net_hdr_v1 in
// front, so checksum and segmentation offloads pass between the guest and the
// host stack untouched. The fd is non-blocking and owned (closed) here.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "devices/virtio/net/net_backend.hpp"
#include "vmm/base/unique_fd.hpp"

namespace vmm {

class Tap : public NetBackend {
  public:
    // Opens (or creates, with CAP_NET_ADMIN) the tap interface `name`.
    static std::unique_ptr<Tap> open(const std::string& name);
    // Adopts an fd an orchestrator opened; it must be a tap with IFF_VNET_HDR.
    // Takes ownership: the fd is closed with the Tap.
    static std::unique_ptr<Tap> adopt(int fd);

    const std::string& name() const override { return name_; }
    int fd() const override { return fd_.get(); }
    unsigned mtu() const override;
    // CSUM, TSO4/6 and UFO, as far as the host kernel takes them.
    unsigned supported_offloads() const override { return supported_offloads_; }
    void set_offloads(unsigned flags) override;
    ssize_t read_frame(std::span<const iovec> buffers) override;
    ssize_t write_frame(std::span<const iovec> frame) override;

  private:
    Tap(UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
    // Common setup: header size, non-blocking, offload probing.
    void configure();

    UniqueFd fd_;
    std::string name_;
    unsigned supported_offloads_ = 0;
};

}  // namespace vmm
