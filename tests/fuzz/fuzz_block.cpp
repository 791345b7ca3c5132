// libFuzzer target: a hostile driver talking to virtio-blk. The input is a
// 16-byte header (queue state) followed by guest RAM; the queue is activated
// on a BlockDevice over a small scratch image (synchronous engine) and
// processed until it is drained or broken. Besides sanitizer reports, it
// aborts when anything but a QueueError leaves the device.
//
// Header (little-endian):
//   u16 queue size, u8 flags (1 INDIRECT_DESC, 2 EVENT_IDX, 4 read-only),
//   u8 rounds of processing, u16 descriptor table, u16 available ring,
//   u16 used ring, u16 next_avail, u16 next_used, u16 unused
#include <fcntl.h>
#include <unistd.h>

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

struct Header {
    uint16_t queue_size;
    uint8_t flags;
    uint8_t rounds;
    uint16_t desc_table;
    uint16_t avail_ring;
    uint16_t used_ring;
    uint16_t next_avail;
    uint16_t next_used;
    uint16_t unused;
};
static_assert(sizeof(Header) == 16);

using fuzz::CountingInterrupt;

// One scratch image for the whole run; each input gets a fresh device on it.
const char* image_path() {
    static char path[] = "/tmp/vmm-fuzz-block-XXXXXX";
    static bool made = false;
    if (!made) {
        int fd = ::mkstemp(path);
        if (fd < 0 || ::ftruncate(fd, kImageSectors * vmm::kSectorSize) < 0) {
            std::abort();
        }
        ::close(fd);
        made = true;
    }
    return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < sizeof(Header)) {
        return 0;
    }
    Header header;
    std::memcpy(&header, data, sizeof(header));
    auto memory = vmm::GuestMemory::create({{GuestAddress(0), kRamSize}});
    size_t ram_bytes = std::min<size_t>(size - sizeof(header), kRamSize);
    memory.write(GuestAddress(0), std::span(data + sizeof(header), ram_bytes));

    bool read_only = header.flags & 4;
    auto image = std::make_unique<vmm::DiskImage>(image_path(), read_only);
    vmm::BlockDevice device(std::move(image), "fuzz", vmm::BlockDevice::Engine::Sync);

    vmm::Queue queue(vmm::BlockDevice::kQueueSize);
    queue.set_size(header.queue_size);
    queue.set_desc_table(GuestAddress(header.desc_table));
    queue.set_avail_ring(GuestAddress(header.avail_ring));
    queue.set_used_ring(GuestAddress(header.used_ring));
    uint64_t features = (1ull << vmm::VIRTIO_F_VERSION_1);
    if (header.flags & 1)
        features |= 1ull << vmm::VIRTIO_F_RING_INDIRECT_DESC;
    if (header.flags & 2)
        features |= 1ull << vmm::VIRTIO_F_RING_EVENT_IDX;
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
    unsigned rounds = 1 + header.rounds % 4;
    for (unsigned round = 0; round < rounds; ++round) {
        try {
            device.process_queue(0);
        } catch (const vmm::QueueError&) {
            break;  // the transport marks the device NEEDS_RESET
        }
    }
    device.reset();
    return 0;
}
