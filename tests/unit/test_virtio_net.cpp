// virtio-net over a socket-pair backend: transmit and receive paths,
// mergeable buffers, back-pressure, budgets, hostile chains and a backend
// that fails.
#include <linux/if_tun.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <numeric>

#include "devices/virtio/descriptor_chain.hpp"
#include "devices/virtio/net/net_device.hpp"
#include "multi_queue_driver.hpp"
#include "net_test_backend.hpp"

using namespace vmm;
using test::MultiQueueDriver;
using test::SocketNetBackend;

namespace {

constexpr size_t kHeader = NetBackend::kVnetHeaderSize;

class RecordingInterrupt : public VirtioInterrupt {
  public:
    void signal_used_queue() override { ++used; }
    void signal_config_change() override { ++config; }
    int used = 0;
    int config = 0;
};

uint64_t bit(unsigned n) {
    return 1ull << n;
}

// A frame as the host side sees it: 12-byte header, then `payload` bytes.
std::vector<uint8_t> frame_of(size_t payload, uint8_t seed) {
    std::vector<uint8_t> frame(kHeader + payload, 0);
    for (size_t i = 0; i < payload; ++i) {
        frame[kHeader + i] = uint8_t(seed + i * 7);
    }
    return frame;
}

struct Fixture {
    explicit Fixture(uint64_t features = bit(VIRTIO_F_VERSION_1), unsigned mtu = 1500)
        : driver(2, 256, features) {
        auto backend = std::make_unique<SocketNetBackend>(host, mtu);
        device = std::make_unique<NetDevice>(std::move(backend),
                                             MacAddress::parse("06:00:ac:10:00:02"), "net0");
        device->activate(driver.memory(), features, driver.queues(), interrupt);
    }
    Queue& rx() { return driver.queues()[NetDevice::kRxQueue]; }

    SocketNetBackend::Shared host;
    MultiQueueDriver driver;
    RecordingInterrupt interrupt;
    std::unique_ptr<NetDevice> device;
};

}  // namespace

TEST_CASE("virtio-net offers its features and config") {
    SocketNetBackend::Shared host;
    NetDevice device(std::make_unique<SocketNetBackend>(host, 1500, TUN_F_CSUM | TUN_F_TSO4),
                     MacAddress::parse("06:00:ac:10:00:02"), "net0");
    uint64_t f = device.offered_features();
    CHECK((f & bit(VIRTIO_F_VERSION_1)));
    CHECK((f & bit(VIRTIO_NET_F_MAC)));
    CHECK((f & bit(VIRTIO_NET_F_STATUS)));
    CHECK((f & bit(VIRTIO_NET_F_MRG_RXBUF)));
    CHECK((f & bit(VIRTIO_NET_F_MTU)));
    CHECK((f & bit(VIRTIO_NET_F_CSUM)));
    CHECK((f & bit(VIRTIO_NET_F_HOST_TSO4)));
    CHECK((f & bit(VIRTIO_NET_F_GUEST_CSUM)));
    CHECK((f & bit(VIRTIO_NET_F_GUEST_TSO4)));
    // The backend cannot hand out TSO6 or UFO frames: not offered to the guest.
    CHECK_FALSE((f & bit(VIRTIO_NET_F_GUEST_TSO6)));
    CHECK_FALSE((f & bit(VIRTIO_NET_F_GUEST_UFO)));

    REQUIRE(device.config_size() == 12);
    std::array<uint8_t, 12> config{};
    device.read_config(0, config);
    CHECK(config[0] == 0x06);
    CHECK(config[5] == 0x02);
    CHECK(config[6] == VIRTIO_NET_S_LINK_UP);
    CHECK(config[8] == 1);  // max_virtqueue_pairs
    CHECK((config[10] | config[11] << 8) == 1500);
    // Reads past the end stay inside the config.
    std::array<uint8_t, 8> tail{};
    tail.fill(0xee);
    device.read_config(10, tail);
    CHECK(tail[2] == 0xee);
}

