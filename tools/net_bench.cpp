// net_bench: the VMM's own packet path, without a guest. It plays the
// driver on virtio-net's queues in synthetic guest memory, with a real tap
// (run it inside a network namespace that has TAP up; tools/bench-net does):
//   tx: frames posted on the transmit queue go through NetDevice to the tap;
//       the host stack drops them at once (they are addressed to another
//       host), so the cost measured is the device's and the tap's.
//   rx: a sender thread injects frames into the tap (an AF_PACKET socket
//       with PACKET_VNET_HDR, so 64 KiB frames stay one GSO frame) and
//       NetDevice delivers them into receive buffers (mergeable, 4 KiB).
// Each run is next to the same traffic without the device: writev of the
// same frames straight to the tap, or read(2) from it into one buffer.
//
//   net_bench TAP tx|rx FRAME_BYTES SECONDS [TX_LIMIT_BYTES_PER_S]
// Prints one JSON object per side ("vmm", "direct") on stdout. With a limit
// (tx only), only the device runs, behind a transmit rate limiter of that
// rate (a bucket of a tenth of it refilled every 100 ms), and the driver
// also waits on the limiter's timer, as the VMM's event loop does.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "devices/virtio/net/net_device.hpp"
#include "devices/virtio/net/tap.hpp"
#include "devices/virtio/virtio_spec.hpp"

namespace {

using vmm::GuestAddress;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kQueueSize = 256;
constexpr uint64_t kRxRings = 0x10000, kTxRings = 0x20000;
constexpr uint64_t kData = 0x100000;
constexpr uint32_t kRxBuffer = 4096;
constexpr size_t kHeader = vmm::NetBackend::kVnetHeaderSize;

// virtio_net_hdr (VIRTIO 1.2, 5.1.6); <linux/virtio_net.h> does not compile as C++.
struct VnetHeader {
    uint8_t flags, gso_type;
    uint16_t hdr_len, gso_size, csum_start, csum_offset;
};
constexpr uint8_t kNeedsCsum = 1, kGsoTcpv4 = 1;

struct Result {
    double seconds = 0, cpu_seconds = 0;
    uint64_t frames = 0, bytes = 0;  // bytes: Ethernet frames, without the vnet header
};

double thread_cpu() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return double(t.tv_sec) + double(t.tv_nsec) / 1e9;
}

class Interrupt : public vmm::VirtioInterrupt {
  public:
    void signal_used_queue() override {}
    void signal_config_change() override {}
};

// A vnet header plus an Ethernet/IPv4/TCP (or UDP for small) frame to a
// host that does not exist on the tap's link; GSO for frames over the MTU.
std::vector<uint8_t> make_frame(size_t frame_bytes) {
    std::vector<uint8_t> f(kHeader + frame_bytes, 0);
    bool gso = frame_bytes > 1514;
    VnetHeader h{};
    if (gso) {
        h.flags = kNeedsCsum;
        h.gso_type = kGsoTcpv4;
        h.hdr_len = 14 + 20 + 20;
        h.gso_size = 1448;
        h.csum_start = 14 + 20;
        h.csum_offset = 16;
    }
    std::memcpy(f.data(), &h, sizeof(h));
    uint8_t* e = f.data() + kHeader;
    const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x99}, src[6] = {0x02, 0, 0, 0, 0, 0x01};
    std::memcpy(e, dst, 6);
    std::memcpy(e + 6, src, 6);
    e[12] = 0x08;  // IPv4
    uint8_t* ip = e + 14;
    size_t ip_len = frame_bytes - 14;
    ip[0] = 0x45;
    ip[2] = uint8_t(ip_len >> 8);
    ip[3] = uint8_t(ip_len);
    ip[8] = 64;
    ip[9] = gso ? 6 : 17;
    const uint8_t from[4] = {10, 0, 2, 15}, to[4] = {10, 0, 2, 99};
    std::memcpy(ip + 12, from, 4);
    std::memcpy(ip + 16, to, 4);
    if (gso) {
        ip[20 + 12] = 5 << 4;  // TCP data offset
    } else {
        size_t udp_len = ip_len - 20;
        ip[20 + 4] = uint8_t(udp_len >> 8);
        ip[20 + 5] = uint8_t(udp_len);
    }
    return f;
}

void put_desc(const vmm::GuestMemory& m, uint64_t rings, uint16_t i, uint64_t addr, uint32_t len,
              uint16_t flags) {
    m.write_obj(GuestAddress(rings + 16ull * i), vmm::VirtqDesc{addr, len, flags, 0});
}

struct Driver {
    vmm::GuestMemory memory;
    std::vector<vmm::Queue> queues;
    uint16_t avail[2] = {0, 0};
    uint16_t used_seen[2] = {0, 0};

