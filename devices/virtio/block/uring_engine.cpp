// The io_uring engine: requests are queued as SQEs and committed once per
// queue notification, completions arrive on an eventfd the I/O thread
// watches. Reads and writes run concurrently; a flush drains what was
// submitted before it (IOSQE_IO_DRAIN), so it covers every completed write.
//
// Nothing here may leave a completion owed forever (drain() would wait for
// it, and with it the VMM's exit): a request the kernel cannot take fails on
// its own, the others go on. The counts say where each request is: queued
// in the submission ring, or taken by the kernel (which then always posts
// its completion).
#include <liburing.h>

#include <chrono>
#include <deque>
#include <thread>
#include <unordered_map>

#include "devices/virtio/block/block_engine.hpp"
#include "vmm/base/event_fd.hpp"

namespace vmm {

namespace {

// How often commit() retries a kernel that has no room now (EAGAIN, EBUSY)
// while nothing it holds could complete to make some, and how long it waits
// between tries; then the queued requests fail.
constexpr int kBusyRetries = 100;
constexpr auto kBusyWait = std::chrono::milliseconds(1);

class UringEngine : public BlockEngine {
  public:
    UringEngine(const DiskImage& image, io_uring ring, unsigned depth)
        : image_(image), ring_(ring), depth_(depth) {}
    ~UringEngine() override {
        drain();
        io_uring_queue_exit(&ring_);
    }
    const char* name() const override { return "io_uring"; }
    int register_completions() { return io_uring_register_eventfd(&ring_, completions_.fd()); }

    void submit(uint64_t token, const BlockIo& io) override {
        if (int refused = check(io)) {
            fail_now(token, refused);
            return;
        }
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        if (sqe == nullptr) {
            // Submission ring full: hand it to the kernel to make room.
            commit();
            sqe = io_uring_get_sqe(&ring_);
        }
        if (sqe == nullptr || broken_) {
            fail_now(token, -EAGAIN);
            return;
        }
        int fd = image_.fd();
        switch (io.op) {
            case BlockIo::Op::Read:
                io_uring_prep_readv(sqe, fd, io.iov->data(), unsigned(io.iov->size()), io.offset);
                break;
            case BlockIo::Op::Write:
                io_uring_prep_writev(sqe, fd, io.iov->data(), unsigned(io.iov->size()), io.offset);
                break;
            case BlockIo::Op::Flush:
                io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
                sqe->flags |= IOSQE_IO_DRAIN;
                break;
        }
        io_uring_sqe_set_data64(sqe, token);
        expected_[token] = io;
        queued_.push_back(token);
    }

    void commit() override {
        int busy = 0;
        while (!queued_.empty() && !broken_) {
            // The kernel takes SQEs in order. One it refuses outright (bad
            // arguments) it completes with the error, and it stops there:
            // the rest wait for the next call, so call again.
            int taken = io_uring_submit(&ring_);
            if (taken > 0) {
                mark_taken(size_t(taken));
                busy = 0;
            } else if (taken == -EINTR) {
                continue;
            } else if ((taken == -EAGAIN || taken == -EBUSY) && in_kernel_ > 0) {
                wait_one();  // a completion frees what the kernel lacks
            } else if ((taken == -EAGAIN || taken == -EBUSY || taken == 0) &&
                       ++busy < kBusyRetries) {
                std::this_thread::sleep_for(kBusyWait);
            } else {
                give_up();
            }
        }
    }

    std::vector<std::pair<uint64_t, int>> reap() override {
        completions_.consume();
        io_uring_cqe* cqe = nullptr;
        while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
            take(cqe);
        }
        return std::exchange(done_, {});
    }

    int event_fd() const override { return completions_.fd(); }

    void drain() override {
        commit();
        // Only what the kernel took can still complete; commit() took or
        // failed everything queued.
        while (in_kernel_ > 0) {
            wait_one();
        }
    }

