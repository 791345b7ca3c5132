// Snapshots of device state: a virtqueue, a virtio-mmio transport with its
// device (rng, block, console, net) and the legacy UART and keyboard
// controller save their state and take it back into new objects, which then
// carry on where the old ones stopped; corrupt, truncated or mismatched
// states are refused with a clear error and never read out of bounds.
#include <catch2/catch.hpp>

#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "devices/legacy/i8042.hpp"
#include "devices/legacy/serial_8250.hpp"
#include "devices/virtio/block/block_device.hpp"
#include "devices/virtio/block/block_request.hpp"
#include "devices/virtio/console/console_device.hpp"
#include "devices/virtio/mmio_transport.hpp"
#include "devices/virtio/net/net_device.hpp"
#include "devices/virtio/rng/rng_device.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "net_test_backend.hpp"
#include "test_helpers.hpp"
#include "virtqueue_builder.hpp"

using Catch::Matchers::Contains;
using test::Bytes;
using vmm::GuestAddress;
using vmm::MmioTransport;
using vmm::StateError;
using vmm::StateReader;
using vmm::StateWriter;

namespace {

constexpr uint64_t kVersion1 = 1ull << vmm::VIRTIO_F_VERSION_1;
constexpr uint64_t kIndirect = 1ull << vmm::VIRTIO_F_RING_INDIRECT_DESC;
constexpr uint64_t kEventIdx = 1ull << vmm::VIRTIO_F_RING_EVENT_IDX;

Bytes saved(const vmm::Queue& queue) {
    StateWriter out;
    queue.save_state(out);
    return out.take();
}

void restore(vmm::Queue& queue, const Bytes& state) {
    StateReader in(state, "queue");
    queue.restore_state(in);
    in.expect_end();
}

}  // namespace

TEST_CASE("queue state: a round trip keeps layout, features and indices", "[state]") {
    test::VirtqueueBuilder q(16, kIndirect | kEventIdx);
    q.start_indices_at(65530);  // indices about to wrap
    for (int i = 0; i < 3; ++i) {
        q.add_chain({q.writable(8)});
    }
    auto first = q.queue().pop(q.memory());
    REQUIRE(first);
    q.queue().add_used(q.memory(), first->head(), 8);
    REQUIRE(q.queue().pop(q.memory()));
    q.queue().add_used(q.memory(), 1, 8);
    q.set_used_event(65530);
    CHECK(q.queue().needs_notification(q.memory()));

    vmm::Queue copy(256);
    restore(copy, saved(q.queue()));
    CHECK(copy.size() == 16);
    CHECK(copy.ready());
    CHECK(copy.desc_table() == test::VirtqueueBuilder::kDescTable);
    CHECK(copy.avail_ring() == test::VirtqueueBuilder::kAvailRing);
    CHECK(copy.used_ring() == test::VirtqueueBuilder::kUsedRing);
    CHECK(copy.indirect());
    CHECK(copy.event_idx());
    CHECK(copy.next_avail() == 65532);
    CHECK(copy.next_used() == 65532);
    CHECK_FALSE(copy.needs_notification(q.memory()));  // nothing used since the last check
    // The copy carries on with the third chain, across the wrap.
    auto third = copy.pop(q.memory());
    REQUIRE(third);
    CHECK(third->head() == 2);
    CHECK_FALSE(copy.pop(q.memory()));
    copy.add_used(q.memory(), third->head(), 8);
    CHECK(q.used_idx() == 65533);
    // A chain popped before the restore belongs to the old queue.
    CHECK_THROWS_AS(copy.give_back(*first), vmm::Error);
}

TEST_CASE("queue state: a bad size, another maximum or a truncation is refused", "[state]") {
    vmm::Queue queue(256);
    queue.set_size(64);
    queue.set_ready(true);
    queue.set_desc_table(GuestAddress(0x1000));
    Bytes good = saved(queue);

    vmm::Queue target(256);
    target.set_size(32);
    SECTION("a ready queue of a size that is not a power of two") {
        queue.set_size(12);
        CHECK_THROWS_WITH(restore(target, saved(queue)), Contains("not a power of two"));
    }
    SECTION("a ready queue larger than its maximum") {
        queue.set_size(512);
        CHECK_THROWS_WITH(restore(target, saved(queue)), Contains("not a power of two up to 256"));
    }
    SECTION("a ready queue of size 0") {
        queue.set_size(0);
        CHECK_THROWS_AS(restore(target, saved(queue)), StateError);
    }
    SECTION("another maximum size") {
        vmm::Queue small(128);
        CHECK_THROWS_WITH(restore(small, good), Contains("maximum size 256"));
    }
    SECTION("every truncation") {
        for (size_t length = 0; length < good.size(); ++length) {
            Bytes cut(good.begin(), good.begin() + length);
            CHECK_THROWS_AS(restore(target, cut), StateError);
        }
    }
    SECTION("a flag that is neither 0 nor 1") {
        Bytes bad = good;
        bad[4] = 2;  // ready, after max_size and size
        CHECK_THROWS_WITH(restore(target, bad), Contains("flag of value 2"));
    }
    // Refused states leave the queue as it was.
    CHECK(target.size() == 32);
    CHECK_FALSE(target.ready());
    CHECK(target.desc_table() == GuestAddress(0));
}

