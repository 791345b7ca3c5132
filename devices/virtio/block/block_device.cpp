#include "devices/virtio/block/block_device.hpp"

#include <cstring>

#include "devices/virtio/virtio_spec.hpp"
#include "vmm/base/logger.hpp"

namespace vmm {

namespace {

constexpr int kBlkFSegMax = 2;
constexpr int kBlkFRo = 5;
constexpr int kBlkFBlkSize = 6;
constexpr int kBlkFFlush = 9;
constexpr int kBlkFDiscard = 13;
constexpr int kBlkFWriteZeroes = 14;

// struct virtio_blk_config, little-endian like the host.
struct __attribute__((packed)) BlkConfig {
    uint64_t capacity;
    uint32_t size_max;
    uint32_t seg_max;
    uint16_t cylinders;
    uint8_t heads;
    uint8_t sectors;
    uint32_t blk_size;
    uint8_t physical_block_exp;
    uint8_t alignment_offset;
    uint16_t min_io_size;
    uint32_t opt_io_size;
    uint8_t writeback;
    uint8_t unused0;
    uint16_t num_queues;
    uint32_t max_discard_sectors;
    uint32_t max_discard_seg;
    uint32_t discard_sector_alignment;
    uint32_t max_write_zeroes_sectors;
    uint32_t max_write_zeroes_seg;
    uint8_t write_zeroes_may_unmap;
    uint8_t unused1[3];
};
static_assert(sizeof(BlkConfig) == 60);

}  // namespace

BlockDevice::BlockDevice(std::unique_ptr<DiskImage> image, std::string id, Engine engine,
                         const RateLimiterConfig& limit)
    : image_(std::move(image)), id_(std::move(id)), limiter_(limit), slots_(kQueueSize) {
    if (engine != Engine::Sync) {
        engine_ = make_uring_engine(*image_, kQueueSize);
        if (!engine_ && engine == Engine::Uring) {
            throw Error(
                fmt::format("disk image '{}': io=uring requested but this host's kernel "
                            "has no usable io_uring",
                            image_->path()));
        }
    }
    if (!engine_) {
        engine_ = make_sync_engine(*image_);
    }
}

BlockDevice::~BlockDevice() {
    // Nothing the guest was told is written may be lost: finish what is in
    // flight (the guest memory it points at outlives the devices).
    try {
        drain();
    } catch (const Error& e) {
        // The guest broke its queue meanwhile; the data is written all the same.
    }
}

uint64_t BlockDevice::offered_features() const {
    uint64_t features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_RING_INDIRECT_DESC) |
                        (1ull << VIRTIO_F_RING_EVENT_IDX) | (1ull << kBlkFSegMax) |
                        (1ull << kBlkFBlkSize) | (1ull << kBlkFFlush);
    if (image_->read_only()) {
        features |= 1ull << kBlkFRo;
    } else {
        features |= (1ull << kBlkFDiscard) | (1ull << kBlkFWriteZeroes);
    }
    return features;
}

size_t BlockDevice::config_size() const {
    return sizeof(BlkConfig);
}

void BlockDevice::read_config(uint64_t offset, std::span<uint8_t> data) const {
    BlkConfig config{};
    config.capacity = image_->sectors();
    config.seg_max = kSegMax;
    config.blk_size = kSectorSize;
    config.max_discard_sectors = UINT32_MAX;
    config.max_discard_seg = kMaxDiscardSegments;
    config.discard_sector_alignment = 1;
    config.max_write_zeroes_sectors = UINT32_MAX;
    config.max_write_zeroes_seg = kMaxDiscardSegments;
    config.write_zeroes_may_unmap = 0;
    copy_config(config, offset, data);
}

void BlockDevice::write_config(uint64_t, std::span<const uint8_t>) {
    // writeback is the only writable field and only with CONFIG_WCE, not offered.
}

void BlockDevice::activate(const GuestMemory& memory, uint64_t acked_features,
                           std::span<Queue> queues, VirtioInterrupt& interrupt) {
    if (queues.empty()) {
        throw Error("virtio-blk: activated without its queue");
    }
    active_.emplace(memory, acked_features, queues, interrupt);
}

void BlockDevice::reset() {
    // The driver may reuse its buffers after a reset: nothing may still write them.
    drain();
    active_.reset();
}

void BlockDevice::drain() {
    engine_->drain();
    complete_finished();
    for (auto& slot : slots_) {
        slot.in_flight = false;
    }
    in_flight_count_ = 0;
}

