// What the fuzz targets share: a check that aborts (so libFuzzer records the
// input as a crash), an interrupt that counts what a device signals, and a
// scratch disk image.
#pragma once

#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "devices/virtio/block/disk_image.hpp"
#include "devices/virtio/virtio_device.hpp"
#include "devices/virtio/virtio_spec.hpp"

#define FUZZ_CHECK(condition)                                                                  \
    do {                                                                                       \
        if (!(condition)) {                                                                    \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
            std::abort();                                                                      \
        }                                                                                      \
    } while (0)

namespace fuzz {

class CountingInterrupt : public vmm::VirtioInterrupt {
  public:
    void signal_used_queue() override { ++used; }
    void signal_config_change() override { ++config; }
    unsigned used = 0;
    unsigned config = 0;
};

// Whether a backend fd has bytes to read now (a turn of the I/O thread).
inline bool readable(int fd) {
    pollfd pfd{fd, POLLIN, 0};
    return ::poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

// What a transport's status register may hold: each initialisation step
// needs the one before it (VIRTIO 1.2, 3.1.1), and only the defined bits.
inline void check_status(uint32_t status) {
    using namespace vmm;
    constexpr uint32_t kKnown = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK |
                                VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FAILED;
    FUZZ_CHECK((status & ~kKnown) == 0);
    if (status & VIRTIO_STATUS_DRIVER_OK) {
        FUZZ_CHECK(status & VIRTIO_STATUS_FEATURES_OK);
    }
    if (status & VIRTIO_STATUS_FEATURES_OK) {
        FUZZ_CHECK(status & VIRTIO_STATUS_DRIVER);
    }
    if (status & VIRTIO_STATUS_DRIVER) {
        FUZZ_CHECK(status & VIRTIO_STATUS_ACKNOWLEDGE);
    }
}

// A disk image for a fuzzer's block devices: created once per run (on tmpfs
// where there is one: a flush there costs no disk sync) and set back to its
// full size and zeroes for every input, so no input sees another's writes.
class ScratchImage {
  public:
    ScratchImage(const char* fuzzer, uint64_t sectors) : sectors_(sectors) {
        std::snprintf(path_, sizeof(path_), "/dev/shm/vmm-fuzz-%s-XXXXXX", fuzzer);
        fd_ = ::mkstemp(path_);
        if (fd_ < 0) {
            std::snprintf(path_, sizeof(path_), "/tmp/vmm-fuzz-%s-XXXXXX", fuzzer);
            fd_ = ::mkstemp(path_);
        }
        if (fd_ < 0) {
            std::abort();
        }
    }
    ~ScratchImage() {
        ::close(fd_);
        ::unlink(path_);
    }
    ScratchImage(const ScratchImage&) = delete;
    ScratchImage& operator=(const ScratchImage&) = delete;

    const char* path() const { return path_; }
    void resize(uint64_t sectors) {
        if (::ftruncate(fd_, off_t(sectors * vmm::kSectorSize)) < 0) {
            std::abort();
        }
    }
    const char* renew() {
        resize(0);
        resize(sectors_);
        return path_;
    }

  private:
    uint64_t sectors_;
    char path_[64] = {};
    int fd_ = -1;
};

}  // namespace fuzz