    Driver()
        : memory(vmm::GuestMemory::create({{GuestAddress(0), kData + kQueueSize * 65600ull}})) {
        for (uint64_t rings : {kRxRings, kTxRings}) {
            vmm::Queue q(kQueueSize);
            q.set_size(kQueueSize);
            q.set_desc_table(GuestAddress(rings));
            q.set_avail_ring(GuestAddress(rings + 0x1000));
            q.set_used_ring(GuestAddress(rings + 0x2000));
            q.set_features(1ull << vmm::VIRTIO_F_VERSION_1);
            q.set_ready(true);
            q.validate_layout(memory);
            queues.push_back(q);
        }
    }
    static uint64_t rings(int q) { return q == 0 ? kRxRings : kTxRings; }
    void publish(int q, uint16_t head) {
        memory.write_obj(GuestAddress(rings(q) + 0x1000 + 4 + 2ull * (avail[q] % kQueueSize)),
                         head);
        ++avail[q];
        memory.write_obj(GuestAddress(rings(q) + 0x1000 + 2), avail[q]);
    }
    // Calls fn(head, len) for each newly used element of queue q.
    template <typename F>
    void reap(int q, F fn) {
        uint16_t idx = memory.read_obj<uint16_t>(GuestAddress(rings(q) + 0x2000 + 2));
        for (; used_seen[q] != idx; ++used_seen[q]) {
            auto e = memory.read_obj<vmm::VirtqUsedElem>(
                GuestAddress(rings(q) + 0x2000 + 4 + 8ull * (used_seen[q] % kQueueSize)));
            fn(uint16_t(e.id), e.len);
        }
    }
};

uint64_t features() {
    return (1ull << vmm::VIRTIO_F_VERSION_1) | (1ull << vmm::VIRTIO_NET_F_MRG_RXBUF) |
           (1ull << vmm::VIRTIO_NET_F_CSUM) | (1ull << vmm::VIRTIO_NET_F_HOST_TSO4) |
           (1ull << vmm::VIRTIO_NET_F_GUEST_CSUM) | (1ull << vmm::VIRTIO_NET_F_GUEST_TSO4);
}