TEST_CASE("queue state: a queue that is not ready keeps whatever size was written", "[state]") {
    vmm::Queue queue(256);
    queue.set_size(1000);  // QueueNum takes anything until QueueReady
    vmm::Queue copy(256);
    restore(copy, saved(queue));
    CHECK(copy.size() == 1000);
    CHECK_FALSE(copy.ready());
}

namespace {

// MMIO register offsets (VIRTIO 1.2, table 4.1).
constexpr uint64_t kDeviceFeaturesSel = 0x014;
constexpr uint64_t kDriverFeatures = 0x020;
constexpr uint64_t kDriverFeaturesSel = 0x024;
constexpr uint64_t kQueueSel = 0x030;
constexpr uint64_t kQueueNum = 0x038;
constexpr uint64_t kQueueReady = 0x044;
constexpr uint64_t kInterruptStatus = 0x060;
constexpr uint64_t kInterruptAck = 0x064;
constexpr uint64_t kStatus = 0x070;
constexpr uint64_t kQueueDescLow = 0x080;
constexpr uint64_t kQueueDriverLow = 0x090;
constexpr uint64_t kQueueDeviceLow = 0x0a0;
constexpr uint64_t kConfigGeneration = 0x0fc;
constexpr uint64_t kConfig = 0x100;

constexpr uint32_t kLive = vmm::VIRTIO_STATUS_ACKNOWLEDGE | vmm::VIRTIO_STATUS_DRIVER |
                           vmm::VIRTIO_STATUS_FEATURES_OK | vmm::VIRTIO_STATUS_DRIVER_OK;
constexpr uint64_t kMemorySize = 4 << 20;
constexpr uint16_t kQueueSize = 16;
constexpr uint64_t kDataStart = 0x100000;

uint64_t queue_base(size_t index) {
    return 0x10000 * (index + 1);
}

// The driver's side of a virtio-mmio device in test guest memory: register
// writes, and queues of 16 entries at queue_base() (descriptors, then the
// driver and device areas 4 KiB apart). Its ring positions live here, so a
// second transport over the same memory finds them where the first left.
struct Driver {
    explicit Driver(const vmm::GuestMemory& memory) : memory(memory) {}

    uint32_t read32(MmioTransport& transport, uint64_t offset) {
        std::array<uint8_t, 4> bytes{};
        transport.read(offset, bytes);
        uint32_t value;
        std::memcpy(&value, bytes.data(), 4);
        return value;
    }
    void write32(MmioTransport& transport, uint64_t offset, uint32_t value) {
        std::array<uint8_t, 4> bytes;
        std::memcpy(bytes.data(), &value, 4);
        transport.write(offset, bytes);
    }
    // ACKNOWLEDGE .. DRIVER_OK with `features`, every queue laid out.
    void bring_up(MmioTransport& transport, uint64_t features) {
        write32(transport, kStatus, vmm::VIRTIO_STATUS_ACKNOWLEDGE);
        write32(transport, kStatus, vmm::VIRTIO_STATUS_ACKNOWLEDGE | vmm::VIRTIO_STATUS_DRIVER);
        for (uint32_t half = 0; half < 2; ++half) {
            write32(transport, kDriverFeaturesSel, half);
            write32(transport, kDriverFeatures, uint32_t(features >> (32 * half)));
        }
        write32(transport, kStatus, kLive & ~vmm::VIRTIO_STATUS_DRIVER_OK);
        for (uint32_t q = 0; q < transport.queue_count(); ++q) {
            write32(transport, kQueueSel, q);
            write32(transport, kQueueNum, kQueueSize);
            write32(transport, kQueueDescLow, uint32_t(queue_base(q)));
            write32(transport, kQueueDriverLow, uint32_t(queue_base(q) + 0x1000));
            write32(transport, kQueueDeviceLow, uint32_t(queue_base(q) + 0x2000));
            write32(transport, kQueueReady, 1);
        }
        write32(transport, kStatus, kLive);
    }

