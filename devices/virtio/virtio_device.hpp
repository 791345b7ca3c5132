// What a virtio device implements; a transport (virtio-mmio) owns the
// register state machine and the queues and talks to the device only through
// this interface.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "devices/virtio/queue.hpp"
#include "vmm/base/state_stream.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace vmm {

// How a device tells the driver that it used buffers or changed its config.
class VirtioInterrupt {
  public:
    virtual ~VirtioInterrupt() = default;
    virtual void signal_used_queue() = 0;
    virtual void signal_config_change() = 0;
};

// What a driver reading `out.size()` config bytes at `offset` gets from a
// device's config struct; bytes past its end are left alone (the transport
// clamps first, this stays safe without it).
template <typename Config>
void copy_config(const Config& config, uint64_t offset, std::span<uint8_t> out) {
    static_assert(std::is_trivially_copyable_v<Config>);
    if (offset >= sizeof(Config)) {
        return;
    }
    size_t length = std::min<size_t>(out.size(), sizeof(Config) - offset);
    std::memcpy(out.data(), reinterpret_cast<const uint8_t*>(&config) + offset, length);
}

// What activate() hands a device, kept as one piece until reset(). A device
// holds it, with whatever running state of its own lives exactly as long, in
// a std::optional that activate() fills and reset() empties: "not activated"
// is one check, and nothing can be half set. The memory, the queues and the
// interrupt belong to the transport, which outlives every activation.
struct Activation {
    Activation(const GuestMemory& memory, uint64_t features, std::span<Queue> queues,
               VirtioInterrupt& interrupt)
        : memory(memory), features(features), queues(queues), interrupt(interrupt) {}

    bool has_feature(unsigned bit) const { return (features >> bit) & 1; }
    // Sends the used buffer notification for `queue` if the driver wants one
    // for what was used since the last check (Queue::needs_notification()).
    void notify_if_needed(Queue& queue) const {
        if (queue.needs_notification(memory)) {
            interrupt.signal_used_queue();
        }
    }

    const GuestMemory& memory;
    uint64_t features;  // what the driver acked
    std::span<Queue> queues;
    VirtioInterrupt& interrupt;
};

class VirtioDevice {
  public:
    virtual ~VirtioDevice() = default;

    virtual uint32_t device_type() const = 0;
    virtual std::vector<uint16_t> queue_max_sizes() const = 0;
    // Feature bits offered to the driver (including VIRTIO_F_VERSION_1).
    virtual uint64_t offered_features() const = 0;
    // Config space; the transport clamps offset and size to config_size().
    virtual size_t config_size() const = 0;
    virtual void read_config(uint64_t offset, std::span<uint8_t> data) const = 0;
    virtual void write_config(uint64_t offset, std::span<const uint8_t> data) = 0;

    // DRIVER_OK: the queues are laid out and validated, the features acked.
    // Called on a vCPU thread with the transport's lock held. A device keeps
    // these as one Activation; one that throws is not activated.
    virtual void activate(const GuestMemory& memory, uint64_t acked_features,
                          std::span<Queue> queues, VirtioInterrupt& interrupt) = 0;
    // The driver notified queue `index` (I/O thread, transport lock held).
    // Throws QueueError when the guest broke the queue: the transport then
    // marks the device DEVICE_NEEDS_RESET and calls neither process_queue()
    // nor process_backend() until the driver resets it. Returns true when it
    // stopped with work left (each call is bounded, so one queue cannot
    // starve the loop).
    virtual bool process_queue(size_t index) = 0;
    // Driver reset: forget the activation; afterwards no guest memory access
    // (requests in flight are completed first).
    virtual void reset() = 0;

    // Host fds the device's backend waits on (an engine's completion
    // eventfd, a tap, an input eventfd), numbered 0..backend_count()-1. The
    // I/O thread asks backend_interest() after every call into the device and
    // waits for what it says; when the fd is ready it calls process_backend()
    // (transport lock held). Waits are edge-triggered: a device that stops
    // short of EAGAIN (no guest buffers, budget spent) must resume by itself
    // when it can, e.g. from process_queue() when the driver adds buffers, or
    // return true from process_backend() to be called again on a later turn.
    // Calls can be spurious: a device must cope with finding nothing to do.
    struct BackendInterest {
        bool readable = false;
        bool writable = false;
    };
    virtual size_t backend_count() const { return 0; }
    virtual int backend_fd(size_t /*index*/) const { return -1; }
    virtual BackendInterest backend_interest(size_t /*index*/) const { return {}; }
    virtual bool process_backend(size_t /*index*/) { return false; }

    // Named counters for logs and metrics (requests, bytes, drops, ...).
    // Called with the transport's lock held.
    using Metrics = std::vector<std::pair<std::string, uint64_t>>;
    virtual Metrics metrics() const { return {}; }

    // Snapshots, with the VM paused and the transport's lock held.
    // prepare_save() runs just before the queues are saved: it finishes every
    // request in flight (its used element written, the driver notified) and
    // gives back or finishes any chain it holds, so that after it no chain
    // popped from a queue exists outside the rings.
    virtual void prepare_save() {}
    // The device's own state beyond the transport's: config values that can
    // change, the backend's identity (checked on restore) and running state
    // worth keeping. restore_state() runs after the transport re-activated
    // the device (when the driver had it live), or on a device never
    // activated; it throws StateError for a state it cannot take, naming why.
    // The defaults are for a device with no state of its own (rng).
    virtual void save_state(StateWriter& /*out*/) const {}
    virtual void restore_state(StateReader& /*in*/) {}
};

}  // namespace vmm
