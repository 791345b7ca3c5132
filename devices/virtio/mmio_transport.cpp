#include "devices/virtio/mmio_transport.hpp"

#include <algorithm>
#include <cstring>

#include "devices/virtio/virtio_spec.hpp"
#include "vmm/base/logger.hpp"

namespace vmm {

namespace {

constexpr uint32_t kMagic = 0x74726976;  // "virt"
constexpr uint32_t kVersion = 2;
constexpr uint32_t kVendor = 0x204d4d56;  // "VMM "
constexpr uint64_t kConfigOffset = 0x100;
constexpr uint32_t kInterruptUsedRing = 1;
constexpr uint32_t kInterruptConfigChange = 2;

enum Register : uint64_t {
    kMagicValue = 0x000,
    kVersionReg = 0x004,
    kDeviceId = 0x008,
    kVendorId = 0x00c,
    kDeviceFeatures = 0x010,
    kDeviceFeaturesSel = 0x014,
    kDriverFeatures = 0x020,
    kDriverFeaturesSel = 0x024,
    kQueueSel = 0x030,
    kQueueNumMax = 0x034,
    kQueueNum = 0x038,
    kQueueReady = 0x044,
    kQueueNotify = 0x050,
    kInterruptStatus = 0x060,
    kInterruptAck = 0x064,
    kStatus = 0x070,
    kQueueDescLow = 0x080,
    kQueueDescHigh = 0x084,
    kQueueDriverLow = 0x090,
    kQueueDriverHigh = 0x094,
    kQueueDeviceLow = 0x0a0,
    kQueueDeviceHigh = 0x0a4,
    kConfigGeneration = 0x0fc,
};

GuestAddress with_low(GuestAddress address, uint32_t low) {
    return GuestAddress((address.value() & ~0xffffffffull) | low);
}

GuestAddress with_high(GuestAddress address, uint32_t high) {
    return GuestAddress((address.value() & 0xffffffffull) | (uint64_t(high) << 32));
}

}  // namespace

MmioTransport::MmioTransport(const GuestMemory& memory, std::unique_ptr<VirtioDevice> device,
                             std::string name)
    : memory_(memory), device_(std::move(device)), name_(std::move(name)) {
    for (uint16_t max_size : device_->queue_max_sizes()) {
        queues_.emplace_back(max_size);
        queue_events_.push_back(std::make_unique<EventFd>());
    }
}

MmioTransport::~MmioTransport() {
    std::lock_guard lock(mutex_);
    device_.reset();
}

uint32_t MmioTransport::status() const {
    std::lock_guard lock(mutex_);
    return status_;
}

void MmioTransport::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    std::fill(data.begin(), data.end(), 0);
    if (offset >= kConfigOffset) {
        uint64_t config_offset = offset - kConfigOffset;
        size_t size = device_->config_size();
        if (config_offset < size) {
            size_t length = std::min<size_t>(data.size(), size - config_offset);
            device_->read_config(config_offset, data.first(length));
        }
        return;
    }
    // Registers are 32 bits wide and 32-bit aligned; other accesses read 0.
    if (data.size() != 4 || offset % 4 != 0) {
        return;
    }
    uint32_t value = read_register(offset);
    std::memcpy(data.data(), &value, sizeof(value));
}

void MmioTransport::write(uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(mutex_);
    if (offset >= kConfigOffset) {
        uint64_t config_offset = offset - kConfigOffset;
        size_t size = device_->config_size();
        if (config_offset < size) {
            size_t length = std::min<size_t>(data.size(), size - config_offset);
            device_->write_config(config_offset, data.first(length));
        }
        return;
    }
    if (data.size() != 4 || offset % 4 != 0) {
        return;
    }
    uint32_t value;
    std::memcpy(&value, data.data(), sizeof(value));
    write_register(offset, value);
}

Queue* MmioTransport::selected_queue() {
    return queue_select_ < queues_.size() ? &queues_[queue_select_] : nullptr;
}

uint32_t MmioTransport::read_register(uint64_t offset) {
    Queue* queue = selected_queue();
    switch (offset) {
        case kMagicValue:
            return kMagic;
        case kVersionReg:
            return kVersion;
        case kDeviceId:
            return device_->device_type();
        case kVendorId:
            return kVendor;
        case kDeviceFeatures:
            return device_features_select_ < 2
                       ? uint32_t(device_->offered_features() >> (32 * device_features_select_))
                       : 0;
        case kQueueNumMax:
            return queue ? queue->max_size() : 0;
        case kQueueReady:
            return queue && queue->ready() ? 1 : 0;
        case kInterruptStatus:
            return interrupt_status_.load();
        case kStatus:
            return status_;
        case kConfigGeneration:
            return config_generation_.load();
        default:
            return 0;
    }
}

