// MmioTransport, the virtio-mmio register file (VIRTIO 1.2, 4.2.2), in front
// of a fake device that records what the transport asks of it: every
// register, the device status state machine, the queue layout handed over
// at DRIVER_OK, notifications and interrupts, config space, and the
// accesses a driver must not make (wrong size or alignment, read-only
// registers, out-of-range selectors, queue changes once the device is live).
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "devices/virtio/mmio_transport.hpp"
#include "devices/virtio/virtio_spec.hpp"

using vmm::GuestAddress;
using vmm::MmioTransport;

namespace {

// The register offsets of VIRTIO 1.2, table 4.1, spelled out here rather than
// taken from the transport under test.
constexpr uint64_t kMagicValue = 0x000;
constexpr uint64_t kVersion = 0x004;
constexpr uint64_t kDeviceId = 0x008;
constexpr uint64_t kVendorId = 0x00c;
constexpr uint64_t kDeviceFeatures = 0x010;
constexpr uint64_t kDeviceFeaturesSel = 0x014;
constexpr uint64_t kDriverFeatures = 0x020;
constexpr uint64_t kDriverFeaturesSel = 0x024;
constexpr uint64_t kQueueSel = 0x030;
constexpr uint64_t kQueueNumMax = 0x034;
constexpr uint64_t kQueueNum = 0x038;
constexpr uint64_t kQueueReady = 0x044;
constexpr uint64_t kQueueNotify = 0x050;
constexpr uint64_t kInterruptStatus = 0x060;
constexpr uint64_t kInterruptAck = 0x064;
constexpr uint64_t kStatus = 0x070;
constexpr uint64_t kQueueDescLow = 0x080;
constexpr uint64_t kQueueDescHigh = 0x084;
constexpr uint64_t kQueueDriverLow = 0x090;
constexpr uint64_t kQueueDriverHigh = 0x094;
constexpr uint64_t kQueueDeviceLow = 0x0a0;
constexpr uint64_t kQueueDeviceHigh = 0x0a4;
constexpr uint64_t kConfigGeneration = 0x0fc;
constexpr uint64_t kConfig = 0x100;

constexpr uint32_t kAcknowledge = vmm::VIRTIO_STATUS_ACKNOWLEDGE;
constexpr uint32_t kDriver = vmm::VIRTIO_STATUS_DRIVER;
constexpr uint32_t kFeaturesOk = vmm::VIRTIO_STATUS_FEATURES_OK;
constexpr uint32_t kDriverOk = vmm::VIRTIO_STATUS_DRIVER_OK;
constexpr uint32_t kNeedsReset = vmm::VIRTIO_STATUS_DEVICE_NEEDS_RESET;
constexpr uint32_t kFailed = vmm::VIRTIO_STATUS_FAILED;
constexpr uint32_t kUpToFeaturesOk = kAcknowledge | kDriver | kFeaturesOk;
constexpr uint32_t kLive = kUpToFeaturesOk | kDriverOk;

constexpr uint32_t kFakeType = 42;
constexpr uint64_t kVersion1 = 1ull << vmm::VIRTIO_F_VERSION_1;
constexpr uint64_t kEventIdx = 1ull << vmm::VIRTIO_F_RING_EVENT_IDX;
constexpr uint64_t kLowFeature = 1ull << 3;
constexpr uint64_t kHighFeature = 1ull << 40;
constexpr uint64_t kOffered = kVersion1 | kEventIdx | kLowFeature | kHighFeature;
constexpr uint16_t kQueue0Max = 256;
constexpr uint16_t kQueue1Max = 8;

// Guest RAM: 1 MiB at 0 and 1 MiB above 4 GiB, so the high halves of the
// queue address registers can be exercised with a layout that validates.
constexpr uint64_t kLowRam = 1 << 20;
constexpr uint64_t kHighBase = 1ull << 32;
constexpr uint64_t kHighRam = 1 << 20;

// A device that records what the transport does with it.
class FakeDevice : public vmm::VirtioDevice {
  public:
    struct ConfigAccess {
        uint64_t offset;
        size_t size;
        bool operator==(const ConfigAccess&) const = default;
    };

    uint32_t device_type() const override { return kFakeType; }
    std::vector<uint16_t> queue_max_sizes() const override { return {kQueue0Max, kQueue1Max}; }
    uint64_t offered_features() const override { return kOffered; }
    size_t config_size() const override { return config.size(); }
    void read_config(uint64_t offset, std::span<uint8_t> data) const override {
        config_reads.push_back({offset, data.size()});
        out_of_bounds_config |= offset + data.size() > config.size();
        vmm::copy_config(config, offset, data);
    }
    void write_config(uint64_t offset, std::span<const uint8_t> data) override {
        config_writes.push_back({offset, data.size()});
        if (offset + data.size() > config.size()) {
            out_of_bounds_config = true;
            return;
        }
        std::memcpy(config.data() + offset, data.data(), data.size());
    }
    void activate(const vmm::GuestMemory& memory, uint64_t features, std::span<vmm::Queue> queues,
                  vmm::VirtioInterrupt& interrupt) override {
        if (fail_activation) {
            throw vmm::Error("fake activation refused");
        }
        ++activations;
        this->memory = &memory;
        acked = features;
        this->queues = queues;
        this->interrupt = &interrupt;
    }
    bool process_queue(size_t index) override {
        processed.push_back(index);
        if (queue_error) {
            throw vmm::QueueError("fake queue error");
        }
        return more_work;
    }
    void reset() override {
        ++resets;
        memory = nullptr;
        queues = {};
        interrupt = nullptr;
    }
    size_t backend_count() const override { return 1; }
    BackendInterest backend_interest(size_t) const override { return {true, false}; }
    bool process_backend(size_t) override {
        ++backend_calls;
        if (backend_error) {
            throw vmm::QueueError("fake backend error");
        }
        return false;
    }
    Metrics metrics() const override { return {{"fake_counter", 7}}; }