Result tx_vmm(const std::string& tap_name, size_t frame_bytes, double seconds, uint64_t limit = 0) {
    Driver d;
    vmm::RateLimiterConfig tx_limit;
    if (limit > 0) {
        tx_limit.bandwidth = {limit / 10, 0, 100};
    }
    vmm::NetDevice device(vmm::Tap::open(tap_name), vmm::MacAddress::parse("02:00:00:00:00:01"),
                          "bench", std::nullopt, {}, tx_limit);
    Interrupt irq;
    device.activate(d.memory, features(), d.queues, irq);
    auto frame = make_frame(frame_bytes);
    for (uint16_t i = 0; i < kQueueSize; ++i) {
        uint64_t addr = kData + i * 65600ull;
        d.memory.write(GuestAddress(addr), std::span<const uint8_t>(frame));
        put_desc(d.memory, kTxRings, i, addr, uint32_t(frame.size()), 0);
        d.publish(1, i);
    }
    Result r;
    double cpu0 = thread_cpu();
    auto start = Clock::now();
    auto end =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    while (Clock::now() < end) {
        device.process_queue(vmm::NetDevice::kTxQueue);
        if (device.backend_interest(0).writable) {
            pollfd p{device.backend_fd(0), POLLOUT, 0};
            ::poll(&p, 1, 10);
            device.process_backend(0);
        }
        constexpr size_t kLimiter = vmm::NetDevice::kTxLimiterBackend;
        if (device.backend_interest(kLimiter).readable) {
            pollfd p{device.backend_fd(kLimiter), POLLIN, 0};
            ::poll(&p, 1, 100);
            device.process_backend(kLimiter);
        }
        d.reap(1, [&](uint16_t head, uint32_t) { d.publish(1, head); });
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    r.cpu_seconds = thread_cpu() - cpu0;
    r.frames = device.counters().tx_frames;
    r.bytes = device.counters().tx_bytes;
    return r;
}

Result tx_direct(const std::string& tap_name, size_t frame_bytes, double seconds) {
    auto tap = vmm::Tap::open(tap_name);
    auto frame = make_frame(frame_bytes);
    iovec iov{frame.data(), frame.size()};
    Result r;
    double cpu0 = thread_cpu();
    auto start = Clock::now();
    auto end =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    while (Clock::now() < end) {
        for (int i = 0; i < 64; ++i) {
            if (tap->write_frame(std::span(&iov, 1)) > 0) {
                ++r.frames;
                r.bytes += frame_bytes;
            }
        }
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    r.cpu_seconds = thread_cpu() - cpu0;
    return r;
}

// Injects frames into the tap from the host side until `stop`.
void sender(const std::string& tap_name, size_t frame_bytes, std::atomic<bool>& stop) {
    int s = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    int on = 1;
    ::setsockopt(s, SOL_PACKET, PACKET_VNET_HDR, &on, sizeof(on));
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_ifindex = int(if_nametoindex(tap_name.c_str()));
    ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    auto frame = make_frame(frame_bytes);
    // PACKET_VNET_HDR takes the 10-byte virtio_net_hdr, then the frame.
    std::vector<uint8_t> packet(frame.begin(), frame.begin() + 10);
    packet.insert(packet.end(), frame.begin() + kHeader, frame.end());
    while (!stop.load(std::memory_order_relaxed)) {
        if (::send(s, packet.data(), packet.size(), 0) < 0) {
            std::this_thread::yield();  // the tap's queue is full: the reader is behind
        }
    }
    ::close(s);
}

template <typename Reader>
Result rx_run(const std::string& tap_name, size_t frame_bytes, double seconds, int fd,
              Reader read_some) {
    std::atomic<bool> stop{false};
    std::thread thread(sender, tap_name, frame_bytes, std::ref(stop));
    Result r;
    double cpu0 = thread_cpu();
    auto start = Clock::now();
    auto end =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    while (Clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        ::poll(&p, 1, 10);
        read_some(r);
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    r.cpu_seconds = thread_cpu() - cpu0;
    stop = true;
    thread.join();
    return r;
}

Result rx_vmm(const std::string& tap_name, size_t frame_bytes, double seconds) {
    Driver d;
    vmm::NetDevice device(vmm::Tap::open(tap_name), vmm::MacAddress::parse("02:00:00:00:00:01"),
                          "bench");
    Interrupt irq;
    device.activate(d.memory, features(), d.queues, irq);
    for (uint16_t i = 0; i < kQueueSize; ++i) {
        put_desc(d.memory, kRxRings, i, kData + i * uint64_t(kRxBuffer), kRxBuffer,
                 vmm::VIRTQ_DESC_F_WRITE);
        d.publish(0, i);
    }
    Result r = rx_run(tap_name, frame_bytes, seconds, device.backend_fd(0), [&](Result&) {
        // Like the I/O thread: the tap is readable, or buffers came back.
        device.process_backend(0);
        bool returned = false;
        d.reap(0, [&](uint16_t head, uint32_t) {
            d.publish(0, head);
            returned = true;
        });
        if (returned) {
            device.process_queue(vmm::NetDevice::kRxQueue);
        }
    });
    r.frames = device.counters().rx_frames;
    r.bytes = device.counters().rx_bytes;
    return r;
}

Result rx_direct(const std::string& tap_name, size_t frame_bytes, double seconds) {
    auto tap = vmm::Tap::open(tap_name);
    tap->set_offloads(TUN_F_CSUM | TUN_F_TSO4);
    std::vector<uint8_t> buffer(vmm::NetDevice::kMaxFrame);
    return rx_run(tap_name, frame_bytes, seconds, tap->fd(), [&](Result& r) {
        for (int i = 0; i < 64; ++i) {
            iovec iov{buffer.data(), buffer.size()};
            ssize_t n = tap->read_frame(std::span(&iov, 1));
            if (n <= ssize_t(kHeader)) {
                break;
            }
            ++r.frames;
            r.bytes += size_t(n) - kHeader;
        }
    });
}

void print(const char* side, const char* dir, size_t frame_bytes, const Result& r) {
    double gbit = r.bytes * 8 / r.seconds / 1e9;
    std::printf(
        "{\"side\":\"%s\",\"dir\":\"%s\",\"frame\":%zu,\"packets_per_s\":%.0f,"
        "\"gbit_per_s\":%.3f,\"cpu_s_per_gbit\":%.4f}\n",
        side, dir, frame_bytes, r.frames / r.seconds, gbit,
        gbit > 0 ? r.cpu_seconds / (gbit * r.seconds) : 0.0);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5 && !(argc == 6 && std::string(argv[2]) == "tx")) {
        std::fprintf(stderr,
                     "usage: net_bench TAP tx|rx FRAME_BYTES SECONDS [TX_LIMIT_BYTES_PER_S]\n");
        return 2;
    }
    std::string tap = argv[1], dir = argv[2];
    size_t frame = std::stoul(argv[3]);
    double seconds = std::stod(argv[4]);
    if (frame < 60 || frame > 65536 - kHeader || (dir != "tx" && dir != "rx")) {
        std::fprintf(stderr, "net_bench: frame 60..65524 bytes, direction tx or rx\n");
        return 2;
    }
    try {
        if (argc == 6) {
            print("vmm_limited", "tx", frame, tx_vmm(tap, frame, seconds, std::stoull(argv[5])));
        } else if (dir == "tx") {
            print("vmm", "tx", frame, tx_vmm(tap, frame, seconds));
            print("direct", "tx", frame, tx_direct(tap, frame, seconds));
        } else {
            print("vmm", "rx", frame, rx_vmm(tap, frame, seconds));
            print("direct", "rx", frame, rx_direct(tap, frame, seconds));
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "net_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
