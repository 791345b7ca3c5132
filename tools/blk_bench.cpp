// blk_bench: the VMM's own block I/O path, without a guest. It plays the
// driver on a virtqueue in synthetic guest memory, keeps `depth` requests in
// flight through BlockDevice (sync or io_uring engine) and reports MB/s and
// requests/s next to the same I/O issued directly on the host file (pread /
// pwrite for sync, raw io_uring at the same depth for uring). Both sides go
// through the page cache, so the ratio is the cost of the VMM's path; a third
// run ("host_direct") opens the file O_DIRECT where the filesystem allows,
// as the device's own limit.
//
//   blk_bench IMAGE ENGINE(sync|uring) OP(read|write) PATTERN(seq|rand) BLOCK_BYTES SECONDS
//             [LIMIT_BYTES_PER_S]
// Prints one JSON object per run on stdout. With a limit, only the device
// runs, behind a bandwidth rate limiter of that rate (a bucket of a tenth of
// it refilled every 100 ms, as Firecracker's users configure them), and the
// driver also waits on the limiter's timer, as the VMM's event loop does.
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "devices/virtio/block/block_device.hpp"
#include "devices/virtio/virtio_spec.hpp"

namespace {

using vmm::GuestAddress;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kQueueSize = 256;
constexpr unsigned kDepth = 32;
constexpr uint64_t kDesc = 0x1000, kAvail = 0x3000, kUsed = 0x4000, kHeaders = 0x8000;
constexpr uint64_t kData = 0x100000;

struct Options {
    std::string image, engine, op, pattern;
    uint64_t block = 4096;
    double seconds = 2;
    uint64_t limit = 0;  // bytes per second; 0: no rate limiter
};

class Interrupt : public vmm::VirtioInterrupt {
  public:
    void signal_used_queue() override {}
    void signal_config_change() override {}
};

// Offsets in the image for request `n`.
class OffsetSource {
  public:
    OffsetSource(const Options& o, uint64_t image_bytes)
        : sequential_(o.pattern == "seq"), block_(o.block), blocks_(image_bytes / o.block) {}
    uint64_t next() {
        uint64_t index = sequential_ ? counter_++ % blocks_ : rng_() % blocks_;
        return index * block_;
    }