TEST_CASE("virtio-net negotiated guest offloads reach the backend") {
    uint64_t features = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_NET_F_GUEST_CSUM) |
                        bit(VIRTIO_NET_F_GUEST_TSO4) | bit(VIRTIO_NET_F_GUEST_TSO6);
    Fixture f(features);
    CHECK(f.host.offloads_set == (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6));
    f.device->reset();
    CHECK(f.host.offloads_set == 0);

    // TSO without GUEST_CSUM is not a valid combination: no offload at all.
    Fixture g(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_NET_F_GUEST_TSO4));
    CHECK(g.host.offloads_set == 0);
}

TEST_CASE("virtio-net transmits a frame gathered from several buffers") {
    Fixture f;
    auto frame = frame_of(1000, 3);
    std::vector<uint8_t> first(frame.begin(), frame.begin() + 100);
    std::vector<uint8_t> rest(frame.begin() + 100, frame.end());
    uint16_t head = f.driver.add_chain(NetDevice::kTxQueue,
                                       {f.driver.readable(first), f.driver.readable(rest)});
    CHECK_FALSE(f.device->process_queue(NetDevice::kTxQueue));
    CHECK(test::host_receive(f.host) == frame);
    REQUIRE(f.driver.used_idx(NetDevice::kTxQueue) == 1);
    CHECK(f.driver.used_elem(NetDevice::kTxQueue, 0).id == head);
    CHECK(f.driver.used_elem(NetDevice::kTxQueue, 0).len == 0);
    CHECK(f.device->counters().tx_frames == 1);
    CHECK(f.device->counters().tx_bytes == 1000);
    CHECK(f.interrupt.used == 1);
}

TEST_CASE("virtio-net refuses malformed transmit chains") {
    SECTION("a device-writable buffer") {
        Fixture f;
        f.driver.add_chain(NetDevice::kTxQueue,
                           {f.driver.readable(frame_of(20, 0)), f.driver.writable(10)});
        CHECK_THROWS_AS(f.device->process_queue(NetDevice::kTxQueue), QueueError);
    }
    SECTION("shorter than the header") {
        Fixture f;
        f.driver.add_chain(NetDevice::kTxQueue, {f.driver.readable(std::vector<uint8_t>(11))});
        CHECK_THROWS_WITH(f.device->process_queue(NetDevice::kTxQueue),
                          Catch::Contains("less than the 12-byte virtio-net header"));
    }
    SECTION("a descriptor outside guest RAM") {
        Fixture f;
        f.driver.add_chain(NetDevice::kTxQueue, {{MultiQueueDriver::kMemorySize - 4, 64, 0}});
        CHECK_THROWS_AS(f.device->process_queue(NetDevice::kTxQueue), QueueError);
    }
}

TEST_CASE("virtio-net transmit waits when the backend is full and resumes when writable") {
    Fixture f;
    f.host.write_error = EAGAIN;
    f.driver.add_chain(NetDevice::kTxQueue, {f.driver.readable(frame_of(64, 1))});
    f.device->process_queue(NetDevice::kTxQueue);
    CHECK(f.driver.used_idx(NetDevice::kTxQueue) == 0);  // not consumed, not dropped
    CHECK(f.device->backend_interest(0).writable);
    f.host.write_error = 0;
    f.device->process_backend(0);
    CHECK(f.driver.used_idx(NetDevice::kTxQueue) == 1);
    CHECK(test::host_receive(f.host) == frame_of(64, 1));
    CHECK_FALSE(f.device->backend_interest(0).writable);
}

TEST_CASE("virtio-net transmit is bounded per call") {
    Fixture f;
    for (size_t i = 0; i < NetDevice::kTxBudget + 10; ++i) {
        f.driver.add_chain(NetDevice::kTxQueue, {f.driver.readable(frame_of(60, uint8_t(i)))});
    }
    CHECK(f.device->process_queue(NetDevice::kTxQueue));  // more to do
    CHECK(f.driver.used_idx(NetDevice::kTxQueue) == NetDevice::kTxBudget);
    CHECK_FALSE(f.device->process_queue(NetDevice::kTxQueue));
    CHECK(f.driver.used_idx(NetDevice::kTxQueue) == NetDevice::kTxBudget + 10);
}