    // Config space: 8 recognisable bytes.
    std::array<uint8_t, 8> config{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17};
    mutable std::vector<ConfigAccess> config_reads;
    std::vector<ConfigAccess> config_writes;
    mutable bool out_of_bounds_config = false;

    bool fail_activation = false;
    bool queue_error = false;
    bool backend_error = false;
    bool more_work = false;

    int activations = 0;
    int resets = 0;
    int backend_calls = 0;
    std::vector<size_t> processed;
    const vmm::GuestMemory* memory = nullptr;
    uint64_t acked = 0;
    std::span<vmm::Queue> queues;
    vmm::VirtioInterrupt* interrupt = nullptr;
};

// A transport over a FakeDevice, with the driver's side of the register
// protocol as helpers.
struct Mmio {
    Mmio()
        : memory(vmm::GuestMemory::create(
              {{GuestAddress(0), kLowRam}, {GuestAddress(kHighBase), kHighRam}})) {
        auto owned = std::make_unique<FakeDevice>();
        device = owned.get();
        transport = std::make_unique<MmioTransport>(memory, std::move(owned), "fake0");
    }

    // An access of `size` bytes; bytes the transport leaves alone read as 0xee.
    uint64_t read(uint64_t offset, size_t size) {
        std::vector<uint8_t> bytes(size, 0xee);
        transport->read(offset, bytes);
        uint64_t value = 0;
        std::memcpy(&value, bytes.data(), std::min<size_t>(size, 8));
        return value;
    }
    void write(uint64_t offset, uint64_t value, size_t size) {
        std::vector<uint8_t> bytes(size, 0);
        std::memcpy(bytes.data(), &value, std::min<size_t>(size, 8));
        transport->write(offset, bytes);
    }
    uint32_t read32(uint64_t offset) { return static_cast<uint32_t>(read(offset, 4)); }
    void write32(uint64_t offset, uint32_t value) { write(offset, value, 4); }

    uint32_t status() { return read32(kStatus); }
    void add_status(uint32_t bits) { write32(kStatus, status() | bits); }
    void set_driver_features(uint64_t features) {
        write32(kDriverFeaturesSel, 0);
        write32(kDriverFeatures, static_cast<uint32_t>(features));
        write32(kDriverFeaturesSel, 1);
        write32(kDriverFeatures, static_cast<uint32_t>(features >> 32));
    }
    // ACKNOWLEDGE, DRIVER, the features, FEATURES_OK, as a driver does.
    void negotiate(uint64_t features = kVersion1 | kEventIdx) {
        write32(kStatus, kAcknowledge);
        add_status(kDriver);
        set_driver_features(features);
        add_status(kFeaturesOk);
    }
    // Lays out queue `index` at `base` (descriptors, then the driver and the
    // device areas 4 KiB apart) and marks it ready.
    void setup_queue(uint32_t index, uint32_t size, uint64_t base) {
        write32(kQueueSel, index);
        write32(kQueueNum, size);
        write32(kQueueDescLow, static_cast<uint32_t>(base));
        write32(kQueueDescHigh, static_cast<uint32_t>(base >> 32));
        write32(kQueueDriverLow, static_cast<uint32_t>(base + 0x1000));
        write32(kQueueDriverHigh, static_cast<uint32_t>((base + 0x1000) >> 32));
        write32(kQueueDeviceLow, static_cast<uint32_t>(base + 0x2000));
        write32(kQueueDeviceHigh, static_cast<uint32_t>((base + 0x2000) >> 32));
        write32(kQueueReady, 1);
    }
    // Negotiated, both queues laid out, DRIVER_OK.
    void bring_up() {
        int activations = device->activations;
        negotiate();
        setup_queue(0, 64, 0x10000);
        setup_queue(1, 8, 0x20000);
        add_status(kDriverOk);
        REQUIRE(device->activations == activations + 1);
    }

    bool interrupted() { return transport->interrupt_event().consume(); }
    bool notified(size_t queue) { return transport->queue_event(queue).consume(); }
    uint64_t metric(const std::string& name) {
        for (const auto& [key, value] : transport->metrics()) {
            if (key == name) {
                return value;
            }
        }
        FAIL("no metric " << name);
        return 0;
    }

    vmm::GuestMemory memory;
    FakeDevice* device;
    std::unique_ptr<MmioTransport> transport;
};

}  // namespace

TEST_CASE("mmio: identification registers", "[mmio]") {
    Mmio m;
    CHECK(m.read32(kMagicValue) == 0x74726976);  // "virt"
    CHECK(m.read32(kVersion) == 2);
    CHECK(m.read32(kDeviceId) == kFakeType);
    CHECK(m.read32(kVendorId) == 0x204d4d56);  // "VMM "
    CHECK(m.status() == 0);
    CHECK(m.read32(kInterruptStatus) == 0);
    CHECK(m.read32(kConfigGeneration) == 0);
    CHECK(m.transport->queue_count() == 2);
    CHECK(m.transport->name() == "fake0");
}

