// The synchronous engine: each request runs to completion inside submit().
#include <cerrno>

#include "devices/virtio/block/block_engine.hpp"

namespace vmm {

namespace {

class SyncEngine : public BlockEngine {
  public:
    explicit SyncEngine(const DiskImage& image) : image_(image) {}
    const char* name() const override { return "sync"; }

    void submit(uint64_t token, const BlockIo& io) override {
        int result = 0;
        if (io.op != BlockIo::Op::Flush && (io.iov == nullptr || io.iov->size() > kMaxIoBuffers)) {
            // The same limit as io_uring's, so that both engines answer alike.
            done_.emplace_back(token, -EINVAL);
            return;
        }
        switch (io.op) {
            case BlockIo::Op::Read:
                result = image_.read_vectored(*io.iov, io.offset);
                break;
            case BlockIo::Op::Write:
                result = image_.write_vectored(*io.iov, io.offset);
                break;
            case BlockIo::Op::Flush:
                result = image_.flush();
                break;
        }
        done_.emplace_back(token, result);
    }

    std::vector<std::pair<uint64_t, int>> reap() override { return std::exchange(done_, {}); }
    void drain() override {}

  private:
    const DiskImage& image_;
    std::vector<std::pair<uint64_t, int>> done_;
};

}  // namespace

std::unique_ptr<BlockEngine> make_sync_engine(const DiskImage& image) {
    return std::make_unique<SyncEngine>(image);
}

}  // namespace vmm