void BlockDevice::prepare_save() {
    drain();
    notify_if_used();
    // What the guest was told is written reaches the disk before the
    // snapshot is taken (a copy of the disk may be taken along with it).
    if (!image_->read_only()) {
        if (int result = image_->flush(); result != 0) {
            log_warning("virtio-blk {}: flushing disk image '{}' for a snapshot failed: {}", id_,
                        image_->path(), std::strerror(-result));
        }
    }
}

void BlockDevice::save_state(StateWriter& out) const {
    out.u64(image_->sectors());
    out.boolean(image_->read_only());
}

void BlockDevice::restore_state(StateReader& in) {
    uint64_t sectors = in.u64();
    bool read_only = in.boolean();
    // The driver sized its disk and its caches from what it read before.
    if (sectors != image_->sectors()) {
        in.fail(fmt::format("the snapshot's disk had {} sectors, this one ('{}') has {}", sectors,
                            image_->path(), image_->sectors()));
    }
    if (read_only != image_->read_only()) {
        in.fail(fmt::format("the snapshot's disk was {}, this one ('{}') is {}",
                            read_only ? "read-only" : "read-write", image_->path(),
                            image_->read_only() ? "read-only" : "read-write"));
    }
}

uint8_t BlockDevice::execute_inline(const BlockRequest& request, uint32_t& written) {
    switch (request.type) {
        case kBlkTypeGetId: {
            uint64_t done = 0;
            for (const auto& slice : request.data) {
                for (size_t i = 0; i < slice.size(); ++i, ++done) {
                    // SAFETY: a checked slice of guest RAM.
                    slice.data()[i] = done < id_.size() ? uint8_t(id_[done]) : 0;
                }
            }
            written += static_cast<uint32_t>(request.data_length);
            return kBlkStatusOk;
        }
        case kBlkTypeDiscard:
        case kBlkTypeWriteZeroes:
            ++(request.type == kBlkTypeDiscard ? discards_ : write_zeroes_);
            // Both engines run these here, on the I/O thread. The image falls
            // back where its filesystem lacks a mode (a discard then does
            // nothing), so only real I/O errors come back.
            for (const auto& segment : request.segments) {
                uint64_t at = segment.sector * kSectorSize;
                uint64_t length = uint64_t(segment.num_sectors) * kSectorSize;
                int result = request.type == kBlkTypeDiscard ? image_->discard(at, length)
                                                             : image_->write_zeroes(at, length);
                if (result != 0) {
                    note_io_error(result);
                    return kBlkStatusIoErr;
                }
            }
            return kBlkStatusOk;
        default:
            return kBlkStatusUnsupported;
    }
}

void BlockDevice::complete(uint16_t head, const std::optional<GuestAddress>& status_address,
                           uint8_t status, uint32_t written) {
    if (!active_) {
        return;  // reset while in flight: the driver no longer expects it
    }
    if (status != kBlkStatusOk) {
        ++errors_;
    }
    if (status_address) {
        active_->memory.write_obj(*status_address, status);
        written += 1;
    }
    active_->queue().add_used(active_->memory, head, written);
    active_->used_since_notify = true;
}

void BlockDevice::dispatch(uint16_t head, BlockRequest request) {
    // One slot per head (heads are below the queue size): no allocation per
    // request, and a head the driver reuses while in flight is caught before
    // anything, even a request answered at once, is done with it: the guest
    // must not see one head completed twice.
    Slot& slot = slots_[head];
    if (slot.in_flight) {
        throw QueueError(
            fmt::format("virtio-blk: descriptor head {} reused while its request is "
                        "in flight",
                        head));
    }
    if (request.early_status) {
        complete(head, request.status_address, *request.early_status, 0);
        return;
    }
    BlockIo io{};
    uint32_t written_on_success = 0;
    ++requests_;
    switch (request.type) {
        case kBlkTypeIn:
            read_bytes_ += request.data_length;
            io.op = BlockIo::Op::Read;
            written_on_success = static_cast<uint32_t>(request.data_length);
            break;
        case kBlkTypeOut:
            write_bytes_ += request.data_length;
            io.op = BlockIo::Op::Write;
            break;
        case kBlkTypeFlush:
            if (image_->read_only()) {
                complete(head, request.status_address, kBlkStatusOk, 0);
                return;
            }
            // Completed only once the data is on stable storage.
            io.op = BlockIo::Op::Flush;
            break;
        default: {
            uint32_t written = 0;
            uint8_t status = execute_inline(request, written);
            complete(head, request.status_address, status, written);
            return;
        }
    }
    slot.in_flight = true;
    slot.status_address = request.status_address;
    slot.written_on_success = written_on_success;
    slot.iov.clear();
    for (const auto& slice : request.data) {
        // SAFETY: checked slices of guest RAM, valid while the VM exists.
        slot.iov.push_back({slice.data(), slice.size()});
    }
    ++in_flight_count_;
    io.offset = request.sector * kSectorSize;
    io.iov = &slot.iov;
    engine_->submit(head, io);
}

