#include "devices/virtio/net/net_device.hpp"

#include <linux/if_tun.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "devices/virtio/reader_writer.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "vmm/base/logger.hpp"

namespace vmm {

namespace {

constexpr uint64_t bit(unsigned n) {
    return 1ull << n;
}

// The device configuration layout (5.1.4), up to mtu.
struct VirtioNetConfig {
    uint8_t mac[6];
    uint16_t status;
    uint16_t max_virtqueue_pairs;
    uint16_t mtu;
};
static_assert(sizeof(VirtioNetConfig) == 12);

// Offset of num_buffers in virtio_net_hdr_v1.
constexpr size_t kNumBuffersOffset = 10;

// Gives the chains past the first `keep` back to the driver's ring, newest
// first, so the next pops yield them again.
void give_back(Queue& queue, const std::vector<DescriptorChain>& chains, size_t keep) {
    for (size_t i = chains.size(); i > keep; --i) {
        queue.give_back(chains[i - 1]);
    }
}

// Tap errors after which the interface is gone, not just busy.
bool tap_is_gone(int error) {
    return error == EBADFD || error == ENODEV || error == ENXIO || error == EPIPE;
}

}  // namespace

NetDevice::NetDevice(std::unique_ptr<NetBackend> backend, MacAddress mac, std::string name,
                     std::optional<uint16_t> mtu, const RateLimiterConfig& rx_limit,
                     const RateLimiterConfig& tx_limit)
    : backend_(std::move(backend)),
      mac_(mac),
      name_(std::move(name)),
      mtu_(mtu ? *mtu : backend_->mtu()),
      rx_limiter_(rx_limit),
      tx_limiter_(tx_limit),
      frame_(kMaxFrame) {}

uint64_t NetDevice::offered_features() const {
    uint64_t features = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_RING_INDIRECT_DESC) |
                        bit(VIRTIO_F_RING_EVENT_IDX) | bit(VIRTIO_NET_F_MAC) |
                        bit(VIRTIO_NET_F_STATUS) | bit(VIRTIO_NET_F_MRG_RXBUF);
    // Guest to host: the tap takes partial checksums and GSO frames as they are.
    features |= bit(VIRTIO_NET_F_CSUM) | bit(VIRTIO_NET_F_HOST_TSO4) | bit(VIRTIO_NET_F_HOST_TSO6) |
                bit(VIRTIO_NET_F_HOST_UFO);
    // Host to guest: only what the tap can be told to hand us.
    unsigned offloads = backend_->supported_offloads();
    if (offloads & TUN_F_CSUM) {
        features |= bit(VIRTIO_NET_F_GUEST_CSUM);
    }
    if (offloads & TUN_F_TSO4) {
        features |= bit(VIRTIO_NET_F_GUEST_TSO4);
    }
    if (offloads & TUN_F_TSO6) {
        features |= bit(VIRTIO_NET_F_GUEST_TSO6);
    }
    if (offloads & TUN_F_UFO) {
        features |= bit(VIRTIO_NET_F_GUEST_UFO);
    }
    if (mtu_ >= 68 && mtu_ <= 65535) {
        features |= bit(VIRTIO_NET_F_MTU);
    }
    return features;
}

size_t NetDevice::config_size() const {
    return sizeof(VirtioNetConfig);
}

void NetDevice::read_config(uint64_t offset, std::span<uint8_t> data) const {
    VirtioNetConfig config{};
    std::memcpy(config.mac, mac_.bytes.data(), sizeof(config.mac));
    config.status = link_up_ ? VIRTIO_NET_S_LINK_UP : 0;
    config.max_virtqueue_pairs = 1;
    config.mtu = static_cast<uint16_t>(mtu_);
    copy_config(config, offset, data);
}

void NetDevice::write_config(uint64_t, std::span<const uint8_t>) {
    // The MAC is writable only for legacy drivers (5.1.4.1); nothing else is.
}

