// virtio-blk request parsing and execution: every request type, malformed
// shapes (short header, no status byte, misaligned or out-of-range data,
// too many discard segments), through a real queue and a temp-file image.
#include <catch2/catch.hpp>

#include <cstring>

#include "devices/virtio/block/block_device.hpp"
#include "test_helpers.hpp"
#include "virtqueue_builder.hpp"

using test::VirtqueueBuilder;
using vmm::GuestAddress;

namespace {

struct Header {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

constexpr uint64_t kCapacity = 64;  // sectors

// A driver-side request: header buffer plus data and status descriptors.
struct Fixture {
    VirtqueueBuilder q{16};

    VirtqueueBuilder::Desc header(uint32_t type, uint64_t sector, uint32_t len = 16) {
        auto d = q.readable(len);
        Header h{type, 0, sector};
        q.memory().write(GuestAddress(d.addr), std::span(reinterpret_cast<const uint8_t*>(&h),
                                                         std::min<size_t>(len, 16)));
        return d;
    }

    vmm::BlockRequest parse(std::vector<VirtqueueBuilder::Desc> descs, bool read_only = false) {
        q.add_chain(std::move(descs));
        auto chain = q.queue().pop(q.memory());
        REQUIRE(chain);
        return vmm::parse_block_request(q.memory(), *chain, kCapacity, read_only);
    }
};

}  // namespace

TEST_CASE("block request: IN with data and status", "[block]") {
    Fixture f;
    auto status = f.q.writable(1);
    auto r = f.parse({f.header(vmm::kBlkTypeIn, 3), f.q.writable(1024), status});
    CHECK_FALSE(r.early_status);
    CHECK(r.type == vmm::kBlkTypeIn);
    CHECK(r.sector == 3);
    CHECK(r.data_length == 1024);
    REQUIRE(r.status_address);
    CHECK(r.status_address->value() == status.addr);
}

TEST_CASE("block request: status byte shares the last data buffer", "[block]") {
    Fixture f;
    auto data = f.q.writable(513);
    auto r = f.parse({f.header(vmm::kBlkTypeIn, 0), data});
    CHECK_FALSE(r.early_status);
    CHECK(r.data_length == 512);
    CHECK(r.status_address->value() == data.addr + 512);
}

TEST_CASE("block request: header split across descriptors", "[block]") {
    Fixture f;
    auto first = f.q.readable(4);
    auto second = f.q.readable(12);
    Header h{vmm::kBlkTypeIn, 0, 7};
    f.q.memory().write(GuestAddress(first.addr), std::span(reinterpret_cast<uint8_t*>(&h), 4));
    f.q.memory().write(GuestAddress(second.addr),
                       std::span(reinterpret_cast<uint8_t*>(&h) + 4, 12));
    auto r = f.parse({first, second, f.q.writable(512), f.q.writable(1)});
    CHECK_FALSE(r.early_status);
    CHECK(r.sector == 7);
}

TEST_CASE("block request: short header is IOERR", "[block]") {
    Fixture f;
    auto r = f.parse({f.header(vmm::kBlkTypeIn, 0, 8), f.q.writable(1)});
    REQUIRE(r.early_status);
    CHECK(*r.early_status == vmm::kBlkStatusIoErr);
    CHECK(r.status_address);
}

TEST_CASE("block request: no writable byte means no status at all", "[block]") {
    Fixture f;
    auto r = f.parse({f.header(vmm::kBlkTypeOut, 0), f.q.readable(512)});
    REQUIRE(r.early_status);
    CHECK_FALSE(r.status_address);
}

TEST_CASE("block request: data not a multiple of 512 is IOERR", "[block]") {
    Fixture f;
    auto r = f.parse({f.header(vmm::kBlkTypeIn, 0), f.q.writable(100), f.q.writable(1)});
    REQUIRE(r.early_status);
    CHECK(*r.early_status == vmm::kBlkStatusIoErr);
}

TEST_CASE("block request: ranges past the end (and wrapping sectors) are IOERR", "[block]") {
    for (uint64_t sector : {kCapacity, kCapacity - 1, UINT64_MAX, UINT64_MAX / 512}) {
        Fixture f;
        auto r = f.parse({f.header(vmm::kBlkTypeIn, sector), f.q.writable(1024), f.q.writable(1)});
        REQUIRE(r.early_status);
        CHECK(*r.early_status == vmm::kBlkStatusIoErr);
    }
    Fixture f;
    auto r =
        f.parse({f.header(vmm::kBlkTypeIn, kCapacity - 2), f.q.writable(1024), f.q.writable(1)});
    CHECK_FALSE(r.early_status);
}

TEST_CASE("block request: writes to a read-only drive are IOERR", "[block]") {
    for (uint32_t type : {vmm::kBlkTypeOut, vmm::kBlkTypeDiscard, vmm::kBlkTypeWriteZeroes}) {
        Fixture f;
        auto r = f.parse({f.header(type, 0), f.q.readable(512), f.q.writable(1)}, true);
        REQUIRE(r.early_status);
        CHECK(*r.early_status == vmm::kBlkStatusIoErr);
    }
}

TEST_CASE("block request: FLUSH and GET_ID", "[block]") {
    Fixture f;
    auto flush = f.parse({f.header(vmm::kBlkTypeFlush, 0), f.q.writable(1)});
    CHECK_FALSE(flush.early_status);
    Fixture g;
    auto id = g.parse({g.header(vmm::kBlkTypeGetId, 0), g.q.writable(64), g.q.writable(1)});
    CHECK_FALSE(id.early_status);
    CHECK(id.data_length == vmm::kBlkIdBytes);
}

TEST_CASE("block request: unknown type is UNSUPP", "[block]") {
    Fixture f;
    auto r = f.parse({f.header(0x7f00, 0), f.q.writable(1)});
    REQUIRE(r.early_status);
    CHECK(*r.early_status == vmm::kBlkStatusUnsupported);
}

TEST_CASE("block request: discard segments are checked", "[block]") {
    auto segment_request = [](uint32_t type, std::vector<vmm::BlkDiscardSegment> segments) {
        Fixture f;
        auto data = f.q.readable(static_cast<uint32_t>(16 * segments.size()));
        f.q.memory().write(
            GuestAddress(data.addr),
            std::span(reinterpret_cast<const uint8_t*>(segments.data()), 16 * segments.size()));
        return f.parse({f.header(type, 0), data, f.q.writable(1)});
    };
    auto ok = segment_request(vmm::kBlkTypeDiscard, {{4, 8, 0}});
    CHECK_FALSE(ok.early_status);
    REQUIRE(ok.segments.size() == 1);
    CHECK(ok.segments[0].num_sectors == 8);
    // More segments than max_discard_seg: UNSUPP.
    auto many =
        segment_request(vmm::kBlkTypeDiscard, std::vector<vmm::BlkDiscardSegment>(200, {0, 1, 0}));
    CHECK(many.early_status == vmm::kBlkStatusUnsupported);
    // The unmap flag is for WRITE_ZEROES only.
    CHECK(segment_request(vmm::kBlkTypeDiscard, {{0, 1, 1}}).early_status ==
          vmm::kBlkStatusUnsupported);
    CHECK_FALSE(segment_request(vmm::kBlkTypeWriteZeroes, {{0, 1, 1}}).early_status);
    // Out of range, including sector + count wrapping.
    CHECK(segment_request(vmm::kBlkTypeWriteZeroes, {{kCapacity, 1, 0}}).early_status ==
          vmm::kBlkStatusIoErr);
    CHECK(segment_request(vmm::kBlkTypeWriteZeroes, {{UINT64_MAX, 2, 0}}).early_status ==
          vmm::kBlkStatusIoErr);
}

TEST_CASE("block device: write then read back through the queue (both engines)", "[block]") {
    for (auto engine : {vmm::BlockDevice::Engine::Sync, vmm::BlockDevice::Engine::Auto}) {
        test::TempFile file(test::Bytes(kCapacity * 512, 0));
        vmm::BlockDevice device(std::make_unique<vmm::DiskImage>(file.path(), false), "serial",
                                engine);
        VirtqueueBuilder q(16, 1ull << vmm::VIRTIO_F_VERSION_1);
        struct : vmm::VirtioInterrupt {
            void signal_used_queue() override { ++count; }
            void signal_config_change() override {}
            int count = 0;
        } interrupt;
        device.activate(q.memory(), 0, std::span(&q.queue(), 1), interrupt);

        auto out_header = q.readable(16);
        Header wh{vmm::kBlkTypeOut, 0, 5};
        q.memory().write_obj(GuestAddress(out_header.addr), wh);
        auto out_data = q.readable(512);
        q.memory().fill(GuestAddress(out_data.addr), 512, 0xab);
        auto out_status = q.writable(1);
        q.memory().fill(GuestAddress(out_status.addr), 1, 0xff);
        q.add_chain({out_header, out_data, out_status});
        device.process_queue(0);
        device.drain();
        CHECK(q.memory().read_obj<uint8_t>(GuestAddress(out_status.addr)) == vmm::kBlkStatusOk);

        auto in_header = q.readable(16);
        Header rh{vmm::kBlkTypeIn, 0, 5};
        q.memory().write_obj(GuestAddress(in_header.addr), rh);
        auto in_data = q.writable(512);
        auto in_status = q.writable(1);
        q.add_chain({in_header, in_data, in_status});
        device.process_queue(0);
        device.drain();
        CHECK(q.memory().read_obj<uint8_t>(GuestAddress(in_status.addr)) == vmm::kBlkStatusOk);
        CHECK(q.memory().read_obj<uint8_t>(GuestAddress(in_data.addr + 511)) == 0xab);
        REQUIRE(q.used_idx() == 2);
        CHECK(q.used_elem(1).len == 513);  // data plus status
        CHECK(interrupt.count >= 1);
        device.reset();
    }
}

TEST_CASE("block device: a head published twice while in flight is a queue violation", "[block]") {
    test::TempFile file(test::Bytes(kCapacity * 512, 0));
    vmm::BlockDevice device(std::make_unique<vmm::DiskImage>(file.path(), false), "serial",
                            vmm::BlockDevice::Engine::Sync);
    VirtqueueBuilder q(16, 1ull << vmm::VIRTIO_F_VERSION_1);
    struct : vmm::VirtioInterrupt {
        void signal_used_queue() override {}
        void signal_config_change() override {}
    } interrupt;
    device.activate(q.memory(), 0, std::span(&q.queue(), 1), interrupt);
    auto header = q.readable(16);
    Header h{vmm::kBlkTypeIn, 0, 1};
    q.memory().write_obj(GuestAddress(header.addr), h);
    uint16_t head = q.add_chain({header, q.writable(512), q.writable(1)});
    q.publish(head);  // the same chain again, before the device used it
    CHECK_THROWS_AS(device.process_queue(0), vmm::QueueError);
    device.reset();
}

namespace {

struct CountingInterrupt : vmm::VirtioInterrupt {
    void signal_used_queue() override { ++used; }
    void signal_config_change() override {}
    int used = 0;
};

// A read of sector 0 through `q`, whose status byte is returned.
VirtqueueBuilder::Desc add_read(VirtqueueBuilder& q) {
    auto header = q.readable(16);
    Header h{vmm::kBlkTypeIn, 0, 0};
    q.memory().write_obj(GuestAddress(header.addr), h);
    auto status = q.writable(1);
    q.memory().fill(GuestAddress(status.addr), 1, 0xff);
    q.add_chain({header, q.writable(512), status});
    return status;
}

}  // namespace

TEST_CASE("block device: reset forgets the activation", "[block]") {
    test::TempFile file(test::Bytes(kCapacity * 512, 0));
    vmm::BlockDevice device(std::make_unique<vmm::DiskImage>(file.path(), false), "serial",
                            vmm::BlockDevice::Engine::Sync);
    VirtqueueBuilder q(16, 1ull << vmm::VIRTIO_F_VERSION_1);
    CountingInterrupt interrupt;
    CHECK_FALSE(device.process_queue(0));  // never activated
    device.activate(q.memory(), 0, std::span(&q.queue(), 1), interrupt);
    device.reset();
    auto status = add_read(q);
    CHECK_FALSE(device.process_queue(0));
    CHECK_FALSE(device.process_backend(0));
    CHECK(q.used_idx() == 0);
    CHECK(q.memory().read_obj<uint8_t>(GuestAddress(status.addr)) == 0xff);
    device.activate(q.memory(), 0, std::span(&q.queue(), 1), interrupt);
    device.process_queue(0);
    CHECK(q.used_idx() == 1);
    CHECK(q.memory().read_obj<uint8_t>(GuestAddress(status.addr)) == vmm::kBlkStatusOk);
    CHECK(interrupt.used == 1);
}

TEST_CASE("block device: reset completes what is in flight before it forgets the queue",
          "[block]") {
    auto engine = GENERATE(vmm::BlockDevice::Engine::Sync, vmm::BlockDevice::Engine::Auto);
    test::TempFile file(test::Bytes(kCapacity * 512, 0));
    vmm::BlockDevice device(std::make_unique<vmm::DiskImage>(file.path(), false), "serial", engine);
    VirtqueueBuilder q(64, 1ull << vmm::VIRTIO_F_VERSION_1);
    CountingInterrupt interrupt;
    device.activate(q.memory(), 0, std::span(&q.queue(), 1), interrupt);
    std::vector<VirtqueueBuilder::Desc> statuses;
    for (int i = 0; i < 8; ++i) {
        statuses.push_back(add_read(q));
    }
    device.process_queue(0);
    device.reset();
    CHECK(device.in_flight() == 0);
    CHECK(q.used_idx() == 8);
    for (const auto& status : statuses) {
        CHECK(q.memory().read_obj<uint8_t>(GuestAddress(status.addr)) == vmm::kBlkStatusOk);
    }
}

TEST_CASE("block device: an activation without its queue is refused", "[block]") {
    test::TempFile file(test::Bytes(kCapacity * 512, 0));
    vmm::BlockDevice device(std::make_unique<vmm::DiskImage>(file.path(), false), "serial",
                            vmm::BlockDevice::Engine::Sync);
    VirtqueueBuilder q(16);
    CountingInterrupt interrupt;
    CHECK_THROWS_AS(device.activate(q.memory(), 0, {}, interrupt), vmm::Error);
    add_read(q);
    CHECK_FALSE(device.process_queue(0));
    CHECK(q.used_idx() == 0);
}

TEST_CASE("block device: a head republished while in flight is a violation, whatever it asks",
          "[block]") {
    // The guest's data buffer covers its own request header, so the read of
    // sector 0 (whose first bytes are a header of unknown type) rewrites it
    // while the request is in flight. Published again, the same head then
    // parses as a request answered at once (UNSUPP): that second use of a
    // head the device still holds must be refused like any other.
    test::Bytes disk(kCapacity * 512, 0);
    Header unknown{99, 0, 0};
    std::memcpy(disk.data(), &unknown, sizeof(unknown));
    test::TempFile file(disk);
    vmm::BlockDevice device(std::make_unique<vmm::DiskImage>(file.path(), false), "serial",
                            vmm::BlockDevice::Engine::Sync);
    VirtqueueBuilder q(16, 1ull << vmm::VIRTIO_F_VERSION_1);
    CountingInterrupt interrupt;
    device.activate(q.memory(), 0, std::span(&q.queue(), 1), interrupt);
    uint64_t at = q.alloc(512);
    Header in{vmm::kBlkTypeIn, 0, 0};
    q.memory().write_obj(GuestAddress(at), in);
    auto status = q.writable(1);
    uint16_t head = q.add_chain({{at, 16, 0, 0}, {at, 512, vmm::VIRTQ_DESC_F_WRITE, 0}, status});
    q.publish(head);
    CHECK_THROWS_WITH(device.process_queue(0), Catch::Contains("descriptor head 0 reused"));
    CHECK(q.used_idx() == 0);  // not completed twice
    device.reset();
    CHECK(q.used_idx() == 1);  // the read, once
    CHECK(q.used_elem(0).id == head);
}