TEST_CASE("mmio: device features are read 32 bits at a time through DeviceFeaturesSel", "[mmio]") {
    Mmio m;
    CHECK(m.read32(kDeviceFeatures) == static_cast<uint32_t>(kOffered));  // sel starts at 0
    m.write32(kDeviceFeaturesSel, 1);
    CHECK(m.read32(kDeviceFeaturesSel) == 0);  // write-only: reads 0
    CHECK(m.read32(kDeviceFeatures) == static_cast<uint32_t>(kOffered >> 32));
    m.write32(kDeviceFeaturesSel, 0);
    CHECK(m.read32(kDeviceFeatures) == static_cast<uint32_t>(kOffered));
    for (uint32_t sel : {2u, 3u, 0x80000000u, 0xffffffffu}) {
        m.write32(kDeviceFeaturesSel, sel);
        CHECK(m.read32(kDeviceFeatures) == 0);
    }
}

TEST_CASE("mmio: driver features, both halves, reach the device at DRIVER_OK", "[mmio]") {
    Mmio m;
    uint64_t features = kVersion1 | kLowFeature | kHighFeature;
    m.negotiate(features);
    CHECK(m.status() == kUpToFeaturesOk);
    CHECK(m.read32(kDriverFeatures) == 0);  // write-only
    m.setup_queue(0, 16, 0x10000);
    m.add_status(kDriverOk);
    REQUIRE(m.device->activations == 1);
    CHECK(m.device->acked == features);
}

TEST_CASE("mmio: a select beyond the two feature words drops the write", "[mmio]") {
    Mmio m;
    m.write32(kStatus, kAcknowledge | kDriver);
    m.set_driver_features(kVersion1);
    m.write32(kDriverFeaturesSel, 2);
    m.write32(kDriverFeatures, 0xffffffff);  // no third word: ignored
    m.write32(kDriverFeaturesSel, 0xffffffff);
    m.write32(kDriverFeatures, 0xffffffff);
    m.add_status(kFeaturesOk);
    CHECK(m.status() == kUpToFeaturesOk);  // still a subset of the offer
    m.add_status(kDriverOk);
    CHECK(m.device->acked == kVersion1);
}

TEST_CASE("mmio: driver features are taken only between DRIVER and FEATURES_OK", "[mmio]") {
    Mmio m;
    SECTION("before DRIVER they are dropped") {
        m.set_driver_features(kVersion1);
        m.write32(kStatus, kAcknowledge);
        m.set_driver_features(kVersion1 | kEventIdx);
        m.add_status(kDriver);
        m.add_status(kFeaturesOk);  // nothing acked, so not even VERSION_1
        CHECK((m.status() & kFeaturesOk) == 0);
    }
    SECTION("after FEATURES_OK they are dropped") {
        m.negotiate(kVersion1);
        m.set_driver_features(kVersion1 | kEventIdx | kLowFeature);
        m.add_status(kDriverOk);
        CHECK(m.device->acked == kVersion1);
    }
}

TEST_CASE("mmio: FEATURES_OK is refused for features the device did not offer", "[mmio]") {
    Mmio m;
    uint64_t bad = GENERATE(as<uint64_t>{},
                            kVersion1 | (1ull << 5),   // a low bit not offered
                            kVersion1 | (1ull << 63),  // a high bit not offered
                            kEventIdx,                 // no VERSION_1: a legacy driver
                            0);
    m.negotiate(bad);
    CHECK(m.status() == (kAcknowledge | kDriver));
    // The driver may try again with features the device accepts.
    m.set_driver_features(kVersion1 | kHighFeature);
    m.add_status(kFeaturesOk);
    CHECK(m.status() == kUpToFeaturesOk);
    m.add_status(kDriverOk);
    CHECK(m.device->activations == 1);
    CHECK(m.device->acked == (kVersion1 | kHighFeature));
}

TEST_CASE("mmio: QueueNumMax and QueueReady follow QueueSel", "[mmio]") {
    Mmio m;
    CHECK(m.read32(kQueueNumMax) == kQueue0Max);  // sel starts at 0
    m.write32(kQueueSel, 1);
    CHECK(m.read32(kQueueSel) == 0);  // write-only: reads 0
    CHECK(m.read32(kQueueNumMax) == kQueue1Max);
    CHECK(m.read32(kQueueReady) == 0);
    m.write32(kQueueReady, 1);
    CHECK(m.read32(kQueueReady) == 1);
    m.write32(kQueueSel, 0);
    CHECK(m.read32(kQueueReady) == 0);  // each queue has its own
    m.write32(kQueueReady, 1);
    m.write32(kQueueReady, 0);
    CHECK(m.read32(kQueueReady) == 0);
    m.write32(kQueueReady, 2);  // only 1 means ready
    CHECK(m.read32(kQueueReady) == 0);
}