void MmioTransport::write_register(uint64_t offset, uint32_t value) {
    // Queue layout may change only before the device is live (spec 4.2.2.2).
    bool configurable = !(status_ & VIRTIO_STATUS_DRIVER_OK) && !(status_ & VIRTIO_STATUS_FAILED);
    Queue* queue = configurable ? selected_queue() : nullptr;
    switch (offset) {
        case kDeviceFeaturesSel:
            device_features_select_ = value;
            break;
        case kDriverFeaturesSel:
            driver_features_select_ = value;
            break;
        case kDriverFeatures:
            // Features are settable between DRIVER and FEATURES_OK only.
            if ((status_ & VIRTIO_STATUS_DRIVER) && !(status_ & VIRTIO_STATUS_FEATURES_OK) &&
                driver_features_select_ < 2) {
                uint64_t shift = 32 * driver_features_select_;
                driver_features_ =
                    (driver_features_ & ~(0xffffffffull << shift)) | (uint64_t(value) << shift);
            }
            break;
        case kQueueSel:
            queue_select_ = value;
            break;
        case kQueueNum:
            if (queue)
                queue->set_size(static_cast<uint16_t>(std::min<uint32_t>(value, 0xffff)));
            break;
        case kQueueReady:
            if (queue)
                queue->set_ready(value == 1);
            break;
        case kQueueDescLow:
            if (queue)
                queue->set_desc_table(with_low(queue->desc_table(), value));
            break;
        case kQueueDescHigh:
            if (queue)
                queue->set_desc_table(with_high(queue->desc_table(), value));
            break;
        case kQueueDriverLow:
            if (queue)
                queue->set_avail_ring(with_low(queue->avail_ring(), value));
            break;
        case kQueueDriverHigh:
            if (queue)
                queue->set_avail_ring(with_high(queue->avail_ring(), value));
            break;
        case kQueueDeviceLow:
            if (queue)
                queue->set_used_ring(with_low(queue->used_ring(), value));
            break;
        case kQueueDeviceHigh:
            if (queue)
                queue->set_used_ring(with_high(queue->used_ring(), value));
            break;
        case kQueueNotify:
            // KVM's ioeventfd normally catches this write; one that reaches us
            // (say, for an index it has no eventfd for) is handed to the I/O
            // thread the same way. Unknown queues are ignored.
            if (value < queue_events_.size()) {
                queue_events_[value]->signal();
            }
            break;
        case kInterruptAck:
            interrupt_status_.fetch_and(~value);
            break;
        case kStatus:
            write_status(value);
            break;
        default:
            break;
    }
}

void MmioTransport::write_status(uint32_t value) {
    if (value == 0) {
        if (status_ != 0) {
            ++resets_;  // a reset of a device the driver had started on
        }
        reset_locked();
        return;
    }
    // The driver only adds bits (spec 2.1.2); clearing one needs a reset, and
    // NEEDS_RESET is the device's to set. After FAILED the driver has given
    // up on the device: only a reset is taken.
    if ((value & status_) != status_ || (status_ & VIRTIO_STATUS_FAILED)) {
        return;
    }
    uint32_t wanted = value & ~status_;
    if (wanted & VIRTIO_STATUS_FAILED) {
        status_ |= VIRTIO_STATUS_FAILED;
        return;
    }
    // The initialisation steps (3.1.1), each taken only once the one before it
    // is: a driver that skips one sees the bit did not stick. Other bits
    // (reserved ones) are dropped.
    static constexpr std::pair<uint32_t, uint32_t> kSteps[] = {
        {VIRTIO_STATUS_ACKNOWLEDGE, 0},
        {VIRTIO_STATUS_DRIVER, VIRTIO_STATUS_ACKNOWLEDGE},
        {VIRTIO_STATUS_FEATURES_OK, VIRTIO_STATUS_DRIVER},
        {VIRTIO_STATUS_DRIVER_OK, VIRTIO_STATUS_FEATURES_OK},
    };
    for (auto [bit, needs] : kSteps) {
        if (!(wanted & bit)) {
            continue;
        }
        if ((status_ & needs) != needs) {
            return;
        }
        if (bit == VIRTIO_STATUS_FEATURES_OK && !features_acceptable()) {
            return;  // refused: the driver reads FEATURES_OK back clear
        }
        status_ |= bit;
        if (bit == VIRTIO_STATUS_DRIVER_OK) {
            activate_locked();
        }
    }
}