  private:
    // 0, or why the kernel must not see `io`.
    int check(const BlockIo& io) const {
        if (broken_) {
            return -EIO;
        }
        if (expected_.size() >= depth_) {
            return -EAGAIN;  // the completion ring has room for depth_ at a time
        }
        if (io.op != BlockIo::Op::Flush && (io.iov == nullptr || io.iov->size() > kMaxIoBuffers)) {
            return -EINVAL;
        }
        return 0;
    }

    // Completes `token` now, without the kernel; the eventfd brings the I/O
    // thread to reap() it even when no other completion comes.
    void fail_now(uint64_t token, int error) {
        done_.emplace_back(token, error);
        completions_.signal();
    }

    void mark_taken(size_t count) {
        for (; count > 0 && !queued_.empty(); --count) {
            queued_.pop_front();
            ++in_kernel_;
        }
    }

    // The kernel will not take the queued requests: they fail, and no SQE is
    // handed to it again (one that ran after its failure was reported could
    // write guest memory the driver has reused).
    void give_up() {
        broken_ = true;
        for (uint64_t token : queued_) {
            expected_.erase(token);
            fail_now(token, -EIO);
        }
        queued_.clear();
    }

    void wait_one() {
        io_uring_cqe* cqe = nullptr;
        int err = io_uring_wait_cqe(&ring_, &cqe);
        if (err == 0) {
            take(cqe);
        } else if (err != -EINTR) {
            // The ring itself failed: what the kernel holds is lost to us.
            for (auto& [token, io] : expected_) {
                done_.emplace_back(token, err);
            }
            expected_.clear();
            queued_.clear();
            in_kernel_ = 0;
            broken_ = true;
            completions_.signal();
        }
    }

    // A short read or write (rare, e.g. a signal) is finished synchronously.
    void take(io_uring_cqe* cqe) {
        uint64_t token = io_uring_cqe_get_data64(cqe);
        int result = cqe->res;
        io_uring_cqe_seen(&ring_, cqe);
        auto it = expected_.find(token);
        if (it == expected_.end()) {
            return;
        }
        BlockIo io = it->second;
        expected_.erase(it);
        if (in_kernel_ > 0) {
            --in_kernel_;
        }
        if (io.op == BlockIo::Op::Flush) {
            done_.emplace_back(token, result < 0 ? result : 0);
            return;
        }
        uint64_t want = 0;
        for (const auto& v : *io.iov) {
            want += v.iov_len;
        }
        if (result >= 0 && uint64_t(result) < want) {
            std::vector<iovec> rest = *io.iov;
            uint64_t skip = uint64_t(result);
            size_t first = 0;
            while (first < rest.size() && skip >= rest[first].iov_len) {
                skip -= rest[first++].iov_len;
            }
            rest.erase(rest.begin(), rest.begin() + long(first));
            if (!rest.empty()) {
                rest[0].iov_base = static_cast<uint8_t*>(rest[0].iov_base) + skip;
                rest[0].iov_len -= skip;
            }
            uint64_t at = io.offset + uint64_t(result);
            result = io.op == BlockIo::Op::Read ? image_.read_vectored(rest, at)
                                                : image_.write_vectored(rest, at);
        }
        done_.emplace_back(token, result < 0 ? result : 0);
    }

    const DiskImage& image_;
    io_uring ring_;
    size_t depth_;
    EventFd completions_;
    std::unordered_map<uint64_t, BlockIo> expected_;  // queued or in the kernel
    std::deque<uint64_t> queued_;                     // in the ring, in order
    size_t in_kernel_ = 0;                            // taken, not completed
    bool broken_ = false;
    std::vector<std::pair<uint64_t, int>> done_;
};

}  // namespace

std::unique_ptr<BlockEngine> make_uring_engine(const DiskImage& image, unsigned depth) {
    io_uring ring{};
    if (io_uring_queue_init(depth, &ring, 0) < 0) {
        return nullptr;
    }
    auto engine = std::make_unique<UringEngine>(image, ring, depth);
    // Without its eventfd nobody would ever look at the completions.
    if (engine->register_completions() < 0) {
        return nullptr;
    }
    return engine;
}

}  // namespace vmm