    uint64_t alloc(uint64_t bytes) {
        uint64_t address = next_data;
        next_data = (next_data + bytes + 15) & ~uint64_t(15);
        return address;
    }
    struct Buffer {
        uint64_t addr;
        uint32_t len;
        bool writable;
    };
    Buffer readable(const Bytes& bytes) {
        Buffer buffer{alloc(bytes.size()), uint32_t(bytes.size()), false};
        memory.write(GuestAddress(buffer.addr), std::span<const uint8_t>(bytes));
        return buffer;
    }
    Buffer writable(uint32_t len, uint8_t fill = 0xee) {
        Buffer buffer{alloc(len), len, true};
        memory.fill(GuestAddress(buffer.addr), len, fill);
        return buffer;
    }
    // Links `buffers` into free descriptors of queue `q` and publishes the chain.
    uint16_t add_chain(size_t q, const std::vector<Buffer>& buffers) {
        uint16_t head = next_desc[q];
        for (size_t i = 0; i < buffers.size(); ++i) {
            uint16_t index = next_desc[q];
            next_desc[q] = uint16_t((next_desc[q] + 1) % kQueueSize);
            uint16_t flags = buffers[i].writable ? vmm::VIRTQ_DESC_F_WRITE : 0;
            if (i + 1 < buffers.size()) {
                flags |= vmm::VIRTQ_DESC_F_NEXT;
            }
            memory.write_obj(GuestAddress(queue_base(q) + 16ull * index),
                             vmm::VirtqDesc{buffers[i].addr, buffers[i].len, flags, next_desc[q]});
        }
        uint64_t avail = queue_base(q) + 0x1000;
        memory.write_obj(GuestAddress(avail + 4 + 2ull * (avail_idx[q] % kQueueSize)), head);
        ++avail_idx[q];
        memory.write_obj(GuestAddress(avail + 2), avail_idx[q]);
        return head;
    }
    uint16_t used_idx(size_t q) const {
        return memory.read_obj<uint16_t>(GuestAddress(queue_base(q) + 0x2002));
    }
    vmm::VirtqUsedElem used_elem(size_t q, uint16_t slot) const {
        return memory.read_obj<vmm::VirtqUsedElem>(
            GuestAddress(queue_base(q) + 0x2004 + 8ull * (slot % kQueueSize)));
    }
    Bytes read(const Buffer& buffer) const {
        return test::read_guest(memory, buffer.addr, buffer.len);
    }

    const vmm::GuestMemory& memory;
    uint64_t next_data = kDataStart;
    std::array<uint16_t, 2> next_desc{};
    std::array<uint16_t, 2> avail_idx{};
};

Bytes save(MmioTransport& transport) {
    StateWriter out;
    transport.save_state(out);
    return out.take();
}

void restore(MmioTransport& transport, const Bytes& state) {
    StateReader in(state, "virtio-test");
    transport.restore_state(in);
}

std::unique_ptr<MmioTransport> rng_transport(const vmm::GuestMemory& memory) {
    return std::make_unique<MmioTransport>(memory, std::make_unique<vmm::RngDevice>(), "rng");
}

bool all_equal(const Bytes& bytes, uint8_t value) {
    return std::all_of(bytes.begin(), bytes.end(), [value](uint8_t b) { return b == value; });
}

}  // namespace

TEST_CASE("transport state: rng restored into a new transport serves the next request", "[state]") {
    auto memory = vmm::GuestMemory::create({{GuestAddress(0), kMemorySize}});
    Driver driver(memory);
    auto first = rng_transport(memory);
    driver.bring_up(*first, kVersion1 | kEventIdx);
    // One request served, its interrupt not acknowledged; a second one made
    // available but not yet processed when the snapshot is taken.
    auto served = driver.writable(64);
    driver.add_chain(0, {served});
    first->process_queue_event(0);
    REQUIRE(driver.used_idx(0) == 1);
    CHECK(first->interrupt_event().consume());
    auto pending = driver.writable(64);
    driver.add_chain(0, {pending});
    driver.write32(*first, kDeviceFeaturesSel, 1);
    Bytes state = save(*first);
    first.reset();

    auto second = rng_transport(memory);
    restore(*second, state);
    CHECK(second->status() == kLive);
    CHECK(driver.read32(*second, kInterruptStatus) == 1);
    CHECK(second->interrupt_event().consume());  // raised again
    // Device features select kept: the high word (VERSION_1) reads back.
    CHECK(driver.read32(*second, 0x010) == 1);
    driver.write32(*second, kQueueSel, 0);
    CHECK(driver.read32(*second, kQueueReady) == 1);
    // The pending request is looked at without a new notification.
    REQUIRE(second->queue_event(0).consume());
    CHECK(driver.used_idx(0) == 1);
    second->process_queue_event(0);
    REQUIRE(driver.used_idx(0) == 2);
    CHECK(driver.used_elem(0, 1).len == 64);
    CHECK_FALSE(all_equal(driver.read(pending), 0xee));
    // With EVENT_IDX kept, the device asks to be told of the next entry.
    CHECK(memory.read_obj<uint16_t>(GuestAddress(queue_base(0) + 0x2004 + 8 * kQueueSize)) == 2);
    driver.write32(*second, kInterruptAck, 1);
    CHECK(driver.read32(*second, kInterruptStatus) == 0);
    // And the driver can reset and start it again.
    driver.write32(*second, kStatus, 0);
    CHECK(second->status() == 0);
}

