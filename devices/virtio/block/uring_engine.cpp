// The io_uring engine: requests are queued as SQEs and committed once per
// queue notification, completions arrive on an eventfd the I/O thread
// watches. Reads and writes run concurrently; a flush drains what was
// submitted before it (IOSQE_IO_DRAIN), so it covers every completed write.
#include <liburing.h>

#include <unordered_map>

#include "devices/virtio/block/block_engine.hpp"
#include "vmm/base/event_fd.hpp"

namespace vmm {

namespace {

class UringEngine : public BlockEngine {
  public:
    UringEngine(const DiskImage& image, io_uring ring) : image_(image), ring_(ring) {
        io_uring_register_eventfd(&ring_, completions_.fd());
    }
    ~UringEngine() override {
        drain();
        io_uring_queue_exit(&ring_);
    }
    const char* name() const override { return "io_uring"; }

    void submit(uint64_t token, const BlockIo& io) override {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        while (sqe == nullptr) {
            // Submission queue full: push it to the kernel and make room.
            io_uring_submit(&ring_);
            wait_one();
            sqe = io_uring_get_sqe(&ring_);
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
        ++in_flight_;
    }

    void commit() override { io_uring_submit(&ring_); }

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
        io_uring_submit(&ring_);
        while (in_flight_ > 0) {
            wait_one();
        }
    }

  private:
    void wait_one() {
        io_uring_cqe* cqe = nullptr;
        int err = io_uring_wait_cqe(&ring_, &cqe);
        if (err == 0) {
            take(cqe);
        } else if (err != -EINTR) {
            // The ring itself failed: fail everything still outstanding.
            for (auto& [token, io] : expected_) {
                done_.emplace_back(token, err);
            }
            expected_.clear();
            in_flight_ = 0;
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
        --in_flight_;
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
    EventFd completions_;
    std::unordered_map<uint64_t, BlockIo> expected_;
    size_t in_flight_ = 0;
    std::vector<std::pair<uint64_t, int>> done_;
};

}  // namespace

std::unique_ptr<BlockEngine> make_uring_engine(const DiskImage& image, unsigned depth) {
    io_uring ring{};
    if (io_uring_queue_init(depth, &ring, 0) < 0) {
        return nullptr;
    }
    return std::make_unique<UringEngine>(image, ring);
}

}  // namespace vmm
