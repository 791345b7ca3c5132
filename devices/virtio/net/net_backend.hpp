// What virtio-net needs from its host side: a pollable fd that carries one
// frame per read or write, each led by a 12-byte virtio_net_hdr_v1. A tap is
// the real one; tests and fuzzers use a packet socket pair.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>

namespace vmm {

class NetBackend {
  public:
    // The virtio_net_hdr_v1 every frame starts with (VIRTIO 1.2, 5.1.6).
    static constexpr size_t kVnetHeaderSize = 12;

    virtual ~NetBackend() = default;
    virtual const std::string& name() const = 0;
    // Non-blocking; the I/O thread polls it.
    virtual int fd() const = 0;
    // The link's MTU, 0 if unknown.
    virtual unsigned mtu() const = 0;
    // TUN_F_* offloads the backend can hand us in frames, and the subset
    // the guest negotiated.
    virtual unsigned supported_offloads() const = 0;
    virtual void set_offloads(unsigned flags) = 0;
    // One frame each, scattered over / gathered from `buffers`; -1 with errno
    // set on failure (EAGAIN: nothing to read / no room to write).
    virtual ssize_t read_frame(std::span<const iovec> buffers) = 0;
    virtual ssize_t write_frame(std::span<const iovec> frame) = 0;
};

}  // namespace vmm