TEST_CASE("virtio-net receives a frame into one buffer with num_buffers 1") {
    Fixture f;
    auto buffer = f.driver.writable(1526);
    uint16_t head = f.driver.add_chain(NetDevice::kRxQueue, {buffer});
    auto frame = frame_of(600, 9);
    frame[kHeader - 2] = 0xaa;  // garbage where num_buffers goes: the device overwrites it
    test::host_send(f.host, frame);
    CHECK_FALSE(f.device->process_backend(0));
    REQUIRE(f.driver.used_idx(NetDevice::kRxQueue) == 1);
    CHECK(f.driver.used_elem(NetDevice::kRxQueue, 0).id == head);
    CHECK(f.driver.used_elem(NetDevice::kRxQueue, 0).len == frame.size());
    auto got = f.driver.read_bytes(buffer.addr, frame.size());
    CHECK(got[10] == 1);
    CHECK(got[11] == 0);
    CHECK(std::equal(got.begin() + kHeader, got.end(), frame.begin() + kHeader));
    CHECK(f.device->counters().rx_frames == 1);
    CHECK(f.interrupt.used == 1);
}

TEST_CASE("virtio-net keeps frames while the guest has no receive buffers") {
    Fixture f;
    test::host_send(f.host, frame_of(100, 1));
    test::host_send(f.host, frame_of(200, 2));
    f.device->process_backend(0);
    CHECK(f.driver.used_idx(NetDevice::kRxQueue) == 0);
    // Blocked: the I/O thread stops waiting on the tap (no busy loop).
    CHECK_FALSE(f.device->backend_interest(0).readable);

    auto one = f.driver.writable(1526);
    f.driver.add_chain(NetDevice::kRxQueue, {one});
    f.device->process_queue(NetDevice::kRxQueue);
    REQUIRE(f.driver.used_idx(NetDevice::kRxQueue) == 1);
    CHECK(f.driver.used_elem(NetDevice::kRxQueue, 0).len == kHeader + 100);
    CHECK(f.driver.read_bytes(one.addr + kHeader, 1)[0] == 1);
    CHECK_FALSE(f.device->backend_interest(0).readable);  // the second frame waits

    auto two = f.driver.writable(1526);
    f.driver.add_chain(NetDevice::kRxQueue, {two});
    f.device->process_queue(NetDevice::kRxQueue);
    REQUIRE(f.driver.used_idx(NetDevice::kRxQueue) == 2);
    CHECK(f.driver.used_elem(NetDevice::kRxQueue, 1).len == kHeader + 200);
    CHECK(f.driver.read_bytes(two.addr + kHeader, 1)[0] == 2);
    CHECK(f.device->backend_interest(0).readable);
    CHECK(f.device->counters().rx_dropped == 0);
}

TEST_CASE("virtio-net spreads a frame over mergeable buffers") {
    Fixture f(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_NET_F_MRG_RXBUF));
    std::vector<MultiQueueDriver::Desc> buffers;
    for (int i = 0; i < 4; ++i) {
        buffers.push_back(f.driver.writable(1024));
        f.driver.add_chain(NetDevice::kRxQueue, {buffers.back()});
    }
    auto frame = frame_of(3000 - kHeader, 5);
    test::host_send(f.host, frame);
    f.device->process_backend(0);
    REQUIRE(f.driver.used_idx(NetDevice::kRxQueue) == 3);
    CHECK(f.driver.used_elem(NetDevice::kRxQueue, 0).len == 1024);
    CHECK(f.driver.used_elem(NetDevice::kRxQueue, 1).len == 1024);
    CHECK(f.driver.used_elem(NetDevice::kRxQueue, 2).len == 3000 - 2048);
    std::vector<uint8_t> joined;
    for (int i = 0; i < 3; ++i) {
        auto part = f.driver.read_bytes(buffers[i].addr,
                                        f.driver.used_elem(NetDevice::kRxQueue, uint16_t(i)).len);
        joined.insert(joined.end(), part.begin(), part.end());
    }
    CHECK(joined[10] == 3);  // num_buffers
    CHECK(std::equal(joined.begin() + kHeader, joined.end(), frame.begin() + kHeader));
    CHECK(f.rx().next_avail() == 3);  // the fourth buffer stays available
}