TEST_CASE("transport state: a device the driver never started restores as such", "[state]") {
    auto memory = vmm::GuestMemory::create({{GuestAddress(0), kMemorySize}});
    Driver driver(memory);
    auto first = rng_transport(memory);
    driver.write32(*first, kStatus, vmm::VIRTIO_STATUS_ACKNOWLEDGE);
    Bytes state = save(*first);
    auto second = rng_transport(memory);
    restore(*second, state);
    CHECK(second->status() == vmm::VIRTIO_STATUS_ACKNOWLEDGE);
    CHECK_FALSE(second->queue_event(0).consume());
    CHECK_FALSE(second->interrupt_event().consume());
}

TEST_CASE("transport state: refused restores say why and leave the transport reset", "[state]") {
    auto memory = vmm::GuestMemory::create({{GuestAddress(0), kMemorySize}});
    Driver driver(memory);
    auto first = rng_transport(memory);
    driver.bring_up(*first, kVersion1);
    Bytes state = save(*first);

    SECTION("onto a device of another type") {
        vmm::ConsoleDevice* console = nullptr;
        auto owned =
            std::make_unique<vmm::ConsoleDevice>([](auto bytes) { return bytes.size(); }, 80, 25);
        console = owned.get();
        MmioTransport other(memory, std::move(owned), "console");
        CHECK_THROWS_WITH(restore(other, state), Contains("type 4, this one is of type 3"));
        CHECK(other.status() == 0);
        CHECK(console->input()->pending() == 0);
    }
    SECTION("a transport a driver has used") {
        auto used = rng_transport(memory);
        driver.write32(*used, kStatus, vmm::VIRTIO_STATUS_ACKNOWLEDGE);
        driver.write32(*used, kStatus, 0);
        CHECK_THROWS_WITH(restore(*used, state), Contains("no driver has used"));
    }
    SECTION("an unknown status bit") {
        Bytes bad = state;
        bad[12] |= 0x20;  // status: after the type (u32) and the offer (u64)
        auto second = rng_transport(memory);
        CHECK_THROWS_WITH(restore(*second, bad), Contains("not one a driver can reach"));
        CHECK(second->status() == 0);
    }
    SECTION("DRIVER_OK without FEATURES_OK") {
        Bytes bad = state;
        bad[12] &= ~vmm::VIRTIO_STATUS_FEATURES_OK;
        auto second = rng_transport(memory);
        CHECK_THROWS_AS(restore(*second, bad), StateError);
    }
    SECTION("driver features beyond the offer") {
        Bytes bad = state;
        bad[24 + 3] |= 0x80;  // driver features (after two selects): bit 31
        auto second = rng_transport(memory);
        CHECK_THROWS_WITH(restore(*second, bad), Contains("not a VERSION_1 subset"));
    }
    SECTION("a live queue outside guest memory") {
        auto small = vmm::GuestMemory::create({{GuestAddress(0), 0x11000}});
        auto second = rng_transport(small);
        CHECK_THROWS_WITH(restore(*second, state), Contains("cannot be activated again"));
        CHECK(second->status() == 0);
        CHECK_FALSE(second->interrupt_event().consume());
    }
    SECTION("every truncation") {
        for (size_t length = 0; length < state.size(); ++length) {
            auto second = rng_transport(memory);
            Bytes cut(state.begin(), state.begin() + length);
            CHECK_THROWS_AS(restore(*second, cut), StateError);
            CHECK(second->status() == 0);
        }
    }
    SECTION("a byte too many") {
        Bytes longer = state;
        longer.push_back(0);
        auto second = rng_transport(memory);
        CHECK_THROWS_WITH(restore(*second, longer), Contains("left over"));
    }
    SECTION("any one byte corrupted: an error or a state that works, never a crash") {
        for (size_t at = 0; at < state.size(); ++at) {
            for (uint8_t value : {0x00, 0x01, 0x7f, 0xff}) {
                Bytes bad = state;
                bad[at] = value;
                auto second = rng_transport(memory);
                try {
                    restore(*second, bad);
                } catch (const vmm::Error&) {
                    CHECK(second->status() == 0);
                }
            }
        }
    }
}

namespace {

constexpr uint64_t kSectors = 64;

struct BlkHeader {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};

struct BlockSetup {
    BlockSetup(const std::string& path, bool read_only, vmm::BlockDevice::Engine engine,
               const vmm::GuestMemory& memory) {
        auto owned = std::make_unique<vmm::BlockDevice>(
            std::make_unique<vmm::DiskImage>(path, read_only), "disk-id", engine);
        device = owned.get();
        transport = std::make_unique<MmioTransport>(memory, std::move(owned), "block");
    }
    vmm::BlockDevice* device;
    std::unique_ptr<MmioTransport> transport;
};

struct BlockRequestBuffers {
    Driver::Buffer data;
    Driver::Buffer status;
};

BlockRequestBuffers add_block_request(Driver& driver, uint32_t type, uint64_t sector,
                                      const Bytes& write_data = {}) {
    Bytes header(sizeof(BlkHeader));
    BlkHeader value{type, 0, sector};
    std::memcpy(header.data(), &value, sizeof(value));
    auto header_buffer = driver.readable(header);
    auto status = driver.writable(1, 0xff);
    if (type == vmm::kBlkTypeIn) {
        auto data = driver.writable(512);
        driver.add_chain(0, {header_buffer, data, status});
        return {data, status};
    }
    auto data = driver.readable(write_data);
    if (write_data.empty()) {
        driver.add_chain(0, {header_buffer, status});
    } else {
        driver.add_chain(0, {header_buffer, data, status});
    }
    return {data, status};
}

uint8_t status_of(const Driver& driver, const BlockRequestBuffers& request) {
    return driver.read(request.status).at(0);
}

}  // namespace

