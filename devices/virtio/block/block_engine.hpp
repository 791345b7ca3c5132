// How block data moves between guest buffers and the image: synchronously
// on the I/O thread, or through io_uring with many requests in flight.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "devices/virtio/block/disk_image.hpp"

namespace vmm {

struct BlockIo {
    enum class Op { Read, Write, Flush };
    Op op;
    uint64_t offset = 0;
    // Must stay valid until the request completes (the engine keeps a pointer).
    const std::vector<iovec>* iov = nullptr;
};

// The most buffers one read or write may have: what one preadv/pwritev takes
// (UIO_MAXIOV). The device's seg_max keeps requests far below it; either
// engine fails a longer one with -EINVAL rather than hand it to the kernel.
inline constexpr size_t kMaxIoBuffers = 1024;

// Which engine a drive uses; Auto is io_uring where the host has it.
enum class BlockEngineKind { Sync, Uring, Auto };

class BlockEngine {
  public:
    virtual ~BlockEngine() = default;
    virtual const char* name() const = 0;
    // Takes `io` (the sync engine runs it at once; io_uring queues it for the
    // next commit(), or sooner when its submission queue is full); its
    // result comes back from reap() under `token`, always: a request that
    // cannot run comes back failed (-errno), never not at all.
    virtual void submit(uint64_t token, const BlockIo& io) = 0;
    // Hands everything submitted so far to the kernel.
    virtual void commit() {}
    // Finished requests: (token, 0 or -errno).
    virtual std::vector<std::pair<uint64_t, int>> reap() = 0;
    // Readable when reap() has something (-1 for engines that finish at once).
    virtual int event_fd() const { return -1; }
    // Blocks until every submitted request has finished (results stay
    // reapable); returns even when some could not be handed to the kernel.
    virtual void drain() = 0;
};

std::unique_ptr<BlockEngine> make_sync_engine(const DiskImage& image);
// Returns nullptr when the host kernel has no usable io_uring.
std::unique_ptr<BlockEngine> make_uring_engine(const DiskImage& image, unsigned depth);

}  // namespace vmm