TEST_CASE("mmio: write-only queue registers read 0", "[mmio]") {
    Mmio m;
    m.setup_queue(0, 16, 0x10000);
    for (uint64_t offset :
         {kQueueNum, kQueueDescLow, kQueueDescHigh, kQueueDriverLow, kQueueDriverHigh,
          kQueueDeviceLow, kQueueDeviceHigh, kQueueNotify, kInterruptAck, kDriverFeaturesSel}) {
        CAPTURE(offset);
        CHECK(m.read32(offset) == 0);
    }
}

TEST_CASE("mmio: the queue layout registers, low and high halves, reach the device", "[mmio]") {
    Mmio m;
    m.negotiate();
    m.setup_queue(0, 64, 0x10000);
    // Queue 1 above 4 GiB; the high half first, then the low half: each
    // write keeps the other half.
    m.write32(kQueueSel, 1);
    m.write32(kQueueNum, 4);
    m.write32(kQueueDescHigh, 1);
    m.write32(kQueueDescLow, 0x1000);
    m.write32(kQueueDriverHigh, 1);
    m.write32(kQueueDriverLow, 0x2002);
    m.write32(kQueueDeviceLow, 0x3004);
    m.write32(kQueueDeviceHigh, 1);
    m.write32(kQueueReady, 1);
    m.add_status(kDriverOk);

    REQUIRE(m.device->activations == 1);
    REQUIRE(m.device->queues.size() == 2);
    CHECK(m.device->memory == &m.memory);
    const vmm::Queue& q0 = m.device->queues[0];
    CHECK(q0.max_size() == kQueue0Max);
    CHECK(q0.size() == 64);
    CHECK(q0.ready());
    CHECK(q0.desc_table() == GuestAddress(0x10000));
    CHECK(q0.avail_ring() == GuestAddress(0x11000));
    CHECK(q0.used_ring() == GuestAddress(0x12000));
    CHECK(q0.event_idx());  // ring features from the negotiated bits
    CHECK_FALSE(q0.indirect());
    const vmm::Queue& q1 = m.device->queues[1];
    CHECK(q1.max_size() == kQueue1Max);
    CHECK(q1.size() == 4);
    CHECK(q1.desc_table() == GuestAddress(kHighBase + 0x1000));
    CHECK(q1.avail_ring() == GuestAddress(kHighBase + 0x2002));
    CHECK(q1.used_ring() == GuestAddress(kHighBase + 0x3004));
}

TEST_CASE("mmio: a queue the driver left unready is handed over unready", "[mmio]") {
    Mmio m;
    m.negotiate();
    m.setup_queue(1, 8, 0x20000);
    m.add_status(kDriverOk);
    REQUIRE(m.device->activations == 1);
    CHECK_FALSE(m.device->queues[0].ready());
    CHECK(m.device->queues[1].ready());
    CHECK((m.status() & kNeedsReset) == 0);
}

TEST_CASE("mmio: writes for a QueueSel beyond the last queue change nothing", "[mmio]") {
    Mmio m;
    m.negotiate();
    m.setup_queue(0, 32, 0x10000);
    for (uint32_t sel : {2u, 0x10000u, 0xffffffffu}) {
        m.write32(kQueueSel, sel);
        CHECK(m.read32(kQueueNumMax) == 0);  // "not available"
        CHECK(m.read32(kQueueReady) == 0);
        m.write32(kQueueNum, 2);
        m.write32(kQueueDescLow, 0x50000);
        m.write32(kQueueDriverLow, 0x51000);
        m.write32(kQueueDeviceLow, 0x52000);
        m.write32(kQueueReady, 1);
        CHECK(m.read32(kQueueReady) == 0);
    }
    m.add_status(kDriverOk);
    REQUIRE(m.device->activations == 1);
    CHECK(m.device->queues[0].size() == 32);
    CHECK(m.device->queues[0].desc_table() == GuestAddress(0x10000));
    CHECK_FALSE(m.device->queues[1].ready());
    CHECK(m.device->queues[1].size() == kQueue1Max);
}

TEST_CASE("mmio: a queue size above QueueNumMax or not a power of two fails DRIVER_OK", "[mmio]") {
    Mmio m;
    uint32_t size = GENERATE(0u, 3u, 6u, 255u, 512u, 0x10000u, 0x10004u, 0xffffffffu);
    CAPTURE(size);
    m.negotiate();
    m.setup_queue(0, size, 0x10000);
    m.add_status(kDriverOk);
    CHECK(m.device->activations == 0);
    CHECK((m.status() & kNeedsReset) != 0);
    CHECK(m.metric("protocol_violations") == 1);
    CHECK(m.read32(kInterruptStatus) == 2);  // told through a config change
    // Notifications are not passed to a device that never went live.
    m.write32(kQueueNotify, 0);
    m.transport->process_queue_event(0);
    CHECK(m.device->processed.empty());
}

TEST_CASE("mmio: a queue layout outside guest RAM or misaligned fails DRIVER_OK", "[mmio]") {
    Mmio m;
    m.negotiate();
    m.setup_queue(0, 16, 0x10000);
    m.write32(kQueueSel, 0);
    SECTION("descriptor table past the end of RAM") {
        m.write32(kQueueDescLow, kLowRam - 16 * 8);
    }
    SECTION("used ring in the hole above low RAM") {
        m.write32(kQueueDeviceHigh, 0);
        m.write32(kQueueDeviceLow, 0x80000000);
    }
    SECTION("misaligned available ring") {
        m.write32(kQueueDriverLow, 0x11001);
    }
    m.add_status(kDriverOk);
    CHECK(m.device->activations == 0);
    CHECK((m.status() & kNeedsReset) != 0);
}