TEST_CASE("transport state: block restored onto the same disk reads the right data",
          "[state][block]") {
    auto engine = GENERATE(vmm::BlockDevice::Engine::Sync, vmm::BlockDevice::Engine::Auto);
    Bytes contents = test::pattern(kSectors * 512, 9);
    test::TempFile file(contents);
    auto memory = vmm::GuestMemory::create({{GuestAddress(0), kMemorySize}});
    Driver driver(memory);
    Bytes state;
    uint64_t features = kVersion1 | kEventIdx;
    BlockRequestBuffers pending{};
    {
        BlockSetup first(file.path(), false, engine, memory);
        driver.bring_up(*first.transport, features);
        auto done = add_block_request(driver, vmm::kBlkTypeIn, 1);
        first.transport->process_queue_event(0);
        first.device->drain();
        REQUIRE(status_of(driver, done) == vmm::kBlkStatusOk);
        // Made available, not yet processed when the snapshot is taken.
        pending = add_block_request(driver, vmm::kBlkTypeIn, 5);
        state = save(*first.transport);
        CHECK(driver.used_idx(0) == 1);
        // The disk is locked: the first device lets go of it before the second opens it.
    }
    BlockSetup second(file.path(), false, engine, memory);
    restore(*second.transport, state);
    CHECK(second.transport->status() == kLive);
    REQUIRE(second.transport->queue_event(0).consume());
    second.transport->process_queue_event(0);
    second.device->drain();
    REQUIRE(driver.used_idx(0) == 2);
    CHECK(driver.used_elem(0, 1).len == 513);
    CHECK(status_of(driver, pending) == vmm::kBlkStatusOk);
    CHECK(driver.read(pending.data) ==
          Bytes(contents.begin() + 5 * 512, contents.begin() + 6 * 512));

    // And the device goes on: a new request after the restore.
    auto next = add_block_request(driver, vmm::kBlkTypeIn, 7);
    second.transport->process_queue_event(0);
    second.device->drain();
    CHECK(driver.used_idx(0) == 3);
    CHECK(status_of(driver, next) == vmm::kBlkStatusOk);
    CHECK(driver.read(next.data) == Bytes(contents.begin() + 7 * 512, contents.begin() + 8 * 512));
}

TEST_CASE("transport state: block refuses another disk", "[state][block]") {
    test::TempFile file = test::TempFile::sparse(kSectors * 512);
    auto memory = vmm::GuestMemory::create({{GuestAddress(0), kMemorySize}});
    Driver driver(memory);
    Bytes state;
    {
        BlockSetup first(file.path(), false, vmm::BlockDevice::Engine::Sync, memory);
        driver.bring_up(*first.transport, kVersion1);
        state = save(*first.transport);
    }
    SECTION("of another size") {
        test::TempFile bigger = test::TempFile::sparse(2 * kSectors * 512);
        BlockSetup second(bigger.path(), false, vmm::BlockDevice::Engine::Sync, memory);
        CHECK_THROWS_WITH(restore(*second.transport, state),
                          Contains("the snapshot's disk had 64 sectors") && Contains("has 128"));
        CHECK(second.transport->status() == 0);
        CHECK(second.device->in_flight() == 0);
    }
    SECTION("read-only where it was read-write: the offer differs") {
        BlockSetup second(file.path(), true, vmm::BlockDevice::Engine::Sync, memory);
        CHECK_THROWS_WITH(restore(*second.transport, state), Contains("offered features"));
    }
}

