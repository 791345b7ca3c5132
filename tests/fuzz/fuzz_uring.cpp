// libFuzzer target: virtio-blk on the io_uring engine, end to end on a real
// ring over a scratch image. The engine takes no fake completions, so the
// host side is fuzzed for real instead: the image shrinks under the VMM
// (reads past its end come back short and are finished synchronously, or
// fail with EIO), grows back, the host's file size limit (RLIMIT_FSIZE)
// cuts writes short or fails them with EFBIG, and completions are reaped early, late, after
// a drain or across a driver reset, interleaved with the driver republishing
// buffers (heads reused while in flight). Besides sanitizer reports, it
// aborts when anything but a QueueError leaves the device or when a request
// is still in flight after a drain or reset. Without a usable io_uring (some
// sandboxes forbid it) it says so once and fuzzes the synchronous engine.
//
// Input (little-endian): a 16-byte header, `steps` script bytes, guest RAM.
//   u16 queue size, u8 flags (1 INDIRECT_DESC, 2 EVENT_IDX, 4 read-only),
//   u8 steps, u16 descriptor table, u16 available ring, u16 used ring,
//   u16 next_avail, u16 next_used, u16 unused
// Script byte: low 3 bits the call, high 5 bits its argument:
//   0 process_queue  1 wait (up to 100 ms) for completions, then
//   process_backend  2 drain  3 shrink the image to `arg` sectors
//   4 restore the image's size, then limit files to 32 + arg sectors
//     (no limit when arg is 0)  5 reset and activate again
//   6 the driver publishes arg+1 more available entries  7 process_backend
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "devices/virtio/block/block_device.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "fuzz_support.hpp"