TEST_CASE("virtio-net waits for enough mergeable buffers, consuming none meanwhile") {
    Fixture f(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_NET_F_MRG_RXBUF));
    f.driver.add_chain(NetDevice::kRxQueue, {f.driver.writable(1024)});
    f.driver.add_chain(NetDevice::kRxQueue, {f.driver.writable(1024)});
    test::host_send(f.host, frame_of(3000, 1));
    f.device->process_backend(0);
    CHECK(f.driver.used_idx(NetDevice::kRxQueue) == 0);
    CHECK(f.rx().next_avail() == 0);  // handed back
    f.driver.add_chain(NetDevice::kRxQueue, {f.driver.writable(1024)});
    f.driver.add_chain(NetDevice::kRxQueue, {f.driver.writable(1024)});
    f.device->process_queue(NetDevice::kRxQueue);
    CHECK(f.driver.used_idx(NetDevice::kRxQueue) == 3);
}

TEST_CASE("virtio-net drops a frame too big for a non-mergeable buffer, keeping the buffer") {
    Fixture f;
    f.driver.add_chain(NetDevice::kRxQueue, {f.driver.writable(256)});
    test::host_send(f.host, frame_of(1000, 1));
    test::host_send(f.host, frame_of(100, 2));
    f.device->process_backend(0);
    CHECK(f.device->counters().rx_dropped == 1);
    // The small frame that followed used the buffer the big one could not.
    REQUIRE(f.driver.used_idx(NetDevice::kRxQueue) == 1);
    CHECK(f.driver.used_elem(NetDevice::kRxQueue, 0).len == kHeader + 100);
}

TEST_CASE("virtio-net refuses malformed receive chains") {
    SECTION("a device-readable buffer") {
        Fixture f;
        f.driver.add_chain(NetDevice::kRxQueue, {f.driver.readable(std::vector<uint8_t>(64))});
        test::host_send(f.host, frame_of(10, 0));
        CHECK_THROWS_WITH(f.device->process_backend(0), Catch::Contains("device-readable"));
    }
    SECTION("a buffer smaller than the header") {
        Fixture f(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_NET_F_MRG_RXBUF));
        f.driver.add_chain(NetDevice::kRxQueue, {f.driver.writable(8)});
        test::host_send(f.host, frame_of(10, 0));
        CHECK_THROWS_WITH(f.device->process_backend(0), Catch::Contains("less than the 12-byte"));
    }
}

TEST_CASE("virtio-net receive is bounded per call") {
    Fixture f;
    for (size_t i = 0; i < NetDevice::kRxBudget + 6; ++i) {
        f.driver.add_chain(NetDevice::kRxQueue, {f.driver.writable(256)});
        test::host_send(f.host, frame_of(50, uint8_t(i)));
    }
    CHECK(f.device->process_backend(0));
    CHECK(f.driver.used_idx(NetDevice::kRxQueue) == NetDevice::kRxBudget);
    CHECK_FALSE(f.device->process_backend(0));
    CHECK(f.driver.used_idx(NetDevice::kRxQueue) == NetDevice::kRxBudget + 6);
}

TEST_CASE("virtio-net reports link down once when the backend goes away") {
    Fixture f(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_NET_F_STATUS));
    f.host.read_error = EBADFD;
    f.device->process_backend(0);
    CHECK_FALSE(f.device->link_up());
    CHECK(f.interrupt.config == 1);
    std::array<uint8_t, 2> status{};
    f.device->read_config(6, status);
    CHECK(status[0] == 0);
    // No more waiting on a dead backend, and no second report.
    CHECK_FALSE(f.device->backend_interest(0).readable);
    f.device->process_backend(0);
    CHECK(f.interrupt.config == 1);
    // Transmit chains still come back (dropped), so the guest does not stall.
    f.driver.add_chain(NetDevice::kTxQueue, {f.driver.readable(frame_of(60, 0))});
    f.device->process_queue(NetDevice::kTxQueue);
    CHECK(f.driver.used_idx(NetDevice::kTxQueue) == 1);
    CHECK(f.device->counters().tx_dropped == 1);
}

TEST_CASE("virtio-net does nothing before activation or after reset") {
    SocketNetBackend::Shared host;
    NetDevice device(std::make_unique<SocketNetBackend>(host),
                     MacAddress::parse("06:00:ac:10:00:02"), "net0");
    CHECK_FALSE(device.backend_interest(0).readable);
    CHECK_FALSE(device.process_queue(NetDevice::kRxQueue));
    CHECK_FALSE(device.process_backend(0));

    Fixture f;
    f.device->reset();
    test::host_send(f.host, frame_of(10, 0));
    CHECK_FALSE(f.device->process_backend(0));
    CHECK_FALSE(f.device->backend_interest(0).readable);
}