TEST_CASE("transport state: block requests in flight are completed before the save",
          "[state][block]") {
    auto engine = GENERATE(vmm::BlockDevice::Engine::Sync, vmm::BlockDevice::Engine::Auto);
    // Megabytes written, then flushed: with io_uring the flush (and likely
    // the writes) is still running when process_queue_event() returns.
    constexpr uint32_t kWrites = 4;  // 3 descriptors each, a flush of 2: 14 of 16
    constexpr uint32_t kWriteBytes = 1 << 20;
    test::TempFile file = test::TempFile::sparse(kWrites * kWriteBytes);
    auto memory = vmm::GuestMemory::create({{GuestAddress(0), 16 << 20}});
    Driver driver(memory);
    BlockSetup first(file.path(), false, engine, memory);
    driver.bring_up(*first.transport, kVersion1 | (1ull << 9));  // FLUSH
    Bytes data = test::pattern(kWriteBytes, 3);
    std::vector<BlockRequestBuffers> requests;
    for (uint32_t i = 0; i < kWrites; ++i) {
        requests.push_back(add_block_request(driver, vmm::kBlkTypeOut, i * 2048, data));
    }
    requests.push_back(add_block_request(driver, vmm::kBlkTypeFlush, 0));
    first.transport->process_queue_event(0);
    size_t in_flight = first.device->in_flight();
    if (engine == vmm::BlockDevice::Engine::Auto && in_flight == 0) {
        WARN("io_uring finished every request at once: nothing was in flight at the save");
    }
    Bytes state = save(*first.transport);
    CHECK(first.device->in_flight() == 0);
    REQUIRE(driver.used_idx(0) == kWrites + 1);
    for (const auto& request : requests) {
        CHECK(status_of(driver, request) == vmm::kBlkStatusOk);
    }
    // The saved queue knows all were used: restored, the next one goes after them.
    first.transport.reset();
    BlockSetup second(file.path(), false, engine, memory);
    restore(*second.transport, state);
    auto read = add_block_request(driver, vmm::kBlkTypeIn, 3 * 2048 + 1);
    second.transport->process_queue_event(0);
    second.device->drain();
    REQUIRE(driver.used_idx(0) == kWrites + 2);
    CHECK(driver.read(read.data) == Bytes(data.begin() + 512, data.begin() + 1024));
}

TEST_CASE("console state: size and pending input survive; a broken state is refused", "[state]") {
    auto sink = [](std::span<const uint8_t> bytes) { return bytes.size(); };
    vmm::ConsoleDevice first(sink, 80, 25);
    first.set_size(132, 43);
    Bytes input = test::pattern(1000, 5);
    REQUIRE(first.input()->enqueue_input(input) == input.size());
    StateWriter out;
    first.save_state(out);
    Bytes state = out.take();
    CHECK(first.input()->pending() == input.size());  // saving takes nothing

    vmm::ConsoleDevice second(sink, 80, 25);
    second.input()->event().consume();
    StateReader in(state, "console");
    second.restore_state(in);
    in.expect_end();
    std::array<uint8_t, 4> size{};
    second.read_config(0, size);
    CHECK(size == std::array<uint8_t, 4>{132, 0, 43, 0});
    CHECK(second.input()->peek() == input);
    CHECK(second.input()->event().consume());

    SECTION("more input than the buffer holds") {
        StateWriter bad;
        bad.u16(80);
        bad.u16(25);
        bad.bytes(Bytes(vmm::ConsoleInputBuffer::kCapacity + 1));
        vmm::ConsoleDevice third(sink, 80, 25);
        StateReader bad_in(bad.data(), "console");
        CHECK_THROWS_WITH(third.restore_state(bad_in), Contains("at most 65536"));
        CHECK(third.input()->pending() == 0);
    }
}

TEST_CASE("console state: a transmit chain sent in part is finished before the save", "[state]") {
    auto memory = vmm::GuestMemory::create({{GuestAddress(0), kMemorySize}});
    Driver driver(memory);
    Bytes output;
    auto owned = std::make_unique<vmm::ConsoleDevice>(
        [&output](std::span<const uint8_t> bytes) {
            output.insert(output.end(), bytes.begin(), bytes.end());
            return bytes.size();
        },
        80, 25);
    MmioTransport transport(memory, std::move(owned), "console");
    driver.bring_up(transport, kVersion1);
    // More than one call's output budget (256 KiB).
    Bytes text = test::pattern(300 * 1024, 7);
    driver.add_chain(vmm::ConsoleDevice::kTransmitQueue, {driver.readable(text)});
    transport.process_queue_event(vmm::ConsoleDevice::kTransmitQueue);
    REQUIRE(output.size() == vmm::ConsoleDevice::kMaxOutputBytesPerCall);
    CHECK(driver.used_idx(vmm::ConsoleDevice::kTransmitQueue) == 0);
    save(transport);
    CHECK(output == text);
    CHECK(driver.used_idx(vmm::ConsoleDevice::kTransmitQueue) == 1);
}

