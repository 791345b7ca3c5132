// MmioTransport's snapshot state: the registers, the queues and the device's
// own state, in that order. A restored state is checked as hostile input.
#include <fmt/format.h>

#include "devices/virtio/mmio_transport.hpp"
#include "devices/virtio/virtio_spec.hpp"

namespace vmm {

namespace {

constexpr uint32_t kKnownStatus = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK |
                                  VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FAILED;
constexpr uint32_t kKnownInterrupts = 0x3;  // used buffer, configuration change

// Whether `status` is one write_status() can reach: known bits only, and
// each initialisation step only on top of the one before it.
bool status_reachable(uint32_t status) {
    static constexpr std::pair<uint32_t, uint32_t> kSteps[] = {
        {VIRTIO_STATUS_DRIVER, VIRTIO_STATUS_ACKNOWLEDGE},
        {VIRTIO_STATUS_FEATURES_OK, VIRTIO_STATUS_DRIVER},
        {VIRTIO_STATUS_DRIVER_OK, VIRTIO_STATUS_FEATURES_OK},
    };
    if (status & ~kKnownStatus) {
        return false;
    }
    for (auto [bit, needs] : kSteps) {
        if ((status & bit) && !(status & needs)) {
            return false;
        }
    }
    return true;
}

}  // namespace

void MmioTransport::save_state(StateWriter& out) {
    std::lock_guard lock(mutex_);
    // Before the queues are written: requests in flight finish into the used
    // rings, so the saved indices cover them.
    if (activated_) {
        try {
            device_->prepare_save();
        } catch (const Error& e) {
            set_needs_reset_locked(e.what());  // the guest sees it after the restore too
        }
    }
    out.u32(device_->device_type());
    out.u64(device_->offered_features());
    out.u32(status_);
    out.u32(device_features_select_);
    out.u32(driver_features_select_);
    out.u64(driver_features_);
    out.u32(queue_select_);
    out.u32(interrupt_status_.load());
    out.u32(config_generation_.load());
    out.boolean(activated_);
    out.u32(static_cast<uint32_t>(queues_.size()));
    for (const auto& queue : queues_) {
        StateWriter section;
        queue.save_state(section);
        out.section(section);
    }
    StateWriter device;
    device_->save_state(device);
    out.section(device);
}

void MmioTransport::restore_state(StateReader& in) {
    std::lock_guard lock(mutex_);
    if (status_ != 0 || activated_ || resets_ != 0 || violations_ != 0) {
        throw Error(fmt::format(
            "{}: a saved state is only restored into a transport no driver has used", name_));
    }
    try {
        restore_locked(in);
    } catch (const Error&) {
        reset_locked();  // nothing half restored stays behind
        throw;
    }
}

void MmioTransport::restore_locked(StateReader& in) {
    uint32_t device_type = in.u32();
    if (device_type != device_->device_type()) {
        in.fail(fmt::format("saved from a virtio device of type {}, this one is of type {}",
                            device_type, device_->device_type()));
    }
    uint64_t offered = in.u64();
    if (offered != device_->offered_features()) {
        in.fail(
            fmt::format("the snapshot's device offered features {:#x}, this one offers {:#x}: the "
                        "driver negotiated with the other",
                        offered, device_->offered_features()));
    }
    uint32_t status = in.u32();
    if (!status_reachable(status)) {
        in.fail(fmt::format("device status {:#x} is not one a driver can reach", status));
    }
    uint32_t device_features_select = in.u32();
    uint32_t driver_features_select = in.u32();
    uint64_t driver_features = in.u64();
    // Before FEATURES_OK the driver may write anything (FEATURES_OK checks
    // it); after it, only what features_acceptable() took.
    bool acceptable =
        (driver_features & ~offered) == 0 && (driver_features & (1ull << VIRTIO_F_VERSION_1)) != 0;
    if ((status & VIRTIO_STATUS_FEATURES_OK) && !acceptable) {
        in.fail(fmt::format("driver features {:#x} are not a VERSION_1 subset of the offered {:#x}",
                            driver_features, offered));
    }
    uint32_t queue_select = in.u32();
    if (queue_select > 0xffff) {
        in.fail(fmt::format("queue select {:#x} is out of range", queue_select));
    }
    uint32_t interrupt_status = in.u32();
    if (interrupt_status & ~kKnownInterrupts) {
        in.fail(fmt::format("interrupt status {:#x} has unknown bits", interrupt_status));
    }
    uint32_t config_generation = in.u32();
    bool was_activated = in.boolean();
    // Live means activated; DRIVER_OK without it means activation failed,
    // which set NEEDS_RESET.
    bool live = (status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    if ((was_activated && !(status & VIRTIO_STATUS_DRIVER_OK)) || (live && !was_activated)) {
        in.fail(
            fmt::format("device status {:#x} disagrees with activated={}", status, was_activated));
    }
    uint32_t queue_count = in.u32();
    if (queue_count != queues_.size()) {
        in.fail(fmt::format("{} queues saved, this device has {}", queue_count, queues_.size()));
    }
    for (size_t i = 0; i < queues_.size(); ++i) {
        StateReader section = in.section(fmt::format("{} queue {}", in.what(), i));
        queues_[i].restore_state(section);
        section.expect_end();
    }
    StateReader device = in.section(fmt::format("{} device", in.what()));
    in.expect_end();

    status_ = status;
    device_features_select_ = device_features_select;
    driver_features_select_ = driver_features_select;
    driver_features_ = driver_features;
    queue_select_ = queue_select;
    interrupt_status_ = interrupt_status;
    config_generation_ = config_generation;
    if (live) {
        try {
            // Also signals every queue's event: requests made available
            // before the snapshot and not yet processed are looked at.
            activate_device_locked();
        } catch (const Error& e) {
            in.fail(fmt::format("the device cannot be activated again: {}", e.what()));
        }
    }
    device_->restore_state(device);
    device.expect_end();
    if (interrupt_status != 0) {
        interrupt_event_.signal();  // the guest has not acknowledged it yet
    }
}

}  // namespace vmm
