// virtio-rng (VIRTIO 1.2, 5.4): fills the driver's buffers with bytes from the
// host's getrandom(2). Every call is bounded (bytes per chain, chains per
// call), so a guest posting huge or endless buffers cannot hold the I/O thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "devices/virtio/virtio_device.hpp"

namespace vmm {

class RngDevice : public VirtioDevice {
  public:
    static constexpr uint16_t kQueueSize = 256;
    // The spec lets the device fill less than a buffer: a 4 GiB chain gets
    // the first 64 KiB.
    static constexpr uint64_t kMaxBytesPerChain = 64 * 1024;
    static constexpr unsigned kMaxChainsPerCall = 64;

    uint32_t device_type() const override { return 4; }
    std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
    uint64_t offered_features() const override;
    size_t config_size() const override { return 0; }
    void read_config(uint64_t, std::span<uint8_t>) const override {}
    void write_config(uint64_t, std::span<const uint8_t>) override {}
    void activate(const GuestMemory& memory, uint64_t acked_features, std::span<Queue> queues,
                  VirtioInterrupt& interrupt) override;
    bool process_queue(size_t index) override;
    void reset() override;
    // requests (chains returned), bytes (random bytes given).
    Metrics metrics() const override;

  private:
    std::optional<Activation> active_;  // between activate() and reset()
    uint64_t requests_ = 0;
    uint64_t bytes_ = 0;
};

}  // namespace vmm