TEST_CASE("net state: a received frame waiting for buffers is delivered after the restore",
          "[state]") {
    auto memory = vmm::GuestMemory::create({{GuestAddress(0), kMemorySize}});
    Driver driver(memory);
    auto mac = vmm::MacAddress::parse("02:00:00:00:00:01");
    test::SocketNetBackend::Shared shared_a, shared_b;
    auto first = std::make_unique<MmioTransport>(
        memory,
        std::make_unique<vmm::NetDevice>(std::make_unique<test::SocketNetBackend>(shared_a), mac,
                                         "net0"),
        "net0");
    driver.bring_up(*first, kVersion1);
    // A frame arrives while the driver has posted no receive buffer.
    Bytes frame = test::pattern(12 + 100, 4);
    test::host_send(shared_a, frame);
    first->process_backend_event(0);
    CHECK(driver.used_idx(vmm::NetDevice::kRxQueue) == 0);
    Bytes state = save(*first);
    first.reset();

    MmioTransport second(memory,
                         std::make_unique<vmm::NetDevice>(
                             std::make_unique<test::SocketNetBackend>(shared_b), mac, "net0"),
                         "net0");
    restore(second, state);
    auto buffer = driver.writable(2048);
    driver.add_chain(vmm::NetDevice::kRxQueue, {buffer});
    second.process_queue_event(vmm::NetDevice::kRxQueue);
    REQUIRE(driver.used_idx(vmm::NetDevice::kRxQueue) == 1);
    CHECK(driver.used_elem(vmm::NetDevice::kRxQueue, 0).len == frame.size());
    Bytes received = driver.read(buffer);
    // All but num_buffers (bytes 10 and 11, the device's to fill) as sent.
    CHECK(Bytes(received.begin() + 12, received.begin() + 112) ==
          Bytes(frame.begin() + 12, frame.end()));
    CHECK(Bytes(received.begin(), received.begin() + 10) ==
          Bytes(frame.begin(), frame.begin() + 10));
}

TEST_CASE("net state: the MAC address and MTU must match", "[state]") {
    test::SocketNetBackend::Shared shared_a, shared_b;
    auto mac = vmm::MacAddress::parse("02:00:00:00:00:01");
    vmm::NetDevice first(std::make_unique<test::SocketNetBackend>(shared_a), mac, "net0");
    StateWriter out;
    first.save_state(out);
    Bytes state = out.take();

    SECTION("the same address and MTU") {
        vmm::NetDevice second(std::make_unique<test::SocketNetBackend>(shared_b), mac, "net0");
        StateReader in(state, "net0");
        second.restore_state(in);
        in.expect_end();
    }
    SECTION("another address") {
        vmm::NetDevice second(std::make_unique<test::SocketNetBackend>(shared_b),
                              vmm::MacAddress::parse("02:00:00:00:00:02"), "net0");
        StateReader in(state, "net0");
        CHECK_THROWS_WITH(second.restore_state(in),
                          Contains("02:00:00:00:00:01") && Contains("02:00:00:00:00:02"));
    }
    SECTION("another MTU") {
        vmm::NetDevice second(std::make_unique<test::SocketNetBackend>(shared_b, 9000), mac,
                              "net0");
        StateReader in(state, "net0");
        CHECK_THROWS_WITH(second.restore_state(in), Contains("MTU was 1500"));
    }
}

namespace {

struct Uart {
    int interrupts = 0;
    vmm::Serial8250 serial{[this] { ++interrupts; },
                           [](std::span<const uint8_t> bytes) { return bytes.size(); }};

    uint8_t in(uint64_t offset) {
        std::array<uint8_t, 1> byte{0xee};
        serial.read(offset, byte);
        return byte[0];
    }
    void out(uint64_t offset, uint8_t value) {
        std::array<uint8_t, 1> byte{value};
        serial.write(offset, byte);
    }
    Bytes save() const {
        StateWriter state;
        serial.save_state(state);
        return state.take();
    }
    void restore(const Bytes& state) {
        StateReader reader(state, "serial");
        serial.restore_state(reader);
        reader.expect_end();
    }
};

}  // namespace

TEST_CASE("serial state: a restored THRE interrupt enable ends plain (coalesced) transmit",
          "[state][serial]") {
    Uart first;
    first.out(1, 0x02);  // THRE interrupts on
    Bytes state = first.save();

    Uart second;
    std::vector<bool> told;
    second.serial.set_plain_transmit_listener([&told](bool plain) { told.push_back(plain); });
    REQUIRE(told == std::vector<bool>{true});
    second.restore(state);
    CHECK(told == std::vector<bool>{true, false});
}

TEST_CASE("serial state: registers and input survive, a pending interrupt is raised again",
          "[state][serial]") {
    Uart first;
    first.out(3, 0x80);  // DLAB: the divisor latch
    first.out(0, 0x01);  // 115200 baud
    first.out(1, 0x00);
    first.out(3, 0x1b);  // 8 data bits, even parity
    first.out(7, 0x5a);  // scratch
    first.out(2, 0x01);  // FIFO on
    first.out(1, 0x01);  // received-data interrupts
    REQUIRE(first.serial.enqueue_input(Bytes{'a', 'b', 'c'}) == 3);
    REQUIRE(first.interrupts == 1);
    Bytes state = first.save();

    Uart second;
    second.restore(state);
    CHECK(second.interrupts == 1);  // the guest still has to see it
    CHECK(second.in(3) == 0x1b);
    CHECK(second.in(7) == 0x5a);
    CHECK(second.in(1) == 0x01);
    CHECK(second.in(4) == 0x08);     // OUT2 as it was
    CHECK(second.in(2) == 0xc4);     // FIFO on, received data pending
    CHECK((second.in(5) & 1) == 1);  // data ready
    second.out(3, 0x9b);
    CHECK(second.in(0) == 0x01);
    CHECK(second.in(1) == 0x00);
    second.out(3, 0x1b);
    CHECK(second.in(0) == 'a');
    CHECK(second.in(0) == 'b');
    CHECK(second.in(0) == 'c');
    CHECK((second.in(5) & 1) == 0);
}