void NetDevice::activate(const GuestMemory& memory, uint64_t acked_features,
                         std::span<Queue> queues, VirtioInterrupt& interrupt) {
    unsigned offloads = 0;
    if (acked_features & bit(VIRTIO_NET_F_GUEST_CSUM)) {
        offloads |= TUN_F_CSUM;
        // Segmentation offloads need checksum offload (5.1.3.1).
        if (acked_features & bit(VIRTIO_NET_F_GUEST_TSO4)) {
            offloads |= TUN_F_TSO4;
        }
        if (acked_features & bit(VIRTIO_NET_F_GUEST_TSO6)) {
            offloads |= TUN_F_TSO6;
        }
        if (acked_features & bit(VIRTIO_NET_F_GUEST_UFO)) {
            offloads |= TUN_F_UFO;
        }
    }
    if (queues.size() < 2) {
        throw Error(fmt::format("{}: activated with {} queues, needs 2", name_, queues.size()));
    }
    backend_->set_offloads(offloads);
    active_.emplace(memory, acked_features, queues, interrupt);
}

void NetDevice::reset() {
    active_.reset();  // a staged frame dies with the driver's buffers
    if (link_up_) {
        try {
            backend_->set_offloads(0);
        } catch (const Error&) {
            // The tap is going away; the next read or write says so.
        }
    }
}

int NetDevice::backend_fd(size_t index) const {
    switch (index) {
        case kRxLimiterBackend:
            return rx_limiter_.timer_fd();
        case kTxLimiterBackend:
            return tx_limiter_.timer_fd();
        default:
            return backend_->fd();
    }
}

VirtioDevice::BackendInterest NetDevice::backend_interest(size_t index) const {
    if (!active_ || !link_up_) {
        return {};
    }
    switch (index) {
        case kRxLimiterBackend:
            return {.readable = rx_limiter_.blocked()};
        case kTxLimiterBackend:
            return {.readable = tx_limiter_.blocked()};
        default:
            // A throttled receive leaves frames in the tap until its timer.
            return {.readable = !active_->rx_blocked && !rx_limiter_.blocked(),
                    .writable = active_->tx_blocked};
    }
}

void NetDevice::update_rate_limiters(const RateLimiterUpdate& rx, const RateLimiterUpdate& tx) {
    rx_limiter_.update(rx);
    tx_limiter_.update(tx);
}

bool NetDevice::process_backend(size_t index) {
    if (!active_) {
        return false;
    }
    if (index == kRxLimiterBackend) {
        return rx_limiter_.timer_expired() && !active_->rx_blocked && process_rx();
    }
    if (index == kTxLimiterBackend) {
        return tx_limiter_.timer_expired() && !active_->tx_blocked && process_tx();
    }
    bool more = false;
    if (active_->tx_blocked) {
        active_->tx_blocked = false;
        more |= process_tx();
    }
    if (!active_->rx_blocked) {
        more |= process_rx();
    }
    return more;
}

bool NetDevice::process_queue(size_t index) {
    if (!active_) {
        return false;
    }
    if (index == kRxQueue) {
        active_->rx_blocked = false;  // new buffers: try the staged frame again
        return process_rx();
    }
    if (index == kTxQueue) {
        return active_->tx_blocked ? false : process_tx();
    }
    return false;
}

