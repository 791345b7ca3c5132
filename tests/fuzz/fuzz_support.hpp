// What the fuzz targets share: a check that aborts (so libFuzzer records the
// input as a crash) and an interrupt that counts what a device signals.
#pragma once

#include <cstdio>
#include <cstdlib>

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

}  // namespace fuzz
