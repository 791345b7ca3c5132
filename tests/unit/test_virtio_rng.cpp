// virtio-rng through a real queue: exactly the writable bytes are filled with
// random data, at most 64 KiB per chain (even for a chain of almost 4 GiB),
// readable-only chains come back empty, and each call takes at most 64 chains.
#include <catch2/catch.hpp>

#include <algorithm>

#include "devices/virtio/rng/rng_device.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "test_helpers.hpp"
#include "virtqueue_builder.hpp"

using test::Bytes;
using test::VirtqueueBuilder;
using vmm::GuestAddress;
using vmm::RngDevice;

namespace {

constexpr uint64_t kFeatures = (1ull << vmm::VIRTIO_F_VERSION_1) |
                               (1ull << vmm::VIRTIO_F_RING_INDIRECT_DESC) |
                               (1ull << vmm::VIRTIO_F_RING_EVENT_IDX);

struct CountingInterrupt : vmm::VirtioInterrupt {
    void signal_used_queue() override { ++used; }
    void signal_config_change() override { ++config; }
    int used = 0;
    int config = 0;
};

// A device activated on one queue of test memory.
struct Rng {
    explicit Rng(uint16_t size = 16, uint64_t features = kFeatures,
                 uint64_t memory_size = VirtqueueBuilder::kMemorySize)
        : q(size, features, memory_size) {
        device.activate(q.memory(), features, std::span(&q.queue(), 1), interrupt);
    }

    Bytes read(const VirtqueueBuilder::Desc& desc, uint64_t offset = 0, size_t count = 0) {
        return test::read_guest(q.memory(), desc.addr + offset, count ? count : desc.len - offset);
    }
    void fill(const VirtqueueBuilder::Desc& desc, uint8_t value, uint64_t len = 0) {
        q.memory().fill(GuestAddress(desc.addr), len ? len : desc.len, value);
    }

    VirtqueueBuilder q;
    CountingInterrupt interrupt;
    RngDevice device;
};

bool all_equal(const Bytes& bytes, uint8_t value) {
    return std::all_of(bytes.begin(), bytes.end(), [value](uint8_t b) { return b == value; });
}

}  // namespace

TEST_CASE("rng: device type, one queue, version 1 and ring features, no config", "[rng]") {
    RngDevice device;
    CHECK(device.device_type() == 4);
    CHECK(device.queue_max_sizes() == std::vector<uint16_t>{256});
    CHECK(device.offered_features() == kFeatures);
    CHECK(device.config_size() == 0);
    CHECK(device.backend_count() == 0);
}

TEST_CASE("rng: fills exactly the writable bytes, different for each chain", "[rng]") {
    Rng rng;
    auto readable = rng.q.readable(32);
    auto first = rng.q.writable(100);   // followed by a 12-byte gap
    auto second = rng.q.writable(200);  // followed by an 8-byte gap
    rng.fill(readable, 0x11);
    // Zeroes in the buffers, a sentinel in the gaps after them.
    rng.q.memory().fill(GuestAddress(first.addr + 100), 12, 0xcc);
    rng.q.memory().fill(GuestAddress(second.addr + 200), 8, 0xcc);
    rng.q.add_chain({readable, first, second});
    auto other = rng.q.writable(300);
    rng.q.add_chain({other});

    CHECK_FALSE(rng.device.process_queue(0));
    REQUIRE(rng.q.used_idx() == 2);
    CHECK(rng.q.used_elem(0).len == 300);
    CHECK(rng.q.used_elem(1).len == 300);
    CHECK(all_equal(rng.read(readable), 0x11));
    CHECK(all_equal(test::read_guest(rng.q.memory(), first.addr + 100, 12), 0xcc));
    CHECK(all_equal(test::read_guest(rng.q.memory(), second.addr + 200, 8), 0xcc));
    // 300 random bytes are never all zero (2^-2400), nor equal to another 300.
    Bytes filled = rng.read(first);
    Bytes tail = rng.read(second);
    filled.insert(filled.end(), tail.begin(), tail.end());
    CHECK_FALSE(all_equal(filled, 0));
    CHECK_FALSE(all_equal(rng.read(first, 0, 50), 0));
    CHECK_FALSE(all_equal(rng.read(second, 150, 50), 0));
    CHECK(filled != rng.read(other));
    CHECK(rng.interrupt.used == 1);
    CHECK(rng.device.metrics() == vmm::VirtioDevice::Metrics{{"requests", 2}, {"bytes", 600}});
}

TEST_CASE("rng: at most 64 KiB per chain; the rest is left alone", "[rng]") {
    Rng rng;
    auto a = rng.q.writable(40000);
    auto b = rng.q.writable(40000);
    auto c = rng.q.writable(40000);
    rng.q.add_chain({a, b, c});
    CHECK_FALSE(rng.device.process_queue(0));
    REQUIRE(rng.q.used_idx() == 1);
    CHECK(rng.q.used_elem(0).len == RngDevice::kMaxBytesPerChain);
    size_t in_b = RngDevice::kMaxBytesPerChain - 40000;  // 25536 bytes of b
    CHECK_FALSE(all_equal(rng.read(b, in_b - 64, 64), 0));
    CHECK(all_equal(rng.read(b, in_b), 0));
    CHECK(all_equal(rng.read(c), 0));
}