bool NetDevice::process_rx() {
    Active& active = *active_;
    size_t delivered = 0;
    bool more = false;
    while (link_up_) {
        if (delivered == kRxBudget) {
            more = true;
            break;
        }
        ssize_t n;
        bool direct = false;
        if (rx_limiter_.blocked()) {
            break;  // resumed by the limiter's timer
        }
        // A direct read puts the frame in the guest's buffers before the
        // limiter could refuse it: only without a limit.
        bool may_go_direct = prefer_direct_ && !rx_limiter_.limits();
        if (active.frame_length == 0 && may_go_direct && (n = receive_direct()) != kNotTried) {
            direct = true;
        } else if (active.frame_length == 0) {
            iovec staging{frame_.data(), frame_.size()};
            n = backend_->read_frame(std::span(&staging, 1));
        } else {
            n = ssize_t(active.frame_length);  // staged earlier, waiting for buffers
        }
        if (n < 0) {
            if (errno != EAGAIN) {
                link_down("read", errno);
            }
            break;
        }
        if (n == 0) {
            link_down("read", EPIPE);  // end of file: the other side is gone
            break;
        }
        ++delivered;
        if (size_t(n) <= NetBackend::kVnetHeaderSize) {
            continue;  // no frame behind the header: nothing to deliver
        }
        // Large frames (TSO) are worth reading straight into guest buffers.
        prefer_direct_ = size_t(n) > kDirectThreshold;
        if (direct) {
            continue;  // already in the guest's buffers
        }
        if (active.frame_length == 0) {
            active.frame_length = size_t(n);
            active.frame_admitted = false;
        }
        if (!active.frame_admitted) {
            if (!rx_limiter_.consume(1, size_t(n) - NetBackend::kVnetHeaderSize)) {
                break;  // staged until the limiter's timer
            }
            active.frame_admitted = true;
        }
        if (!deliver_frame()) {
            active.rx_blocked = true;  // resumed by the next rx notification
            break;
        }
        active.frame_length = 0;
    }
    active.notify_if_needed(active.queues[kRxQueue]);
    return more;
}

void NetDevice::check_rx_chain(const DescriptorChain& chain) const {
    if (chain.readable_bytes() != 0) {
        throw QueueError(fmt::format("receive chain {} has device-readable buffers", chain.head()));
    }
    // Every buffer holds at least the header (5.1.6.3.1).
    if (chain.writable_bytes() < NetBackend::kVnetHeaderSize) {
        throw QueueError(
            fmt::format("receive chain {} has {} bytes, less than the {}-byte virtio-net header",
                        chain.head(), chain.writable_bytes(), NetBackend::kVnetHeaderSize));
    }
}

ssize_t NetDevice::receive_direct() {
    Active& active = *active_;
    Queue& rx = active.queues[kRxQueue];
    const bool mergeable = active.has_feature(VIRTIO_NET_F_MRG_RXBUF);
    rx_chains_.clear();
    rx_iov_.clear();
    uint64_t capacity = 0;
    // Only with room for the largest frame: a read never truncates one.
    while (capacity < kMaxFrame && rx_iov_.size() < kMaxIov && (mergeable || rx_chains_.empty())) {
        auto chain = rx.pop(active.memory);
        if (!chain) {
            break;
        }
        check_rx_chain(*chain);
        ChainWriter writer(active.memory, *chain);
        for (const GuestSlice& slice : writer.slices(chain->writable_bytes())) {
            rx_iov_.push_back({slice.data(), slice.size()});
        }
        capacity += chain->writable_bytes();
        rx_chains_.push_back(std::move(*chain));
    }
    if (capacity < kMaxFrame || rx_iov_.size() > kMaxIov) {
        give_back(rx, rx_chains_, 0);
        return kNotTried;
    }
    ssize_t n = backend_->read_frame(rx_iov_);
    if (n <= ssize_t(NetBackend::kVnetHeaderSize)) {
        int error = errno;
        give_back(rx, rx_chains_, 0);
        errno = error;
        return n;
    }
    // The chains the frame filled, in order; the rest go back to the driver.
    // readv fills at most the iovecs' total, which is the chains' capacity.
    uint16_t used = 0;
    for (uint64_t covered = 0; covered < uint64_t(n) && used < rx_chains_.size(); ++used) {
        covered += rx_chains_[used].writable_bytes();
    }
    give_back(rx, rx_chains_, used);
    // num_buffers (the tap leaves it alone), before any of it is used.
    ChainWriter header(active.memory, rx_chains_.front());
    ChainWriter num_buffers = header.split_at(kNumBuffersOffset);
    num_buffers.write_obj(used);
    uint64_t remaining = uint64_t(n);
    for (uint16_t i = 0; i < used; ++i) {
        uint32_t length =
            static_cast<uint32_t>(std::min<uint64_t>(remaining, rx_chains_[i].writable_bytes()));
        rx.add_used(active.memory, rx_chains_[i].head(), length);
        remaining -= length;
    }
    ++counters_.rx_frames;
    counters_.rx_bytes += uint64_t(n) - NetBackend::kVnetHeaderSize;
    return n;
}