TEST_CASE("mmio: the device status follows the spec's initialisation order", "[mmio]") {
    Mmio m;
    m.write32(kStatus, kAcknowledge);
    CHECK(m.status() == kAcknowledge);
    m.write32(kStatus, kAcknowledge | kDriver);
    CHECK(m.status() == (kAcknowledge | kDriver));
    m.set_driver_features(kVersion1);
    m.write32(kStatus, kUpToFeaturesOk);
    CHECK(m.status() == kUpToFeaturesOk);
    CHECK(m.device->activations == 0);
    m.write32(kStatus, kLive);
    CHECK(m.status() == kLive);
    CHECK(m.device->activations == 1);
    CHECK(m.device->interrupt != nullptr);
    // DRIVER_OK again does not activate twice.
    m.write32(kStatus, kLive);
    CHECK(m.device->activations == 1);
}

TEST_CASE("mmio: the driver cannot clear status bits except by a reset", "[mmio]") {
    Mmio m;
    m.bring_up();
    m.write32(kStatus, kAcknowledge | kDriver);
    CHECK(m.status() == kLive);
    m.write32(kStatus, kDriverOk);
    CHECK(m.status() == kLive);
    CHECK(m.device->resets == 0);
}

TEST_CASE("mmio: DEVICE_NEEDS_RESET is the device's to set", "[mmio]") {
    Mmio m;
    m.write32(kStatus, kAcknowledge | kNeedsReset);
    CHECK(m.status() == kAcknowledge);
    m.bring_up();
    m.add_status(kNeedsReset);
    CHECK(m.status() == kLive);
}

TEST_CASE("mmio: activation the device refuses sets DEVICE_NEEDS_RESET", "[mmio]") {
    Mmio m;
    m.device->fail_activation = true;
    m.negotiate();
    m.setup_queue(0, 16, 0x10000);
    m.add_status(kDriverOk);
    CHECK(m.device->activations == 0);
    CHECK((m.status() & kNeedsReset) != 0);
    CHECK(m.metric("protocol_violations") == 1);
}

TEST_CASE("mmio: DRIVER_OK runs every queue once, for buffers made available before it", "[mmio]") {
    Mmio m;
    m.negotiate();
    m.setup_queue(0, 16, 0x10000);
    m.setup_queue(1, 8, 0x20000);
    // A notify before DRIVER_OK reaches the I/O thread, which finds the
    // device not live and drops it.
    m.write32(kQueueNotify, 0);
    m.transport->process_queue_event(0);
    CHECK(m.device->processed.empty());
    m.add_status(kDriverOk);
    CHECK(m.notified(0));
    CHECK(m.notified(1));
}

TEST_CASE("mmio: reset by writing 0 to status", "[mmio]") {
    Mmio m;
    m.bring_up();
    m.write32(kDeviceFeaturesSel, 1);
    m.write32(kQueueSel, 1);
    m.device->interrupt->signal_used_queue();
    m.device->interrupt->signal_config_change();
    m.write32(kQueueNotify, 0);
    REQUIRE(m.read32(kInterruptStatus) == 3);
    uint32_t generation = m.read32(kConfigGeneration);

    m.write32(kStatus, 0);
    CHECK(m.device->resets == 1);
    CHECK(m.status() == 0);
    CHECK(m.read32(kInterruptStatus) == 0);
    CHECK(m.metric("driver_resets") == 1);
    // The selectors are back at 0.
    CHECK(m.read32(kDeviceFeatures) == static_cast<uint32_t>(kOffered));
    CHECK(m.read32(kQueueNumMax) == kQueue0Max);
    // Every queue is unready and back at its maximum size, the pending
    // notification is gone.
    for (uint32_t q = 0; q < 2; ++q) {
        m.write32(kQueueSel, q);
        CHECK(m.read32(kQueueReady) == 0);
    }
    CHECK_FALSE(m.notified(0));
    // The generation does not go back: a driver must not see an old value again.
    CHECK(m.read32(kConfigGeneration) == generation);
    // The acked features are forgotten: without new ones FEATURES_OK is refused.
    m.write32(kStatus, kAcknowledge);
    m.add_status(kDriver);
    m.add_status(kFeaturesOk);
    CHECK(m.status() == (kAcknowledge | kDriver));

    // A second life, set up from scratch.
    m.write32(kStatus, 0);
    m.negotiate(kVersion1);
    m.setup_queue(1, 2, 0x30000);
    m.add_status(kDriverOk);
    CHECK(m.device->activations == 2);
    CHECK(m.device->acked == kVersion1);
    CHECK_FALSE(m.device->queues[0].ready());
    CHECK(m.device->queues[0].size() == kQueue0Max);
    CHECK(m.device->queues[1].size() == 2);
    CHECK_FALSE(m.device->queues[1].event_idx());
}

TEST_CASE("mmio: a reset of a device the driver never touched is not counted", "[mmio]") {
    Mmio m;
    m.write32(kStatus, 0);
    CHECK(m.device->resets == 1);
    CHECK(m.metric("driver_resets") == 0);
    m.write32(kStatus, kAcknowledge);
    m.write32(kStatus, 0);
    CHECK(m.metric("driver_resets") == 1);
}

