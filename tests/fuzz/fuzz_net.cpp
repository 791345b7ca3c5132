// libFuzzer target: a hostile driver talking to virtio-net, while the host
// side sends frames. The input is a 24-byte header (both queues' state and
// the frames to inject), the frames, then guest RAM. The device runs over a
// socket-pair backend (tests/unit/net_test_backend.hpp); both queues and the
// backend are processed for a few rounds. Besides sanitizer reports, it
// aborts when anything but a QueueError leaves the device.
//
// Header (little-endian):
//   u16 rx size, u16 tx size, u8 flags (1 INDIRECT_DESC, 2 EVENT_IDX,
//   4 MRG_RXBUF, 8 GUEST_CSUM+TSO), u8 rounds, u8 frame count, u8 unused,
//   u16 rx desc, u16 rx avail, u16 rx used, u16 tx desc, u16 tx avail,
//   u16 tx used, u16 next_avail (both queues), u16 unused
// then per frame: u16 length, that many bytes (header included).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "devices/virtio/net/net_device.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "tests/unit/net_test_backend.hpp"

namespace {

using vmm::GuestAddress;

constexpr uint64_t kRamSize = 64 << 10;

struct Header {
    uint16_t rx_size, tx_size;
    uint8_t flags, rounds, frames, unused0;
    uint16_t rx_desc, rx_avail, rx_used;
    uint16_t tx_desc, tx_avail, tx_used;
    uint16_t next_avail, unused1;
};
static_assert(sizeof(Header) == 24);

class NullInterrupt : public vmm::VirtioInterrupt {
  public:
    void signal_used_queue() override {}
    void signal_config_change() override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < sizeof(Header)) {
        return 0;
    }
    Header h;
    std::memcpy(&h, data, sizeof(h));
    size_t at = sizeof(h);

    test::SocketNetBackend::Shared host;
    auto backend = std::make_unique<test::SocketNetBackend>(host);
    // Frames from the host, up to 8, each as the input gives it.
    for (unsigned i = 0; i < h.frames % 9 && at + 2 <= size; ++i) {
        uint16_t length;
        std::memcpy(&length, data + at, 2);
        at += 2;
        length = uint16_t(std::min<size_t>(length, size - at));
        if (length > 0) {
            [[maybe_unused]] ssize_t n = ::write(host.peer, data + at, length);
        }
        at += length;
    }

    auto memory = vmm::GuestMemory::create({{GuestAddress(0), kRamSize}});
    size_t ram_bytes = std::min<size_t>(size - at, kRamSize);
    memory.write(GuestAddress(0), std::span(data + at, ram_bytes));

    uint64_t features = 1ull << vmm::VIRTIO_F_VERSION_1;
    if (h.flags & 1)
        features |= 1ull << vmm::VIRTIO_F_RING_INDIRECT_DESC;
    if (h.flags & 2)
        features |= 1ull << vmm::VIRTIO_F_RING_EVENT_IDX;
    if (h.flags & 4)
        features |= 1ull << vmm::VIRTIO_NET_F_MRG_RXBUF;
    if (h.flags & 8)
        features |= (1ull << vmm::VIRTIO_NET_F_GUEST_CSUM) | (1ull << vmm::VIRTIO_NET_F_GUEST_TSO4);

    std::vector<vmm::Queue> queues;
    const uint16_t sizes[2] = {h.rx_size, h.tx_size};
    const uint16_t layout[2][3] = {{h.rx_desc, h.rx_avail, h.rx_used},
                                   {h.tx_desc, h.tx_avail, h.tx_used}};
    for (int q = 0; q < 2; ++q) {
        vmm::Queue queue(vmm::NetDevice::kQueueSize);
        queue.set_size(sizes[q]);
        queue.set_desc_table(GuestAddress(layout[q][0]));
        queue.set_avail_ring(GuestAddress(layout[q][1]));
        queue.set_used_ring(GuestAddress(layout[q][2]));
        queue.set_features(features);
        queue.set_next_avail(h.next_avail);
        queue.set_ready(true);
        try {
            queue.validate_layout(memory);
        } catch (const vmm::QueueError&) {
            return 0;  // the transport would refuse DRIVER_OK
        }
        queues.push_back(queue);
    }

    vmm::NetDevice device(std::move(backend), vmm::MacAddress::parse("06:00:00:00:00:01"), "fuzz");
    NullInterrupt interrupt;
    device.activate(memory, features, queues, interrupt);
    unsigned rounds = 1 + h.rounds % 4;
    try {
        for (unsigned round = 0; round < rounds; ++round) {
            device.process_queue(vmm::NetDevice::kTxQueue);
            device.process_backend(0);
            device.process_queue(vmm::NetDevice::kRxQueue);
        }
    } catch (const vmm::QueueError&) {
        // The transport marks the device NEEDS_RESET.
    }
    device.reset();
    return 0;
}