bool NetDevice::deliver_frame() {
    Active& active = *active_;
    Queue& rx = active.queues[kRxQueue];
    const bool mergeable = active.has_feature(VIRTIO_NET_F_MRG_RXBUF);
    rx_chains_.clear();
    uint64_t capacity = 0;
    do {
        auto chain = rx.pop(active.memory);
        if (!chain) {
            give_back(rx, rx_chains_, 0);  // until enough arrive
            return false;
        }
        check_rx_chain(*chain);
        capacity += chain->writable_bytes();
        rx_chains_.push_back(std::move(*chain));
    } while (mergeable && capacity < active.frame_length);

    if (capacity < active.frame_length) {
        // Without MRG_RXBUF a frame must fit one buffer; the tap only hands
        // out what the negotiated offloads allow, so only a driver that posts
        // buffers smaller than its MTU gets here. The buffer stays posted.
        give_back(rx, rx_chains_, 0);
        ++counters_.rx_dropped;
        if (!reported_oversize_) {
            reported_oversize_ = true;
            log_warning(
                "{}: dropping a {}-byte frame: the guest's receive buffer holds "
                "only {} bytes",
                name_, active.frame_length, capacity);
        }
        return true;
    }

    // The tap leaves num_buffers alone; it is ours to fill (1 without MRG_RXBUF).
    uint16_t buffers = static_cast<uint16_t>(rx_chains_.size());
    std::memcpy(frame_.data() + kNumBuffersOffset, &buffers, sizeof(buffers));
    size_t offset = 0;
    for (const auto& chain : rx_chains_) {
        ChainWriter writer(active.memory, chain);
        size_t length = std::min<uint64_t>(active.frame_length - offset, writer.remaining());
        writer.write(std::span<const uint8_t>(frame_.data() + offset, length));
        rx.add_used(active.memory, chain.head(), static_cast<uint32_t>(length));
        offset += length;
    }
    ++counters_.rx_frames;
    counters_.rx_bytes += active.frame_length - NetBackend::kVnetHeaderSize;
    return true;
}

bool NetDevice::process_tx() {
    Active& active = *active_;
    Queue& tx = active.queues[kTxQueue];
    size_t sent = 0;
    bool more = false;
    while (true) {
        if (sent == kTxBudget) {
            more = true;
            break;
        }
        auto chain = tx.pop(active.memory);
        if (!chain) {
            break;
        }
        if (chain->writable_bytes() != 0) {
            throw QueueError(
                fmt::format("transmit chain {} has device-writable buffers", chain->head()));
        }
        uint64_t length = chain->readable_bytes();
        if (length < NetBackend::kVnetHeaderSize) {
            throw QueueError(fmt::format(
                "transmit chain {} has {} bytes, less than the {}-byte virtio-net header",
                chain->head(), length, NetBackend::kVnetHeaderSize));
        }
        // Too long for any tap, or (through an indirect table) in more
        // buffers than one writev takes: dropped, as the tap would.
        if (length > kMaxFrame || chain->buffers().size() > kMaxIov || !link_up_) {
            ++counters_.tx_dropped;
        } else {
            ChainReader reader(active.memory, *chain);
            if (!tx_limiter_.consume(1, length - NetBackend::kVnetHeaderSize)) {
                tx.give_back(*chain);  // sent once the limiter's timer fires
                break;
            }
            tx_iov_.clear();
            for (const GuestSlice& slice : reader.slices(length)) {
                tx_iov_.push_back({slice.data(), slice.size()});
            }
            ssize_t n = backend_->write_frame(tx_iov_);
            if (n < 0 && errno == EAGAIN) {
                tx.give_back(*chain);  // sent again once the tap has room
                active.tx_blocked = true;
                break;
            }
            if (n < 0) {
                int error = errno;
                ++counters_.tx_dropped;
                if (tap_is_gone(error)) {
                    link_down("write", error);
                } else if (!reported_tx_error_) {
                    // EINVAL: a header the host refuses (bad GSO fields, say).
                    reported_tx_error_ = true;
                    log_warning("{}: tap '{}' refused a frame: {}", name_, backend_->name(),
                                std::strerror(error));
                }
            } else {
                ++counters_.tx_frames;
                counters_.tx_bytes += length - NetBackend::kVnetHeaderSize;
            }
        }
        tx.add_used(active.memory, chain->head(), 0);
        ++sent;
    }
    active.notify_if_needed(tx);
    return more;
}