TEST_CASE("mmio: a queue error sets DEVICE_NEEDS_RESET and stops the queues", "[mmio]") {
    Mmio m;
    m.bring_up();
    m.interrupted();
    m.device->queue_error = true;
    m.write32(kQueueNotify, 1);
    m.transport->process_queue_event(1);
    CHECK(m.device->processed == std::vector<size_t>{1});
    CHECK(m.status() == (kLive | kNeedsReset));
    CHECK(m.metric("protocol_violations") == 1);
    // The driver hears of it as a configuration change.
    CHECK(m.read32(kInterruptStatus) == 2);
    CHECK(m.read32(kConfigGeneration) == 1);
    CHECK(m.interrupted());
    // The device is called no more until the driver resets it.
    m.device->queue_error = false;
    m.write32(kQueueNotify, 0);
    m.transport->process_queue_event(0);
    CHECK(m.device->processed == std::vector<size_t>{1});
    // A reset clears it, and a new activation runs the queues again.
    m.write32(kStatus, 0);
    CHECK(m.status() == 0);
    m.bring_up();
    m.transport->process_queue_event(0);
    CHECK(m.device->processed == std::vector<size_t>{1, 0});
}

TEST_CASE("mmio: QueueNotify signals that queue's eventfd; the I/O thread runs it", "[mmio]") {
    Mmio m;
    m.bring_up();
    m.notified(0);
    m.notified(1);
    m.write32(kQueueNotify, 1);
    CHECK(m.notified(1));
    CHECK_FALSE(m.notified(0));
    for (uint32_t index : {2u, 0x10000u, 0xffffffffu}) {
        m.write32(kQueueNotify, index);  // no such queue: ignored
    }
    CHECK_FALSE(m.notified(0));
    CHECK_FALSE(m.notified(1));

    m.transport->process_queue_event(0);
    CHECK(m.device->processed == std::vector<size_t>{0});
    CHECK_FALSE(m.notified(0));
    // A device that stopped with work left is run again on a later turn.
    m.device->more_work = true;
    m.transport->process_queue_event(1);
    CHECK(m.notified(1));
}

TEST_CASE("mmio: a queue the driver did not make ready is not run", "[mmio]") {
    Mmio m;
    m.negotiate();
    m.setup_queue(0, 16, 0x10000);
    m.add_status(kDriverOk);
    m.transport->process_queue_event(1);
    CHECK(m.device->processed.empty());
    m.transport->process_queue_event(0);
    CHECK(m.device->processed == std::vector<size_t>{0});
}

TEST_CASE("mmio: InterruptStatus shows what the device raised until it is acked", "[mmio]") {
    Mmio m;
    m.bring_up();
    m.interrupted();
    m.device->interrupt->signal_used_queue();
    CHECK(m.interrupted());
    CHECK(m.read32(kInterruptStatus) == 1);
    CHECK(m.read32(kConfigGeneration) == 0);
    m.device->interrupt->signal_config_change();
    CHECK(m.interrupted());
    CHECK(m.read32(kInterruptStatus) == 3);
    CHECK(m.read32(kConfigGeneration) == 1);
    m.write32(kInterruptAck, 0);
    CHECK(m.read32(kInterruptStatus) == 3);
    m.write32(kInterruptAck, 1);
    CHECK(m.read32(kInterruptStatus) == 2);
    m.write32(kInterruptAck, 0xfffffffe);
    CHECK(m.read32(kInterruptStatus) == 0);
    // Read-only: a write does not set bits.
    m.write32(kInterruptStatus, 3);
    CHECK(m.read32(kInterruptStatus) == 0);
    CHECK_FALSE(m.interrupted());
}

TEST_CASE("mmio: config space reads and writes are clamped to the device's config", "[mmio]") {
    Mmio m;
    CHECK(m.read(kConfig, 1) == 0x10);
    CHECK(m.read(kConfig + 1, 2) == 0x1211);
    CHECK(m.read(kConfig + 4, 4) == 0x17161514);
    CHECK(m.read(kConfig, 8) == 0x1716151413121110);
    // Past the end: the bytes beyond read 0, the device sees only its own.
    CHECK(m.read(kConfig + 6, 4) == 0x1716);
    CHECK(m.read(kConfig + 8, 4) == 0);
    CHECK(m.read(kConfig + 0xe00, 4) == 0);
    CHECK(m.device->config_reads.back() == FakeDevice::ConfigAccess{6, 2});

    m.write(kConfig + 2, 0xbbaa, 2);
    CHECK(m.device->config_writes.back() == FakeDevice::ConfigAccess{2, 2});
    CHECK(m.read(kConfig, 4) == 0xbbaa1110);
    m.write(kConfig + 7, 0xccddeeff, 4);
    CHECK(m.device->config_writes.back() == FakeDevice::ConfigAccess{7, 1});
    CHECK(m.device->config[7] == 0xff);
    size_t writes = m.device->config_writes.size();
    m.write(kConfig + 8, 0x1234, 2);
    CHECK(m.device->config_writes.size() == writes);
    CHECK_FALSE(m.device->out_of_bounds_config);
}