bool MmioTransport::features_acceptable() const {
    bool subset = (driver_features_ & ~device_->offered_features()) == 0;
    bool modern = driver_features_ & (1ull << VIRTIO_F_VERSION_1);
    return subset && modern;
}

void MmioTransport::activate_locked() {
    if (activated_ || (status_ & VIRTIO_STATUS_DEVICE_NEEDS_RESET)) {
        return;
    }
    try {
        activate_device_locked();
    } catch (const Error& e) {
        set_needs_reset_locked(e.what());
    }
}

void MmioTransport::activate_device_locked() {
    for (auto& queue : queues_) {
        queue.set_features(driver_features_);
        if (queue.ready()) {
            queue.validate_layout(memory_);
        }
    }
    device_->activate(memory_, driver_features_, queues_, *this);
    activated_ = true;
    // Buffers made available (and notified) before DRIVER_OK were
    // ignored; look at every queue once now, on the I/O thread.
    for (auto& event : queue_events_) {
        event->signal();
    }
}

void MmioTransport::reset_locked() {
    device_->reset();
    for (auto& queue : queues_) {
        queue.reset();
    }
    for (auto& event : queue_events_) {
        event->consume();
    }
    status_ = 0;
    driver_features_ = 0;
    device_features_select_ = driver_features_select_ = queue_select_ = 0;
    interrupt_status_ = 0;
    activated_ = false;
}

VirtioDevice::Metrics MmioTransport::metrics() const {
    std::lock_guard lock(mutex_);
    VirtioDevice::Metrics metrics = device_->metrics();
    metrics.emplace_back("protocol_violations", violations_);
    metrics.emplace_back("driver_resets", resets_);
    return metrics;
}

void MmioTransport::set_needs_reset_locked(const std::string& why) {
    ++violations_;
    if (!reported_violation_) {
        log_warning("{}: guest broke the virtio protocol, device needs reset: {}", name_, why);
        reported_violation_ = true;
    }
    if (status_ & VIRTIO_STATUS_DEVICE_NEEDS_RESET) {
        return;  // the driver was told already
    }
    status_ |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    if (status_ & VIRTIO_STATUS_DRIVER_OK) {
        signal_config_change();
    }
}

void MmioTransport::process_queue_event(size_t index) {
    std::lock_guard lock(mutex_);
    queue_events_[index]->consume();
    if (!activated_ || (status_ & VIRTIO_STATUS_DEVICE_NEEDS_RESET) || !queues_[index].ready()) {
        return;
    }
    try {
        if (device_->process_queue(index)) {
            queue_events_[index]->signal();  // the rest on a later loop turn
        }
    } catch (const Error& e) {
        set_needs_reset_locked(e.what());
    }
}

VirtioDevice::BackendInterest MmioTransport::backend_interest(size_t index) const {
    std::lock_guard lock(mutex_);
    if (status_ & VIRTIO_STATUS_DEVICE_NEEDS_RESET) {
        return {};  // nothing to wait for until the driver resets the device
    }
    return device_->backend_interest(index);
}

bool MmioTransport::process_backend_event(size_t index) {
    std::lock_guard lock(mutex_);
    // A device that broke a queue is left alone until the driver resets it,
    // as process_queue_event() does.
    if (status_ & VIRTIO_STATUS_DEVICE_NEEDS_RESET) {
        return false;
    }
    try {
        return device_->process_backend(index);
    } catch (const Error& e) {
        set_needs_reset_locked(e.what());
        return false;
    }
}

void MmioTransport::signal_used_queue() {
    interrupt_status_.fetch_or(kInterruptUsedRing);
    interrupt_event_.signal();
}

void MmioTransport::signal_config_change() {
    // The config changed (net link state, console size): a driver reading it
    // across the change sees the generation move and reads again (4.2.2.2).
    config_generation_.fetch_add(1);
    interrupt_status_.fetch_or(kInterruptConfigChange);
    interrupt_event_.signal();
}

}  // namespace vmm
