// virtio-mmio transport, version 2 (VIRTIO 1.2, 4.2.2): the register state
// machine in front of one VirtioDevice. Queue notifications arrive as
// eventfds (KVM ioeventfd, or signalled here for a notify KVM did not catch)
// and are processed on the I/O thread; interrupts leave through an irqfd.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "devices/bus_device.hpp"
#include "devices/virtio/virtio_device.hpp"
#include "vmm/base/event_fd.hpp"
#include "vmm/base/state_stream.hpp"

namespace vmm {

class MmioTransport : public BusDevice, private VirtioInterrupt {
  public:
    static constexpr uint64_t kSize = 0x1000;
    static constexpr uint64_t kQueueNotifyOffset = 0x50;

    MmioTransport(const GuestMemory& memory, std::unique_ptr<VirtioDevice> device,
                  std::string name);
    // The device goes first: finishing its requests in flight still needs the queues.
    ~MmioTransport() override;

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    size_t queue_count() const { return queues_.size(); }
    // Signalled when the driver notifies queue `index`.
    const EventFd& queue_event(size_t index) const { return *queue_events_[index]; }
    // Signalled to raise the device's interrupt (wire it to an irqfd).
    const EventFd& interrupt_event() const { return interrupt_event_; }
    // I/O thread: the driver notified queue `index`.
    void process_queue_event(size_t index);
    // The device's backend fds (see VirtioDevice) and their handler (I/O
    // thread); process_backend_event() returns whether to call it again soon.
    size_t backend_count() const { return device_->backend_count(); }
    int backend_fd(size_t index) const { return device_->backend_fd(index); }
    VirtioDevice::BackendInterest backend_interest(size_t index) const;
    bool process_backend_event(size_t index);

    uint32_t status() const;
    uint32_t device_type() const { return device_->device_type(); }
    // The device's counters plus the transport's own (violations seen).
    VirtioDevice::Metrics metrics() const;
    const std::string& name() const { return name_; }
    // Runs `action(device)` with the lock held: a live change from the API
    // (a rate limiter's PATCH) while vCPUs may be in the registers.
    template <typename Action>
    void with_device(Action&& action) {
        std::lock_guard lock(mutex_);
        action(*device_);
    }

    // Snapshots, with the VM paused (no vCPU or I/O thread in here).
    // save_state() first has the device finish its requests in flight
    // (VirtioDevice::prepare_save()), then writes the registers, each
    // queue and the device's own state.
    void save_state(StateWriter& out);
    // Only into a transport fresh from its constructor, over the device the
    // snapshot had (same type and offer, checked) and the restored guest
    // memory; throws Error otherwise, StateError for a corrupt state or one
    // whose live queues do not fit in guest memory (the transport is then
    // left reset). A device that was live is activated again; a pending
    // interrupt is raised again and every ready queue looked at once, so call
    // it once the interrupt controller is restored and the eventfds wired.
    void restore_state(StateReader& in);

  private:
    void signal_used_queue() override;
    void signal_config_change() override;

    uint32_t read_register(uint64_t offset);
    void write_register(uint64_t offset, uint32_t value);
    void write_status(uint32_t value);
    // FEATURES_OK: the acked features are a subset of the offer, VERSION_1 included.
    bool features_acceptable() const;
    // DRIVER_OK: validates the ready queues and hands them to the device.
    void activate_locked();
    // What activate_locked() does, throwing what the queues or the device refuse.
    void activate_device_locked();
    // Reads a saved state into this fresh transport (restore_state()).
    void restore_locked(StateReader& in);
    void reset_locked();
    // Marks the device broken after a guest violation (it is called no more
    // until the driver resets it); logs the first one.
    void set_needs_reset_locked(const std::string& why);
    Queue* selected_queue();

    const GuestMemory& memory_;
    std::unique_ptr<VirtioDevice> device_;
    std::string name_;
    mutable std::mutex mutex_;
    std::vector<Queue> queues_;
    std::vector<std::unique_ptr<EventFd>> queue_events_;
    EventFd interrupt_event_;
    std::atomic<uint32_t> interrupt_status_{0};
    std::atomic<uint32_t> config_generation_{0};
    uint32_t status_ = 0;
    uint32_t device_features_select_ = 0;
    uint32_t driver_features_select_ = 0;
    uint64_t driver_features_ = 0;
    uint32_t queue_select_ = 0;
    bool activated_ = false;
    bool reported_violation_ = false;
    uint64_t violations_ = 0;
    uint64_t resets_ = 0;  // status 0 written after the driver had begun
};

}  // namespace vmm