TEST_CASE("mmio: accesses beyond the 4 KiB window reach nothing", "[mmio]") {
    Mmio m;
    for (uint64_t offset : {MmioTransport::kSize, MmioTransport::kSize - 2, uint64_t(0x2000),
                            uint64_t(1) << 40, ~uint64_t(0) - 3, ~uint64_t(0)}) {
        CAPTURE(offset);
        CHECK(m.read(offset, 4) == 0);
        m.write(offset, 0xffffffff, 4);
    }
    CHECK(m.device->config ==
          std::array<uint8_t, 8>{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17});
    CHECK_FALSE(m.device->out_of_bounds_config);
    CHECK(m.status() == 0);
}

TEST_CASE("mmio: registers answer only aligned 32-bit accesses", "[mmio]") {
    Mmio m;
    SECTION("1, 2 and 8-byte reads of a register read 0") {
        for (size_t size : {1, 2, 8}) {
            CAPTURE(size);
            CHECK(m.read(kMagicValue, size) == 0);
            CHECK(m.read(kVersion, size) == 0);
            CHECK(m.read(kQueueNumMax, size) == 0);
        }
    }
    SECTION("unaligned 4-byte reads read 0") {
        for (uint64_t offset : {1, 2, 3, 0x35, 0x72, 0xfd, 0xfe}) {
            CAPTURE(offset);
            CHECK(m.read(offset, 4) == 0);
        }
    }
    SECTION("an 8-byte read at ConfigGeneration does not spill into config space") {
        CHECK(m.read(kConfigGeneration, 8) == 0);
    }
    SECTION("wrong-size or unaligned writes are dropped") {
        m.write(kStatus, kAcknowledge, 1);
        m.write(kStatus, kAcknowledge, 2);
        m.write(kStatus, kAcknowledge, 8);
        m.write(kStatus + 1, kAcknowledge, 4);
        CHECK(m.status() == 0);
        m.write32(kStatus, kAcknowledge);
        m.write32(kStatus, kAcknowledge | kDriver);
        // An 8-byte write covering QueueDescLow and QueueDescHigh.
        m.write(kQueueDescLow, 0x0000000100010000ull, 8);
        m.write(kQueueNum, 4, 2);
        m.set_driver_features(kVersion1);
        m.add_status(kFeaturesOk);
        m.write32(kQueueReady, 1);
        m.add_status(kDriverOk);
        REQUIRE(m.device->activations == 1);
        CHECK(m.device->queues[0].desc_table() == GuestAddress(0));
        CHECK(m.device->queues[0].size() == kQueue0Max);
    }
}

TEST_CASE("mmio: writes to read-only registers change nothing", "[mmio]") {
    Mmio m;
    m.write32(kStatus, kAcknowledge);
    for (uint64_t offset : {kMagicValue, kVersion, kDeviceId, kVendorId, kDeviceFeatures,
                            kQueueNumMax, kInterruptStatus, kConfigGeneration}) {
        m.write32(offset, 0x5a5a5a5a);
    }
    CHECK(m.read32(kMagicValue) == 0x74726976);
    CHECK(m.read32(kVersion) == 2);
    CHECK(m.read32(kDeviceId) == kFakeType);
    CHECK(m.read32(kVendorId) == 0x204d4d56);
    CHECK(m.read32(kDeviceFeatures) == static_cast<uint32_t>(kOffered));
    CHECK(m.read32(kQueueNumMax) == kQueue0Max);
    CHECK(m.read32(kInterruptStatus) == 0);
    CHECK(m.read32(kConfigGeneration) == 0);
    CHECK(m.status() == kAcknowledge);
}

TEST_CASE("mmio: unknown register offsets read 0 and ignore writes", "[mmio]") {
    Mmio m;
    // Reserved, and the optional registers this device does not offer
    // (shared memory, queue reset).
    for (uint64_t offset : {0x018, 0x028, 0x03c, 0x040, 0x048, 0x054, 0x068, 0x074, 0x0ac, 0x0b0,
                            0x0b4, 0x0b8, 0x0bc, 0x0c0, 0x0f8}) {
        CAPTURE(offset);
        m.write32(offset, 0xffffffff);
        CHECK(m.read32(offset) == 0);
    }
    CHECK(m.status() == 0);
}

TEST_CASE("mmio: the queue layout cannot change once the device is live", "[mmio]") {
    Mmio m;
    m.bring_up();
    vmm::Queue before = m.device->queues[0];
    m.write32(kQueueSel, 0);
    m.write32(kQueueNum, 16);
    m.write32(kQueueDescLow, 0x40000);
    m.write32(kQueueDescHigh, 1);
    m.write32(kQueueDriverLow, 0x41000);
    m.write32(kQueueDriverHigh, 1);
    m.write32(kQueueDeviceLow, 0x42000);
    m.write32(kQueueDeviceHigh, 1);
    m.write32(kQueueReady, 0);
    const vmm::Queue& after = m.device->queues[0];
    CHECK(after.size() == before.size());
    CHECK(after.ready());
    CHECK(m.read32(kQueueReady) == 1);
    CHECK(after.desc_table() == before.desc_table());
    CHECK(after.avail_ring() == before.avail_ring());
    CHECK(after.used_ring() == before.used_ring());
    // QueueSel and QueueNumMax still work (a driver may look).
    m.write32(kQueueSel, 1);
    CHECK(m.read32(kQueueNumMax) == kQueue1Max);
}

