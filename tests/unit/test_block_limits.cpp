// virtio-blk against a hostile driver: the limits the device advertises are
// the limits it serves (seg_max), and no request the engine cannot run may
// leave a completion owed forever (which wedged drain() and with it SIGTERM).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include "devices/virtio/block/block_device.hpp"
#include "devices/virtio/block/block_engine.hpp"
#include "test_helpers.hpp"
#include "virtqueue_builder.hpp"

using test::VirtqueueBuilder;
using vmm::BlockDevice;
using vmm::GuestAddress;
using Desc = VirtqueueBuilder::Desc;

namespace {

constexpr uint64_t kSectors = 2048;
constexpr uint64_t kIndirect = 1ull << vmm::VIRTIO_F_RING_INDIRECT_DESC;

struct Header {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

struct NoInterrupt : vmm::VirtioInterrupt {
    void signal_used_queue() override {}
    void signal_config_change() override {}
};

// A read or write of `segments` data buffers of 512 bytes each (one sector
// per segment) in one indirect table; returns the status descriptor.
Desc add_request(VirtqueueBuilder& q, uint32_t type, uint32_t segments) {
    Desc header = q.readable(16);
    q.memory().write_obj(GuestAddress(header.addr), Header{type, 0, 0});
    // Every segment points at the same buffer: the count is what matters.
    uint64_t buffer = q.alloc(512);
    uint16_t flags = type == vmm::kBlkTypeIn ? vmm::VIRTQ_DESC_F_WRITE : 0;
    std::vector<Desc> descs{header};
    descs.insert(descs.end(), segments, Desc{buffer, 512, flags, 0});
    Desc status = q.writable(1);
    q.memory().fill(GuestAddress(status.addr), 1, 0xff);
    descs.push_back(status);
    q.add_indirect_chain(descs);
    return status;
}

uint8_t status_of(VirtqueueBuilder& q, const Desc& status) {
    return q.memory().read_obj<uint8_t>(GuestAddress(status.addr));
}

}  // namespace

TEST_CASE("block device: more data segments than seg_max is IOERR, with either engine", "[block]") {
    auto engine = GENERATE(BlockDevice::Engine::Sync, BlockDevice::Engine::Auto);
    auto type = GENERATE(vmm::kBlkTypeIn, vmm::kBlkTypeOut);
    test::TempFile file = test::TempFile::sparse(kSectors * 512);
    BlockDevice device(std::make_unique<vmm::DiskImage>(file.path(), false), "serial", engine);
    VirtqueueBuilder q(256, kIndirect);
    NoInterrupt interrupt;
    device.activate(q.memory(), kIndirect, std::span(&q.queue(), 1), interrupt);

    Desc at_limit = add_request(q, type, BlockDevice::kSegMax);
    Desc over_limit = add_request(q, type, BlockDevice::kSegMax + 1);
    Desc far_over = add_request(q, type, 250);
    device.process_queue(0);
    device.drain();
    CHECK(status_of(q, at_limit) == vmm::kBlkStatusOk);
    CHECK(status_of(q, over_limit) == vmm::kBlkStatusIoErr);
    CHECK(status_of(q, far_over) == vmm::kBlkStatusIoErr);
    REQUIRE(q.used_idx() == 3);
    CHECK(q.used_elem(1).len == 1);  // only the status byte
    CHECK(device.in_flight() == 0);
}

TEST_CASE("block device: a request longer than the queue is a protocol violation", "[block]") {
    test::TempFile file = test::TempFile::sparse(kSectors * 512);
    BlockDevice device(std::make_unique<vmm::DiskImage>(file.path(), false), "serial",
                       BlockDevice::Engine::Auto);
    VirtqueueBuilder q(256, kIndirect);
    NoInterrupt interrupt;
    device.activate(q.memory(), kIndirect, std::span(&q.queue(), 1), interrupt);
    add_request(q, vmm::kBlkTypeIn, 2000);
    CHECK_THROWS_AS(device.process_queue(0), vmm::QueueError);
    CHECK(device.in_flight() == 0);
    device.reset();
}

namespace {

// Reaps `engine` until `count` results came back or a few seconds passed.
std::vector<std::pair<uint64_t, int>> reap_all(vmm::BlockEngine& engine, size_t count) {
    std::vector<std::pair<uint64_t, int>> results;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (results.size() < count && std::chrono::steady_clock::now() < deadline) {
        for (auto result : engine.reap()) {
            results.push_back(result);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return results;
}

}  // namespace

// The kernel refuses a readv of more than 1024 buffers when it takes the
// submission, and then stops taking the ones behind it: they were neither
// run nor failed, and drain() waited for them forever.
TEST_CASE("block engines: a request the kernel refuses fails alone and owes nothing", "[block]") {
    test::TempFile file = test::TempFile::sparse(kSectors * 512);
    vmm::DiskImage image(file.path(), false);
    auto kind = GENERATE(BlockDevice::Engine::Sync, BlockDevice::Engine::Uring);
    std::unique_ptr<vmm::BlockEngine> engine = kind == BlockDevice::Engine::Sync
                                                   ? vmm::make_sync_engine(image)
                                                   : vmm::make_uring_engine(image, 16);
    if (!engine) {
        WARN("this host has no usable io_uring: the io_uring case is not run");
        return;
    }
    std::vector<uint8_t> buffer(512);
    std::vector<iovec> good{{buffer.data(), buffer.size()}};
    std::vector<iovec> too_many(2000, iovec{buffer.data(), 1});
    using Op = vmm::BlockIo::Op;
    // Good and bad in turns, all committed at once.
    engine->submit(0, {Op::Read, 0, &too_many});
    engine->submit(1, {Op::Read, 0, &good});
    engine->submit(2, {Op::Write, 0, &too_many});
    engine->submit(3, {Op::Read, 512, &good});
    engine->submit(4, {Op::Flush, 0, nullptr});
    engine->commit();
    auto results = reap_all(*engine, 5);
    if (results.size() != 5) {
        // drain() would never return: leave the engine behind rather than
        // hang the test run in its destructor.
        (void)engine.release();
        FAIL("only " << results.size() << " of 5 requests came back");
    }
    std::sort(results.begin(), results.end());
    CHECK(results[0] == std::pair<uint64_t, int>{0, -EINVAL});
    CHECK(results[1] == std::pair<uint64_t, int>{1, 0});
    CHECK(results[2] == std::pair<uint64_t, int>{2, -EINVAL});
    CHECK(results[3] == std::pair<uint64_t, int>{3, 0});
    CHECK(results[4] == std::pair<uint64_t, int>{4, 0});
    // Nothing is owed: drain() returns.
    engine->drain();
    CHECK(engine->reap().empty());
}