TEST_CASE("virtio-net reads large frames straight into mergeable buffers") {
    Fixture f(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_NET_F_MRG_RXBUF));
    std::vector<MultiQueueDriver::Desc> buffers;
    for (int i = 0; i < 40; ++i) {
        buffers.push_back(f.driver.writable(4096));
        f.driver.add_chain(NetDevice::kRxQueue, {buffers.back()});
    }
    auto first = frame_of(20000, 1);   // staged: the device does not expect a large one yet
    auto second = frame_of(30000, 2);  // read straight into the buffers
    auto third = frame_of(100, 3);     // direct again (the last was large), then staged
    test::host_send(f.host, first);
    test::host_send(f.host, second);
    test::host_send(f.host, third);
    f.device->process_backend(0);

    auto collect = [&](uint16_t from, uint16_t count) {
        std::vector<uint8_t> joined;
        for (uint16_t i = from; i < from + count; ++i) {
            auto used = f.driver.used_elem(NetDevice::kRxQueue, i);
            auto part = f.driver.read_bytes(buffers[used.id].addr, used.len);
            joined.insert(joined.end(), part.begin(), part.end());
        }
        return joined;
    };
    uint16_t n1 = uint16_t((first.size() + 4095) / 4096);
    uint16_t n2 = uint16_t((second.size() + 4095) / 4096);
    REQUIRE(f.driver.used_idx(NetDevice::kRxQueue) == n1 + n2 + 1);
    auto got1 = collect(0, n1), got2 = collect(n1, n2), got3 = collect(n1 + n2, 1);
    CHECK(got1[10] == n1);
    CHECK(got2[10] == n2);
    CHECK(got3[10] == 1);
    CHECK(std::equal(got1.begin() + kHeader, got1.end(), first.begin() + kHeader));
    CHECK(got2.size() == second.size());
    CHECK(std::equal(got2.begin() + kHeader, got2.end(), second.begin() + kHeader));
    CHECK(std::equal(got3.begin() + kHeader, got3.end(), third.begin() + kHeader));
    // Buffers the direct reads did not fill went back to the driver, in order.
    CHECK(f.rx().next_avail() == n1 + n2 + 1);
    CHECK(f.device->counters().rx_frames == 3);
}

TEST_CASE("virtio-net keeps staging when the buffers cannot hold the largest frame") {
    Fixture f(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_NET_F_MRG_RXBUF));
    for (int i = 0; i < 10; ++i) {  // 40 KiB: less than the largest frame
        f.driver.add_chain(NetDevice::kRxQueue, {f.driver.writable(4096)});
    }
    test::host_send(f.host, frame_of(8000, 1));
    test::host_send(f.host, frame_of(8000, 2));
    f.device->process_backend(0);
    CHECK(f.device->counters().rx_frames == 2);
    CHECK(f.driver.used_idx(NetDevice::kRxQueue) == 4);  // 8012 bytes: two buffers each
}

// More buffers than writev takes (1024) make a chain longer than any queue
// (at most 256 here): the queue refuses it before the device sees it.
TEST_CASE("virtio-net: a transmit chain longer than the queue is a protocol violation") {
    Fixture f(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_RING_INDIRECT_DESC));
    // An indirect table of 1100 one-byte buffers after the header: 1101 iovecs.
    std::vector<MultiQueueDriver::Desc> descs{f.driver.readable(std::vector<uint8_t>(12))};
    for (int i = 0; i < 1100; ++i) {
        descs.push_back(f.driver.readable({uint8_t(i)}));
    }
    uint64_t table = f.driver.alloc(16 * descs.size());
    for (size_t i = 0; i < descs.size(); ++i) {
        uint16_t flags = i + 1 < descs.size() ? VIRTQ_DESC_F_NEXT : 0;
        f.driver.memory().write_obj(GuestAddress(table + 16 * i),
                                    VirtqDesc{descs[i].addr, descs[i].len, flags, uint16_t(i + 1)});
    }
    f.driver.add_chain(NetDevice::kTxQueue,
                       {{table, uint32_t(16 * descs.size()), VIRTQ_DESC_F_INDIRECT}});
    CHECK_THROWS_WITH(f.device->process_queue(NetDevice::kTxQueue),
                      Catch::Contains("longer than the queue size"));
    CHECK(f.driver.used_idx(NetDevice::kTxQueue) == 0);
    CHECK(test::host_receive(f.host).empty());
}