void NetDevice::link_down(const char* operation, int error) {
    if (!link_up_) {
        return;
    }
    link_up_ = false;
    log_warning("{}: tap '{}' failed ({}: {}): link down", name_, backend_->name(), operation,
                std::strerror(error));
    if (active_ && active_->has_feature(VIRTIO_NET_F_STATUS)) {
        active_->interrupt.signal_config_change();
    }
}

VirtioDevice::Metrics NetDevice::metrics() const {
    return {{"rx_frames", counters_.rx_frames},
            {"rx_bytes", counters_.rx_bytes},
            {"rx_dropped", counters_.rx_dropped},
            {"tx_frames", counters_.tx_frames},
            {"tx_bytes", counters_.tx_bytes},
            {"tx_dropped", counters_.tx_dropped},
            {"rx_rate_limiter_throttled", rx_limiter_.throttled()},
            {"tx_rate_limiter_throttled", tx_limiter_.throttled()}};
}

void NetDevice::save_state(StateWriter& out) const {
    out.bytes(mac_.bytes);
    out.u32(mtu_);
    out.boolean(link_up_);
    size_t staged = active_ ? active_->frame_length : 0;
    out.bytes(std::span<const uint8_t>(frame_.data(), staged));
}

void NetDevice::restore_state(StateReader& in) {
    std::vector<uint8_t> mac = in.bytes(mac_.bytes.size());
    if (!std::equal(mac.begin(), mac.end(), mac_.bytes.begin(), mac_.bytes.end())) {
        MacAddress saved;
        std::copy(mac.begin(), mac.end(), saved.bytes.begin());
        in.fail(fmt::format("the snapshot's MAC address was {}, this device's is {}",
                            mac.size() == saved.bytes.size() ? saved.to_string() : "malformed",
                            mac_.to_string()));
    }
    uint32_t mtu = in.u32();
    if (mtu != mtu_) {
        in.fail(fmt::format("the snapshot's MTU was {}, this device's is {}", mtu, mtu_));
    }
    bool link_up = in.boolean();
    std::vector<uint8_t> frame = in.bytes(kMaxFrame);
    // Staged frames always carry more than the header (process_rx()).
    if (!frame.empty() && frame.size() <= NetBackend::kVnetHeaderSize) {
        in.fail(fmt::format("a staged frame of {} bytes, no more than its header", frame.size()));
    }
    // Not activated again (the driver must reset it after a protocol
    // violation, which drops a staged frame anyway): the frame goes.
    if (!frame.empty() && active_) {
        // Delivered when the transport's first look at the receive queue
        // finds buffers for it.
        std::copy(frame.begin(), frame.end(), frame_.begin());
        active_->frame_length = frame.size();
    }
    // The link is this tap's; a driver told otherwise reads the status again.
    if (link_up != link_up_ && active_ && active_->has_feature(VIRTIO_NET_F_STATUS)) {
        active_->interrupt.signal_config_change();
    }
}

}  // namespace vmm