namespace {

using vmm::GuestAddress;

constexpr uint64_t kRamSize = 64 << 10;
constexpr uint64_t kImageSectors = 64;
constexpr int kWaitMs = 100;

struct Header {
    uint16_t queue_size;
    uint8_t flags;
    uint8_t steps;
    uint16_t desc_table;
    uint16_t avail_ring;
    uint16_t used_ring;
    uint16_t next_avail;
    uint16_t next_used;
    uint16_t unused;
};
static_assert(sizeof(Header) == 16);

using fuzz::CountingInterrupt;

// RLIMIT_FSIZE for one input: lifted again when the input ends, so that
// libFuzzer can write its corpus. A limit is never below 16.5 KiB; only a
// crash input larger than that, found while a limit is set, would be saved
// cut short.
class FileSizeLimit {
  public:
    FileSizeLimit() {
        // Past the limit a write fails with EFBIG instead of killing us.
        static bool ignored = ::signal(SIGXFSZ, SIG_IGN) != SIG_ERR;
        (void)ignored;
        lift();
    }
    ~FileSizeLimit() { lift(); }
    void set(uint64_t bytes) {
        rlimit limit{};
        if (::getrlimit(RLIMIT_FSIZE, &limit) < 0) {
            std::abort();
        }
        limit.rlim_cur = std::min<rlim_t>(bytes, limit.rlim_max);
        if (::setrlimit(RLIMIT_FSIZE, &limit) < 0) {
            std::abort();
        }
    }
    void lift() { set(RLIM_INFINITY); }
};

vmm::BlockDevice::Engine engine_kind(const char* image_path) {
    static const vmm::BlockDevice::Engine kind = [image_path] {
        try {
            auto image = std::make_unique<vmm::DiskImage>(image_path, false);
            vmm::BlockDevice probe(std::move(image), "probe", vmm::BlockDevice::Engine::Uring);
            return vmm::BlockDevice::Engine::Uring;
        } catch (const vmm::Error& e) {
            std::fprintf(stderr,
                         "fuzz_uring: io_uring is unavailable here (%s); fuzzing virtio-blk "
                         "on the synchronous engine instead\n",
                         e.what());
            return vmm::BlockDevice::Engine::Sync;
        }
    }();
    return kind;
}

void wait_readable(int fd) {
    if (fd < 0) {
        return;
    }
    pollfd pfd{fd, POLLIN, 0};
    (void)::poll(&pfd, 1, kWaitMs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static fuzz::ScratchImage scratch("uring", kImageSectors);
    Header header;
    if (size < sizeof(header)) {
        return -1;
    }
    std::memcpy(&header, data, sizeof(header));
    size_t steps = std::min<size_t>(header.steps, size - sizeof(header));
    const uint8_t* script = data + sizeof(header);
    size_t ram_start = sizeof(header) + steps;
    auto memory = vmm::GuestMemory::create({{GuestAddress(0), kRamSize}});
    size_t ram_bytes = std::min<size_t>(size - ram_start, kRamSize);
    memory.write(GuestAddress(0), std::span(data + ram_start, ram_bytes));

    FileSizeLimit file_size_limit;
    scratch.renew();
    vmm::BlockDevice::Engine kind = engine_kind(scratch.path());
    bool read_only = header.flags & 4;
    auto image = std::make_unique<vmm::DiskImage>(scratch.path(), read_only);
    vmm::BlockDevice device(std::move(image), "fuzz", kind);

    vmm::Queue queue(vmm::BlockDevice::kQueueSize);
    queue.set_size(header.queue_size);
    queue.set_desc_table(GuestAddress(header.desc_table));
    queue.set_avail_ring(GuestAddress(header.avail_ring));
    queue.set_used_ring(GuestAddress(header.used_ring));
    uint64_t features = 1ull << vmm::VIRTIO_F_VERSION_1;
    if (header.flags & 1) {
        features |= 1ull << vmm::VIRTIO_F_RING_INDIRECT_DESC;
    }
    if (header.flags & 2) {
        features |= 1ull << vmm::VIRTIO_F_RING_EVENT_IDX;
    }
    queue.set_features(features);
    queue.set_next_avail(header.next_avail);
    queue.set_next_used(header.next_used);
    queue.set_ready(true);
    try {
        queue.validate_layout(memory);
    } catch (const vmm::QueueError&) {
        return 0;  // the transport would refuse DRIVER_OK
    }

    CountingInterrupt interrupt;
    device.activate(memory, features, std::span(&queue, 1), interrupt);
    // After a QueueError the transport calls the device no more until the
    // driver resets it.
    bool broken = false;
    auto guarded = [&broken](auto&& call) {
        if (broken) {
            return;
        }
        try {
            call();
        } catch (const vmm::QueueError&) {
            broken = true;
        }
    };
    for (size_t i = 0; i < steps; ++i) {
        uint8_t op = script[i] & 7;
        uint8_t arg = script[i] >> 3;
        switch (op) {
            case 0:
                guarded([&] { device.process_queue(0); });
                break;
            case 1:
                if (!broken && device.in_flight() > 0 && device.backend_count() > 0) {
                    wait_readable(device.backend_fd(0));
                }
                guarded([&] { device.process_backend(0); });
                break;
            case 2:
                guarded([&] { device.drain(); });
                if (!broken) {
                    FUZZ_CHECK(device.in_flight() == 0);
                }
                break;
            case 3:
                scratch.resize(arg);
                break;
            case 4:
                file_size_limit.lift();
                scratch.resize(kImageSectors);
                if (arg != 0) {
                    file_size_limit.set((32 + arg) * vmm::kSectorSize);
                }
                break;
            case 5:
                try {
                    device.reset();
                } catch (const vmm::QueueError&) {
                    // Completions of a broken queue are dropped; the data is written.
                }
                FUZZ_CHECK(device.in_flight() == 0);
                broken = false;
                device.activate(memory, features, std::span(&queue, 1), interrupt);
                break;
            case 6: {
                GuestAddress idx(header.avail_ring + vmm::kAvailIdxOffset);
                auto value = memory.read_obj<uint16_t>(idx);
                memory.write_obj(idx, uint16_t(value + arg + 1));
                break;
            }
            case 7:
                guarded([&] { device.process_backend(0); });
                break;
        }
        FUZZ_CHECK(device.in_flight() <= queue.size());
        FUZZ_CHECK(interrupt.config == 0);
    }
    try {
        device.reset();
    } catch (const vmm::QueueError&) {
    }
    FUZZ_CHECK(device.in_flight() == 0);
    return 0;
}