TEST_CASE("mmio: metrics are the device's plus the transport's", "[mmio]") {
    Mmio m;
    auto metrics = m.transport->metrics();
    REQUIRE(metrics.size() == 3);
    CHECK(metrics[0] == std::pair<std::string, uint64_t>{"fake_counter", 7});
    CHECK(m.metric("protocol_violations") == 0);
    CHECK(m.metric("driver_resets") == 0);
}

TEST_CASE("mmio: a status step is taken only once the one before it is", "[mmio]") {
    Mmio m;
    SECTION("DRIVER before ACKNOWLEDGE") {
        m.write32(kStatus, kDriver);
        CHECK(m.status() == 0);
    }
    SECTION("FEATURES_OK before DRIVER") {
        m.write32(kStatus, kAcknowledge);
        m.write32(kStatus, kAcknowledge | kFeaturesOk);
        CHECK(m.status() == kAcknowledge);
    }
    SECTION("DRIVER_OK without FEATURES_OK does not stick, and activates nothing") {
        m.write32(kStatus, kAcknowledge | kDriver);
        m.set_driver_features(kVersion1);
        m.setup_queue(0, 16, 0x10000);
        m.write32(kStatus, kAcknowledge | kDriver | kDriverOk);
        CHECK(m.status() == (kAcknowledge | kDriver));
        CHECK(m.device->activations == 0);
        // The driver can still do it right.
        m.add_status(kFeaturesOk);
        m.add_status(kDriverOk);
        CHECK(m.status() == kLive);
        CHECK(m.device->activations == 1);
    }
    SECTION("DRIVER_OK in the same write as a FEATURES_OK that is refused") {
        m.write32(kStatus, kAcknowledge | kDriver);
        m.set_driver_features(kVersion1 | (1ull << 5));
        m.setup_queue(0, 16, 0x10000);
        m.write32(kStatus, kLive);
        CHECK(m.status() == (kAcknowledge | kDriver));
        CHECK(m.device->activations == 0);
    }
    SECTION("every step in one write, in order") {
        m.write32(kStatus, kAcknowledge | kDriver);
        m.set_driver_features(kVersion1);
        m.setup_queue(0, 16, 0x10000);
        m.write32(kStatus, kLive);
        CHECK(m.status() == kLive);
        CHECK(m.device->activations == 1);
    }
}

TEST_CASE("mmio: reserved status bits are dropped", "[mmio]") {
    Mmio m;
    m.write32(kStatus, kAcknowledge | 0x10 | 0x20 | 0x100 | 0x80000000);
    CHECK(m.status() == kAcknowledge);
}

TEST_CASE("mmio: after FAILED only a reset is taken", "[mmio]") {
    Mmio m;
    m.negotiate();
    m.setup_queue(0, 16, 0x10000);
    SECTION("FAILED, then DRIVER_OK") {
        m.add_status(kFailed);
        CHECK(m.status() == (kUpToFeaturesOk | kFailed));
        m.add_status(kDriverOk);
    }
    SECTION("FAILED and DRIVER_OK in one write") {
        m.write32(kStatus, kLive | kFailed);
    }
    CHECK(m.status() == (kUpToFeaturesOk | kFailed));
    CHECK(m.device->activations == 0);
    m.write32(kStatus, 0);
    CHECK(m.status() == 0);
    m.bring_up();
    CHECK(m.status() == kLive);
}

TEST_CASE("mmio: FAILED after DRIVER_OK is shown, the device stays as it is", "[mmio]") {
    Mmio m;
    m.bring_up();
    m.add_status(kFailed);
    CHECK(m.status() == (kLive | kFailed));
    CHECK(m.device->resets == 0);
}

TEST_CASE("mmio: backend events reach a device that is not live yet", "[mmio]") {
    // Devices cope (an input eventfd is consumed, a tap left alone), and the
    // I/O thread's waits need the device to see them.
    Mmio m;
    CHECK(m.transport->backend_interest(0).readable);
    CHECK_FALSE(m.transport->process_backend_event(0));
    CHECK(m.device->backend_calls == 1);
}

TEST_CASE("mmio: DEVICE_NEEDS_RESET is raised once and silences the device until a reset",
          "[mmio]") {
    Mmio m;
    m.bring_up();
    m.interrupted();
    m.device->backend_error = true;
    CHECK_FALSE(m.transport->process_backend_event(0));
    CHECK(m.device->backend_calls == 1);
    CHECK(m.status() == (kLive | kNeedsReset));
    CHECK(m.read32(kConfigGeneration) == 1);
    CHECK(m.read32(kInterruptStatus) == 2);
    CHECK(m.interrupted());
    // No wait on its backends, no call into it, no second interrupt.
    CHECK_FALSE(m.transport->backend_interest(0).readable);
    CHECK_FALSE(m.transport->process_backend_event(0));
    CHECK(m.device->backend_calls == 1);
    m.write32(kQueueNotify, 0);
    m.transport->process_queue_event(0);
    CHECK(m.device->processed.empty());
    CHECK(m.read32(kConfigGeneration) == 1);
    CHECK(m.metric("protocol_violations") == 1);
    CHECK_FALSE(m.interrupted());
    // The driver resets it: waited on and called again.
    m.write32(kStatus, 0);
    m.device->backend_error = false;
    CHECK(m.transport->backend_interest(0).readable);
    CHECK_FALSE(m.transport->process_backend_event(0));
    CHECK(m.device->backend_calls == 2);
}
