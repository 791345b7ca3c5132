#include "devices/virtio/console/console_output.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vmm/base/logger.hpp"

namespace vmm {

void ConsoleOutput::write(std::span<const uint8_t> bytes) {
    size_t done = 0;
    while (!failed_ && done < bytes.size()) {
        ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
        if (n > 0) {
            done += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            // Our stdout may be non-blocking (shared with a parent that made
            // it so): wait until it drains.
            pollfd p{fd_, POLLOUT, 0};
            if (::poll(&p, 1, -1) >= 0 || errno == EINTR) {
                continue;
            }
        }
        int error = n < 0 ? errno : EIO;  // write() of 0 bytes: treat as an I/O error
        log_error("virtio-console: cannot write the guest's output ({}); dropping it from now on",
                  std::strerror(error));
        failed_ = true;
    }
    dropped_ += bytes.size() - done;
}

}  // namespace vmm