TEST_CASE("virtio-net checks again the receive buffers it handed back") {
    Fixture f(bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_NET_F_MRG_RXBUF));
    auto first = f.driver.writable(1024);
    f.driver.add_chain(NetDevice::kRxQueue, {first});
    f.driver.add_chain(NetDevice::kRxQueue, {f.driver.writable(1024)});
    test::host_send(f.host, frame_of(3000, 1));
    f.device->process_backend(0);
    REQUIRE(f.rx().next_avail() == 0);  // too few: both handed back
    // The driver (wrongly) rewrites a buffer the device still may use: the
    // device finds out when it takes the buffer again.
    f.driver.memory().write_obj(GuestAddress(0x10000),
                                VirtqDesc{first.addr, 1024, 0, 0});  // now device-readable
    f.driver.add_chain(NetDevice::kRxQueue, {f.driver.writable(1024)});
    CHECK_THROWS_WITH(f.device->process_queue(NetDevice::kRxQueue),
                      Catch::Contains("device-readable"));
    CHECK(f.driver.used_idx(NetDevice::kRxQueue) == 0);
}

TEST_CASE("virtio-net reset drops the staged frame and the blocked states") {
    Fixture f;
    // A frame staged for want of receive buffers, and a transmit the tap refused.
    test::host_send(f.host, frame_of(100, 1));
    f.device->process_backend(0);
    REQUIRE_FALSE(f.device->backend_interest(0).readable);
    f.host.write_error = EAGAIN;
    f.driver.add_chain(NetDevice::kTxQueue, {f.driver.readable(frame_of(64, 2))});
    f.device->process_queue(NetDevice::kTxQueue);
    REQUIRE(f.device->backend_interest(0).writable);
    f.host.write_error = 0;

    f.device->reset();
    CHECK_FALSE(f.device->backend_interest(0).readable);
    CHECK_FALSE(f.device->backend_interest(0).writable);
    f.device->activate(f.driver.memory(), bit(VIRTIO_F_VERSION_1), f.driver.queues(), f.interrupt);
    // A new activation starts clean: waiting on the tap again, nothing to resend.
    CHECK(f.device->backend_interest(0).readable);
    CHECK_FALSE(f.device->backend_interest(0).writable);
    // The staged frame died with the old activation: the next buffer gets
    // the next frame.
    auto buffer = f.driver.writable(1526);
    f.driver.add_chain(NetDevice::kRxQueue, {buffer});
    test::host_send(f.host, frame_of(200, 3));
    f.device->process_queue(NetDevice::kRxQueue);
    REQUIRE(f.driver.used_idx(NetDevice::kRxQueue) == 1);
    CHECK(f.driver.used_elem(NetDevice::kRxQueue, 0).len == kHeader + 200);
    CHECK(f.driver.read_bytes(buffer.addr + kHeader, 1)[0] == 3);
}

TEST_CASE("virtio-net an activation without both queues is refused, leaving it inactive") {
    SocketNetBackend::Shared host;
    NetDevice device(std::make_unique<SocketNetBackend>(host),
                     MacAddress::parse("06:00:ac:10:00:02"), "net0");
    MultiQueueDriver driver(1, 16, bit(VIRTIO_F_VERSION_1));
    RecordingInterrupt interrupt;
    CHECK_THROWS_WITH(
        device.activate(driver.memory(), bit(VIRTIO_F_VERSION_1), driver.queues(), interrupt),
        Catch::Contains("activated with 1 queues, needs 2"));
    CHECK_FALSE(device.backend_interest(0).readable);
    test::host_send(host, frame_of(10, 0));
    CHECK_FALSE(device.process_backend(0));
    CHECK_FALSE(device.process_queue(NetDevice::kRxQueue));
}
