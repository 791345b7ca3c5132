// virtio-blk (VIRTIO 1.2, 5.2) over a DiskImage. Requests are parsed from
// validated chains and executed on the I/O thread; every guest-controlled
// range is checked before it reaches the file.
#pragma once

#include <memory>
#include <string>

#include "devices/virtio/block/block_request.hpp"
#include "devices/virtio/block/disk_image.hpp"
#include "devices/virtio/virtio_device.hpp"

namespace vmm {

class BlockDevice : public VirtioDevice {
  public:
    static constexpr uint16_t kQueueSize = 256;
    static constexpr uint32_t kSegMax = 126;  // data descriptors per request

    BlockDevice(std::unique_ptr<DiskImage> image, std::string id);

    uint32_t device_type() const override { return 2; }
    std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
    uint64_t offered_features() const override;
    size_t config_size() const override;
    void read_config(uint64_t offset, std::span<uint8_t> data) const override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;
    void activate(const GuestMemory& memory, uint64_t acked_features, std::span<Queue> queues,
                  VirtioInterrupt& interrupt) override;
    void process_queue(size_t index) override;
    void reset() override;

    const DiskImage& image() const { return *image_; }

    // Runs one parsed request against the image; returns the status byte and
    // adds the bytes it wrote into guest buffers to `written`.
    uint8_t execute(const BlockRequest& request, uint32_t& written);

  private:
    std::unique_ptr<DiskImage> image_;
    std::string id_;
    const GuestMemory* memory_ = nullptr;
    Queue* queue_ = nullptr;
    VirtioInterrupt* interrupt_ = nullptr;
};

}  // namespace vmm