TEST_CASE("serial state: no interrupt without a pending condition; overlong input refused",
          "[state][serial]") {
    Uart first;
    REQUIRE(first.serial.enqueue_input(Bytes{'x'}) == 1);  // interrupts off
    Bytes state = first.save();
    Uart second;
    second.restore(state);
    CHECK(second.interrupts == 0);
    CHECK(second.in(0) == 'x');

    StateWriter bad;
    for (int i = 0; i < 7; ++i) {
        bad.u8(0);
    }
    bad.boolean(false);
    bad.boolean(false);
    bad.bytes(Bytes(vmm::Serial8250::kInputCapacity + 1, 'y'));
    Uart third;
    CHECK_THROWS_WITH(third.restore(bad.data()), Contains("at most 65536"));
    CHECK((third.in(5) & 1) == 0);  // left as it was: no input

    Bytes reserved = state;
    reserved[0] = 0xf1;  // IER bits the guest cannot set
    CHECK_THROWS_WITH(third.restore(reserved), Contains("reserved bits"));
}

namespace {

struct Keyboard {
    int interrupts = 0;
    int resets = 0;
    vmm::I8042 i8042{[this] { ++resets; }, [this] { ++interrupts; }};

    uint8_t in(uint64_t offset) {
        std::array<uint8_t, 1> byte{0xee};
        i8042.read(offset, byte);
        return byte[0];
    }
    void out(uint64_t offset, uint8_t value) {
        std::array<uint8_t, 1> byte{value};
        i8042.write(offset, byte);
    }
    Bytes save() const {
        StateWriter state;
        i8042.save_state(state);
        return state.take();
    }
    void restore(const Bytes& state) {
        StateReader reader(state, "i8042");
        i8042.restore_state(reader);
        reader.expect_end();
    }
};

}  // namespace

TEST_CASE("i8042 state: buffered keyboard bytes survive and raise IRQ 1 again", "[state][i8042]") {
    Keyboard first;
    first.out(0, 0xf2);  // get ID: ACK, 0xab, 0x83
    REQUIRE(first.interrupts == 1);
    first.out(4, 0x60);  // write command byte: waits for its parameter
    Bytes state = first.save();

    Keyboard second;
    second.restore(state);
    CHECK(second.interrupts == 1);
    CHECK((second.in(4) & 0x01) == 0x01);  // output buffer full
    second.out(0, 0x45);                   // the command byte parameter, still expected
    CHECK(second.in(0) == 0xfa);
    CHECK(second.in(0) == 0xab);
    CHECK(second.in(0) == 0x83);
    CHECK((second.in(4) & 0x01) == 0);
    CHECK(second.interrupts == 3);  // one for each byte delivered after the first
    second.out(4, 0x20);            // read the command byte back
    CHECK(second.in(0) == 0x45);
    CHECK(second.resets == 0);
}

TEST_CASE("i8042 state: nothing pending raises nothing; corrupt states are refused",
          "[state][i8042]") {
    Keyboard first;
    Bytes state = first.save();
    Keyboard second;
    second.restore(state);
    CHECK(second.interrupts == 0);

    // Hand-built states: output, from keyboard, command byte, output port,
    // controller parameter, keyboard buffer, keyboard parameter, scanning, last byte.
    auto build = [](bool output, bool from_keyboard, uint8_t controller_param, size_t buffered,
                    uint8_t keyboard_param) {
        StateWriter out;
        out.boolean(output);
        out.u8(0xfa);
        out.boolean(from_keyboard);
        out.u8(0x45);
        out.u8(0x03);
        out.boolean(controller_param != 0);
        out.u8(controller_param);
        out.bytes(Bytes(buffered, 0x1e));
        out.boolean(keyboard_param != 0);
        out.u8(keyboard_param);
        out.boolean(true);
        out.boolean(false);
        out.u8(0);
        return out.take();
    };
    Keyboard third;
    third.restore(build(true, true, 0x60, 16, 0xed));  // the fullest valid state
    CHECK(third.interrupts == 1);
    Keyboard fourth;
    CHECK_THROWS_WITH(fourth.restore(build(true, true, 0, 17, 0)), Contains("at most 16"));
    CHECK_THROWS_WITH(fourth.restore(build(true, true, 0xaa, 0, 0)),
                      Contains("command 0xaa takes no parameter"));
    CHECK_THROWS_WITH(fourth.restore(build(true, true, 0, 0, 0xf4)),
                      Contains("command 0xf4 takes no parameter"));
    CHECK_THROWS_WITH(fourth.restore(build(false, true, 0, 0, 0)), Contains("empty output buffer"));
    CHECK(fourth.interrupts == 0);
    CHECK((fourth.in(4) & 0x01) == 0);
}
