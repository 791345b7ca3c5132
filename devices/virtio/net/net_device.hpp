// virtio-net (VIRTIO 1.2, 5.1) over a tap (any NetBackend). Frames move between the queues and
// the tap on the I/O thread: transmit is zero-copy (writev straight from the
// guest's buffers), receive reads one frame into a staging buffer and spreads
// it over the guest's buffers (several with MRG_RXBUF). When the guest has no
// receive buffers the device stops reading the tap and keeps the frame until
// some arrive; each queue's work per loop turn is bounded.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "devices/rate_limiter.hpp"
#include "devices/virtio/net/mac_address.hpp"
#include "devices/virtio/net/net_backend.hpp"
#include "devices/virtio/virtio_device.hpp"

namespace vmm {

// Feature bits (5.1.3).
inline constexpr unsigned VIRTIO_NET_F_CSUM = 0;
inline constexpr unsigned VIRTIO_NET_F_GUEST_CSUM = 1;
inline constexpr unsigned VIRTIO_NET_F_MTU = 3;
inline constexpr unsigned VIRTIO_NET_F_MAC = 5;
inline constexpr unsigned VIRTIO_NET_F_GUEST_TSO4 = 7;
inline constexpr unsigned VIRTIO_NET_F_GUEST_TSO6 = 8;
inline constexpr unsigned VIRTIO_NET_F_GUEST_UFO = 10;
inline constexpr unsigned VIRTIO_NET_F_HOST_TSO4 = 11;
inline constexpr unsigned VIRTIO_NET_F_HOST_TSO6 = 12;
inline constexpr unsigned VIRTIO_NET_F_HOST_UFO = 14;
inline constexpr unsigned VIRTIO_NET_F_MRG_RXBUF = 15;
inline constexpr unsigned VIRTIO_NET_F_STATUS = 16;
inline constexpr uint16_t VIRTIO_NET_S_LINK_UP = 1;

class NetDevice : public VirtioDevice {
  public:
    static constexpr uint16_t kQueueSize = 256;
    static constexpr size_t kRxQueue = 0;
    static constexpr size_t kTxQueue = 1;
    // Header plus the largest frame a tap hands out with TSO (64 KiB of
    // payload plus Ethernet and VLAN headers).
    static constexpr size_t kMaxFrame = NetBackend::kVnetHeaderSize + 65536 + 32;
    // Frames per queue per loop turn.
    static constexpr size_t kRxBudget = 64;
    static constexpr size_t kTxBudget = 128;
    // Frames above this size make the next read go straight into the
    // guest's buffers (when they can hold kMaxFrame); smaller ones are
    // staged and copied, which spares popping buffers a small frame won't use.
    static constexpr size_t kDirectThreshold = 4096;
    static constexpr size_t kMaxIov = 1024;  // IOV_MAX: readv/writev take no more

    struct Counters {
        uint64_t rx_frames = 0, rx_bytes = 0;
        uint64_t tx_frames = 0, tx_bytes = 0;
        // Dropped: transmit frames the tap refused or too long for any
        // tap, receive frames no single buffer could hold (without MRG_RXBUF).
        uint64_t tx_dropped = 0, rx_dropped = 0;
    };

    // `name` prefixes log lines ("net0").
    // `mtu`: what the guest is told (VIRTIO_NET_F_MTU); the backend's own when not given.
    // `rx_limit`/`tx_limit`: token buckets on frames and bytes to and from the guest.
    NetDevice(std::unique_ptr<NetBackend> backend, MacAddress mac, std::string name,
              std::optional<uint16_t> mtu = std::nullopt, const RateLimiterConfig& rx_limit = {},
              const RateLimiterConfig& tx_limit = {});

    uint32_t device_type() const override { return 1; }
    std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize, kQueueSize}; }
    uint64_t offered_features() const override;
    size_t config_size() const override;
    void read_config(uint64_t offset, std::span<uint8_t> data) const override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;
    void activate(const GuestMemory& memory, uint64_t acked_features, std::span<Queue> queues,
                  VirtioInterrupt& interrupt) override;
    bool process_queue(size_t index) override;
    void reset() override;

    // Backends: 0 the tap, 1 and 2 the receive and transmit rate limiters'
    // timers, waited on while they throttle.
    static constexpr size_t kTapBackend = 0;
    static constexpr size_t kRxLimiterBackend = 1;
    static constexpr size_t kTxLimiterBackend = 2;
    size_t backend_count() const override { return 3; }
    int backend_fd(size_t index) const override;
    BackendInterest backend_interest(size_t index) const override;
    bool process_backend(size_t index) override;
    // A PATCH of the interface's rate limiters (transport lock held).
    void update_rate_limiters(const RateLimiterUpdate& rx, const RateLimiterUpdate& tx);
    RateLimiterConfig rx_rate_limiter() const { return rx_limiter_.config(); }
    RateLimiterConfig tx_rate_limiter() const { return tx_limiter_.config(); }

    const Counters& counters() const { return counters_; }
    Metrics metrics() const override;
    // No chain is held between calls (those a call cannot use go back at
    // once), so prepare_save() has nothing to do. The state: the MAC and
    // MTU the driver read (checked on restore), the link state, and a
    // received frame still waiting for buffers.
    void save_state(StateWriter& out) const override;
    void restore_state(StateReader& in) override;
    bool link_up() const { return link_up_; }
    const MacAddress& mac() const { return mac_; }
    const NetBackend& backend() const { return *backend_; }

  private:
    // The activation, and the running state that lives exactly as long.
    struct Active : Activation {
        using Activation::Activation;
        bool rx_blocked = false;      // a frame is waiting for receive buffers
        bool tx_blocked = false;      // the tap said EAGAIN; wait until writable
        size_t frame_length = 0;      // the frame staged in frame_, header first; 0: none
        bool frame_admitted = false;  // the receive rate limiter let the staged frame through
    };

    // Moves frames from the tap to the receive queue; true if the budget ran out.
    bool process_rx();
    // Spreads the staged frame over receive buffers; false (nothing consumed)
    // when the guest has not made enough available.
    bool deliver_frame();
    // Reads the next frame straight into receive buffers when the available
    // ones hold the largest frame: the read's result (<= header size: nothing
    // consumed, errno kept), or kNotTried (not enough buffers).
    static constexpr ssize_t kNotTried = -2;
    ssize_t receive_direct();
    // Throws QueueError for a receive chain the device cannot use.
    void check_rx_chain(const DescriptorChain& chain) const;
    bool process_tx();
    // The tap failed with `error`: the guest sees the link go down.
    void link_down(const char* operation, int error);

    std::unique_ptr<NetBackend> backend_;
    MacAddress mac_;
    std::string name_;
    unsigned mtu_;
    Counters counters_;
    RateLimiter rx_limiter_;
    RateLimiter tx_limiter_;
    bool link_up_ = true;
    bool reported_oversize_ = false;
    bool reported_tx_error_ = false;

    std::optional<Active> active_;  // between activate() and reset()

    // Buffers reused from call to call.
    std::vector<uint8_t> frame_;  // staging for a receive frame (Active::frame_length)
    std::vector<DescriptorChain> rx_chains_;
    std::vector<iovec> rx_iov_;
    bool prefer_direct_ = false;
    std::vector<iovec> tx_iov_;
};

}  // namespace vmm