TEST_CASE("rng: a chain of almost 4 GiB gets its first 64 KiB", "[rng]") {
    // 255 indirect descriptors over the same 16 MiB: 2^32 - 16 MiB bytes (the
    // memory is reserved, only what the device writes is touched).
    constexpr uint64_t kMemory = 32 << 20;
    Rng rng(256, kFeatures, kMemory);
    constexpr uint32_t kBuffer = 16 << 20;
    constexpr uint64_t kAt = kMemory - kBuffer;
    std::vector<VirtqueueBuilder::Desc> descs(
        255, VirtqueueBuilder::Desc{kAt, kBuffer, vmm::VIRTQ_DESC_F_WRITE, 0});
    rng.q.add_indirect_chain(descs);
    CHECK_FALSE(rng.device.process_queue(0));
    REQUIRE(rng.q.used_idx() == 1);
    CHECK(rng.q.used_elem(0).len == RngDevice::kMaxBytesPerChain);
    CHECK_FALSE(all_equal(test::read_guest(rng.q.memory(), kAt, 64), 0));
    CHECK(all_equal(test::read_guest(rng.q.memory(), kAt + RngDevice::kMaxBytesPerChain,
                                     kBuffer - RngDevice::kMaxBytesPerChain),
                    0));
}

TEST_CASE("rng: a chain without writable bytes is returned with length 0", "[rng]") {
    Rng rng;
    auto readable = rng.q.readable(64);
    rng.fill(readable, 0x5a);
    rng.q.add_chain({readable});
    CHECK_FALSE(rng.device.process_queue(0));
    REQUIRE(rng.q.used_idx() == 1);
    CHECK(rng.q.used_elem(0).len == 0);
    CHECK(all_equal(rng.read(readable), 0x5a));
}

TEST_CASE("rng: at most 64 chains per call, then it says there is more", "[rng]") {
    Rng rng(128);
    for (int i = 0; i < 100; ++i) {
        rng.q.add_chain({rng.q.writable(8)});
    }
    CHECK(rng.device.process_queue(0));
    CHECK(rng.q.used_idx() == RngDevice::kMaxChainsPerCall);
    CHECK_FALSE(rng.device.process_queue(0));
    CHECK(rng.q.used_idx() == 100);
    CHECK(rng.q.used_elem(99).len == 8);
    CHECK_FALSE(rng.device.process_queue(0));  // nothing left: a spurious call is harmless
    CHECK(rng.q.used_idx() == 100);
}

TEST_CASE("rng: no interrupt when the driver suppresses it", "[rng]") {
    Rng rng(16, 1ull << vmm::VIRTIO_F_VERSION_1);
    rng.q.set_avail_flags(vmm::VIRTQ_AVAIL_F_NO_INTERRUPT);
    rng.q.add_chain({rng.q.writable(16)});
    rng.device.process_queue(0);
    CHECK(rng.q.used_idx() == 1);
    CHECK(rng.interrupt.used == 0);
    rng.q.set_avail_flags(0);
    rng.q.add_chain({rng.q.writable(16)});
    rng.device.process_queue(0);
    CHECK(rng.interrupt.used == 1);
}

TEST_CASE("rng: a broken chain is a queue violation", "[rng]") {
    Rng rng;
    rng.q.publish(200);  // head beyond the queue size
    CHECK_THROWS_AS(rng.device.process_queue(0), vmm::QueueError);
}

TEST_CASE("rng: reset forgets the activation", "[rng]") {
    Rng rng;
    rng.device.reset();
    rng.q.add_chain({rng.q.writable(16)});
    CHECK_FALSE(rng.device.process_queue(0));
    CHECK(rng.q.used_idx() == 0);
    rng.device.activate(rng.q.memory(), kFeatures, std::span(&rng.q.queue(), 1), rng.interrupt);
    CHECK_FALSE(rng.device.process_queue(0));
    CHECK(rng.q.used_idx() == 1);
}

TEST_CASE("rng: an activation without its queue is refused, leaving the device inactive", "[rng]") {
    VirtqueueBuilder q;
    CountingInterrupt interrupt;
    RngDevice device;
    CHECK_THROWS_AS(device.activate(q.memory(), kFeatures, {}, interrupt), vmm::Error);
    q.add_chain({q.writable(16)});
    CHECK_FALSE(device.process_queue(0));
    CHECK(q.used_idx() == 0);
    CHECK_NOTHROW(device.reset());
}

TEST_CASE("rng: each activation uses its own queue, memory and interrupt", "[rng]") {
    Rng first;
    VirtqueueBuilder other;
    CountingInterrupt other_interrupt;
    first.device.reset();
    first.device.activate(other.memory(), kFeatures, std::span(&other.queue(), 1), other_interrupt);
    first.q.add_chain({first.q.writable(16)});
    other.add_chain({other.writable(16)});
    CHECK_FALSE(first.device.process_queue(0));
    CHECK(first.q.used_idx() == 0);
    CHECK(other.used_idx() == 1);
    CHECK(first.interrupt.used == 0);
    CHECK(other_interrupt.used == 1);
}
