// What the fuzz targets share: a check that aborts (so libFuzzer records the
// input as a crash), an interrupt that counts what a device signals, and a
// scratch disk image.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "devices/virtio/block/disk_image.hpp"
#include "devices/virtio/virtio_device.hpp"

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