  private:
    bool sequential_;
    uint64_t block_, blocks_, counter_ = 0;
    std::mt19937_64 rng_{42};
};

struct Result {
    double seconds = 0;
    uint64_t requests = 0;
    uint64_t bytes = 0;
};

void put_desc(const vmm::GuestMemory& m, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
              uint16_t next) {
    vmm::VirtqDesc d{addr, len, flags, next};
    m.write_obj(GuestAddress(kDesc + 16ull * i), d);
}

Result run_vmm(const Options& o) {
    auto memory = vmm::GuestMemory::create({{GuestAddress(0), kData + kDepth * o.block}});
    auto image = std::make_unique<vmm::DiskImage>(o.image, false);
    uint64_t image_bytes = image->sectors() * vmm::kSectorSize;
    vmm::RateLimiterConfig limit;
    if (o.limit > 0) {
        limit.bandwidth = {o.limit / 10, 0, 100};
    }
    vmm::BlockDevice device(
        std::move(image), "bench",
        o.engine == "sync" ? vmm::BlockDevice::Engine::Sync : vmm::BlockDevice::Engine::Uring,
        limit);
    vmm::Queue queue(kQueueSize);
    queue.set_size(kQueueSize);
    queue.set_desc_table(GuestAddress(kDesc));
    queue.set_avail_ring(GuestAddress(kAvail));
    queue.set_used_ring(GuestAddress(kUsed));
    uint64_t features = 1ull << vmm::VIRTIO_F_VERSION_1;
    queue.set_features(features);
    queue.set_ready(true);
    queue.validate_layout(memory);
    Interrupt interrupt;
    device.activate(memory, features, std::span(&queue, 1), interrupt);

    bool write = o.op == "write";
    OffsetSource offsets(o, image_bytes);
    uint16_t avail_idx = 0, used_seen = 0;
    // Request slot s uses descriptors 3s..3s+2: header, data, status.
    auto post = [&](unsigned slot) {
        uint64_t header = kHeaders + slot * 32;
        struct {
            uint32_t type, reserved;
            uint64_t sector;
        } h{write ? 1u : 0u, 0, offsets.next() / vmm::kSectorSize};
        memory.write_obj(GuestAddress(header), h);
        uint16_t d = static_cast<uint16_t>(slot * 3);
        put_desc(memory, d, header, 16, vmm::VIRTQ_DESC_F_NEXT, d + 1);
        put_desc(memory, d + 1, kData + slot * o.block, static_cast<uint32_t>(o.block),
                 vmm::VIRTQ_DESC_F_NEXT | (write ? 0 : vmm::VIRTQ_DESC_F_WRITE), d + 2);
        put_desc(memory, d + 2, header + 16, 1, vmm::VIRTQ_DESC_F_WRITE, 0);
        memory.write_obj(GuestAddress(kAvail + 4 + 2ull * (avail_idx % kQueueSize)), d);
        ++avail_idx;
        memory.write_obj(GuestAddress(kAvail + 2), avail_idx);
    };
    for (unsigned s = 0; s < kDepth; ++s) {
        post(s);
    }
    Result r;
    auto start = Clock::now();
    auto end = start + std::chrono::duration<double>(o.seconds);
    while (Clock::now() < end) {
        device.process_queue(0);
        // Wait for what the device waits on: completions still in flight
        // (page-cache hits complete inside the submit call and were handed
        // back already) and a throttling limiter's timer.
        std::vector<pollfd> waits;
        std::vector<size_t> backends;
        for (size_t b = 0; b < device.backend_count(); ++b) {
            bool limiter = b + 1 == device.backend_count();  // the last one (block_device.hpp)
            bool wanted = limiter ? device.backend_interest(b).readable : device.in_flight() > 0;
            if (wanted) {
                waits.push_back({device.backend_fd(b), POLLIN, 0});
                backends.push_back(b);
            }
        }
        if (!waits.empty() && ::poll(waits.data(), waits.size(), 100) > 0) {
            for (size_t i = 0; i < waits.size(); ++i) {
                if (waits[i].revents != 0) {
                    device.process_backend(backends[i]);
                }
            }
        }
        uint16_t used_idx = memory.read_obj<uint16_t>(GuestAddress(kUsed + 2));
        for (; used_seen != used_idx; ++used_seen) {
            uint32_t id = memory.read_obj<uint32_t>(
                GuestAddress(kUsed + 4 + 8ull * (used_seen % kQueueSize)));
            ++r.requests;
            r.bytes += o.block;
            post(id / 3);
        }
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    device.reset();
    return r;
}

// O_DIRECT needs aligned buffers; 4 KiB covers every logical block size.
struct AlignedBuffer {
    explicit AlignedBuffer(size_t bytes) {
        if (::posix_memalign(&data, 4096, bytes) != 0)
            throw std::runtime_error("posix_memalign failed");
        std::memset(data, 0x5a, bytes);
    }
    ~AlignedBuffer() { std::free(data); }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    void* data = nullptr;
};

// Returns nothing when `direct` is asked for and the filesystem refuses O_DIRECT.
std::optional<Result> run_host(const Options& o, bool direct) {
    int fd = ::open(o.image.c_str(), O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));
    if (fd < 0 && direct && errno == EINVAL)
        return std::nullopt;
    if (fd < 0)
        throw std::runtime_error(std::string("open: ") + std::strerror(errno));
    uint64_t image_bytes = uint64_t(::lseek(fd, 0, SEEK_END));
    OffsetSource offsets(o, image_bytes);
    AlignedBuffer aligned(kDepth * o.block);
    std::span<uint8_t> buffers(static_cast<uint8_t*>(aligned.data), kDepth * o.block);
    bool write = o.op == "write";
    Result r;
    auto start = Clock::now();
    auto end = start + std::chrono::duration<double>(o.seconds);
    if (o.engine == "sync") {
        while (Clock::now() < end) {
            // Cycle through the same buffers the VMM side uses, for the same cache footprint.
            uint8_t* buffer = buffers.data() + (r.requests % kDepth) * o.block;
            ssize_t n = write ? ::pwrite(fd, buffer, o.block, off_t(offsets.next()))
                              : ::pread(fd, buffer, o.block, off_t(offsets.next()));
            if (n != ssize_t(o.block))
                break;
            ++r.requests;
            r.bytes += o.block;
        }
    } else {
        io_uring ring;
        io_uring_queue_init(kDepth * 2, &ring, 0);
        auto submit = [&](unsigned slot) {
            io_uring_sqe* sqe = io_uring_get_sqe(&ring);
            uint8_t* buffer = buffers.data() + slot * o.block;
            if (write) {
                io_uring_prep_write(sqe, fd, buffer, unsigned(o.block), offsets.next());
            } else {
                io_uring_prep_read(sqe, fd, buffer, unsigned(o.block), offsets.next());
            }
            io_uring_sqe_set_data64(sqe, slot);
        };
        for (unsigned s = 0; s < kDepth; ++s)
            submit(s);
        io_uring_submit(&ring);
        while (Clock::now() < end) {
            io_uring_cqe* cqe;
            if (io_uring_wait_cqe(&ring, &cqe) < 0)
                break;
            unsigned slot = unsigned(io_uring_cqe_get_data64(cqe));
            io_uring_cqe_seen(&ring, cqe);
            ++r.requests;
            r.bytes += o.block;
            submit(slot);
            io_uring_submit(&ring);
        }
        io_uring_queue_exit(&ring);
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    ::close(fd);
    return r;
}

void print(const char* side, const Options& o, const Result& r) {
    std::printf(
        "{\"side\":\"%s\",\"engine\":\"%s\",\"op\":\"%s\",\"pattern\":\"%s\",\"block\":%lu,"
        "\"requests_per_s\":%.1f,\"mb_per_s\":%.1f}\n",
        side, o.engine.c_str(), o.op.c_str(), o.pattern.c_str(), (unsigned long)o.block,
        r.requests / r.seconds, r.bytes / r.seconds / 1e6);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 7 && argc != 8) {
        std::fprintf(stderr,
                     "usage: blk_bench IMAGE sync|uring read|write seq|rand BLOCK SECONDS "
                     "[LIMIT_BYTES_PER_S]\n");
        return 2;
    }
    Options o{argv[1], argv[2], argv[3], argv[4], std::stoull(argv[5]), std::stod(argv[6])};
    try {
        if (argc == 8) {
            o.limit = std::stoull(argv[7]);
            print("vmm_limited", o, run_vmm(o));
            return 0;
        }
        print("vmm", o, run_vmm(o));
        print("host", o, *run_host(o, false));
        if (auto direct = run_host(o, true))
            print("host_direct", o, *direct);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "blk_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