bool BlockDevice::complete_finished() {
    bool any = false;
    for (auto [token, result] : engine_->reap()) {
        if (token >= slots_.size() || !slots_[token].in_flight) {
            continue;
        }
        Slot& slot = slots_[token];
        slot.in_flight = false;
        --in_flight_count_;
        note_io_error(result);
        complete(static_cast<uint16_t>(token), slot.status_address,
                 result == 0 ? kBlkStatusOk : kBlkStatusIoErr,
                 result == 0 ? slot.written_on_success : 0);
        any = true;
    }
    return any;
}

bool BlockDevice::process_queue(size_t) {
    if (!active_) {
        return false;
    }
    const GuestMemory& memory = active_->memory;
    Queue& queue = active_->queue();
    // At most one queue's worth per call: a guest whose rings overlap (or
    // that keeps adding) cannot keep the I/O thread here forever.
    bool more = true;
    for (uint32_t taken = 0; taken < queue.size(); ++taken) {
        auto chain = queue.pop(memory);
        if (!chain) {
            more = false;
            break;
        }
        BlockRequest request =
            parse_block_request(memory, *chain, image_->sectors(), image_->read_only());
        if (!admit(request)) {
            // Parsed again when the limiter's timer says it may go.
            queue.give_back(*chain);
            more = false;
            break;
        }
        dispatch(chain->head(), std::move(request));
    }
    engine_->commit();
    complete_finished();
    notify_if_used();
    return more;
}

void BlockDevice::replace_image(DiskImage&& image) {
    drain();
    notify_if_used();
    // The engines hold the DiskImage object, not its fd: the new file is
    // theirs from the next request on.
    *image_ = std::move(image);
    if (active_) {
        active_->interrupt.signal_config_change();  // the capacity
    }
}

bool BlockDevice::admit(const BlockRequest& request) {
    if (request.early_status) {
        return true;  // answered at once, no I/O: not charged
    }
    bool moves_data = request.type == kBlkTypeIn || request.type == kBlkTypeOut;
    return limiter_.consume(1, moves_data ? request.data_length : 0);
}

int BlockDevice::backend_fd(size_t index) const {
    return is_limiter_backend(index) ? limiter_.timer_fd() : engine_->event_fd();
}

VirtioDevice::BackendInterest BlockDevice::backend_interest(size_t index) const {
    if (is_limiter_backend(index)) {
        return {limiter_.blocked(), false};
    }
    return {true, false};
}

bool BlockDevice::process_backend(size_t index) {
    if (is_limiter_backend(index)) {
        // The wait is over: serve the queue the limiter stopped.
        return limiter_.timer_expired() && process_queue(0);
    }
    complete_finished();
    notify_if_used();
    return false;
}

void BlockDevice::note_io_error(int result) {
    if (result == 0) {
        return;
    }
    // The guest gets IOERR; the host's user gets told once (a full disk
    // would otherwise fill the log), and io_errors counts them all.
    if (io_errors_++ == 0) {
        log_error(
            "virtio-blk {}: I/O error on disk image '{}': {} (the guest gets IOERR; "
            "later ones are counted in io_errors)",
            id_, image_->path(), std::strerror(-result));
    }
}

VirtioDevice::Metrics BlockDevice::metrics() const {
    return {{"requests", requests_},         {"read_bytes", read_bytes_},
            {"write_bytes", write_bytes_},   {"discards", discards_},
            {"write_zeroes", write_zeroes_}, {"errors", errors_},
            {"io_errors", io_errors_},       {"rate_limiter_throttled", limiter_.throttled()}};
}

void BlockDevice::notify_if_used() {
    if (active_ && active_->used_since_notify) {
        active_->used_since_notify = false;
        active_->notify_if_needed(active_->queue());
    }
}

}  // namespace vmm
