// An eventfd: the doorbell between KVM (ioeventfd, irqfd) and the I/O thread.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

#include "vmm/base/error.hpp"
#include "vmm/base/unique_fd.hpp"

namespace vmm {

class EventFd {
  public:
    EventFd() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
        if (!fd_.valid()) {
            throw_errno("eventfd");
        }
    }

    int fd() const { return fd_.get(); }

    void signal() const {
        uint64_t one = 1;
        // A full counter (EAGAIN) still means "signalled": nothing is lost.
        [[maybe_unused]] ssize_t n = ::write(fd_.get(), &one, sizeof(one));
    }

    // Clears the counter; returns whether it was signalled.
    bool consume() const {
        uint64_t value = 0;
        return ::read(fd_.get(), &value, sizeof(value)) == sizeof(value) && value != 0;
    }

  private:
    UniqueFd fd_;
};

}  // namespace vmm
