// virtio-blk (VIRTIO 1.2, 5.2) over a DiskImage. Requests are parsed from
// validated chains on the I/O thread and handed to an engine (io_uring, or
// synchronous); every guest-controlled range is checked before it reaches
// the file, and nothing in flight is dropped on reset or shutdown.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "devices/rate_limiter.hpp"
#include "devices/virtio/block/block_engine.hpp"
#include "devices/virtio/block/block_request.hpp"
#include "devices/virtio/block/disk_image.hpp"
#include "devices/virtio/virtio_device.hpp"

namespace vmm {

class BlockDevice : public VirtioDevice {
  public:
    static constexpr uint16_t kQueueSize = 256;
    static constexpr uint32_t kSegMax = kBlkSegMax;  // data buffers per request
    // A request of seg_max segments plus header and status fits in the queue.
    static_assert(kSegMax + 2 <= kQueueSize);

    using Engine = BlockEngineKind;

    BlockDevice(std::unique_ptr<DiskImage> image, std::string id, Engine engine = Engine::Auto,
                const RateLimiterConfig& limit = {});
    ~BlockDevice() override;

    uint32_t device_type() const override { return 2; }
    std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
    uint64_t offered_features() const override;
    size_t config_size() const override;
    void read_config(uint64_t offset, std::span<uint8_t> data) const override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;
    void activate(const GuestMemory& memory, uint64_t acked_features, std::span<Queue> queues,
                  VirtioInterrupt& interrupt) override;
    bool process_queue(size_t index) override;
    void reset() override;
    // Backends: the engine's completion eventfd (the sync engine has none),
    // then the rate limiter's timer, waited on while it throttles the queue.
    size_t backend_count() const override { return has_engine_fd() ? 2 : 1; }
    int backend_fd(size_t index) const override;
    BackendInterest backend_interest(size_t index) const override;
    bool process_backend(size_t index) override;
    // A PATCH of the drive's path_on_host (transport lock held): completes
    // what is in flight on the old file, then serves `image` (opened with
    // the same read-only mode) and tells the driver its config changed.
    void replace_image(DiskImage&& image);
    // A PATCH of the drive's rate_limiter (transport lock held).
    void update_rate_limiter(const RateLimiterUpdate& update) { limiter_.update(update); }
    RateLimiterConfig rate_limiter() const { return limiter_.config(); }
    Metrics metrics() const override;
    // Completes every request in flight and flushes the image.
    void prepare_save() override;
    // The disk's identity: its size in sectors and whether it is read-only,
    // which must match the disk a snapshot is restored onto.
    void save_state(StateWriter& out) const override;
    void restore_state(StateReader& in) override;

    const DiskImage& image() const { return *image_; }
    const char* engine_name() const { return engine_->name(); }
    size_t in_flight() const { return in_flight_count_; }
    // Waits for every request in flight and completes it to the guest.
    void drain();

  private:
    // The activation, and what lives exactly as long.
    struct Active : Activation {
        using Activation::Activation;
        Queue& queue() const { return queues[0]; }
        bool used_since_notify = false;
    };

    // Where a request handed to the engine waits, by descriptor head, until
    // its completion reaches the guest.
    struct Slot {
        bool in_flight = false;
        std::optional<GuestAddress> status_address;
        uint32_t written_on_success;  // data bytes the device writes for the guest
        // What the engine points at: at most kSegMax entries (parsing
        // refuses more), so all slots together keep under 520 KB.
        std::vector<iovec> iov;
    };

    // Sends `request` where it is served: completed at once when parsing
    // decided its status or it needs no engine (GET_ID, DISCARD and
    // WRITE_ZEROES run here, on the I/O thread); reads, writes and flushes
    // go to the engine and complete later, in complete_finished().
    void dispatch(uint16_t head, BlockRequest request);
    void complete(uint16_t head, const std::optional<GuestAddress>& status_address, uint8_t status,
                  uint32_t written);
    // Hands finished engine requests to the guest; returns whether any.
    bool complete_finished();
    void notify_if_used();
    bool has_engine_fd() const { return engine_->event_fd() >= 0; }
    bool is_limiter_backend(size_t index) const { return index == (has_engine_fd() ? 1 : 0); }
    // Whether the rate limiter lets `request` through now (it then counts).
    bool admit(const BlockRequest& request);
    uint8_t execute_inline(const BlockRequest& request, uint32_t& written);
    // Counts a failed host I/O (`result` is -errno; 0 is success) and logs the first.
    void note_io_error(int result);

    std::unique_ptr<DiskImage> image_;
    std::string id_;
    std::unique_ptr<BlockEngine> engine_;
    RateLimiter limiter_;
    std::vector<Slot> slots_;     // one per descriptor head
    size_t in_flight_count_ = 0;  // slots in flight
    // Counters: requests dispatched (not those parsing refused), data bytes
    // asked for, non-OK completions, of those the host's I/O errors.
    uint64_t requests_ = 0, read_bytes_ = 0, write_bytes_ = 0, errors_ = 0, io_errors_ = 0;
    uint64_t discards_ = 0, write_zeroes_ = 0;  // requests, whatever their segments
    std::optional<Active> active_;              // between activate() and reset()
};

}  // namespace vmm
