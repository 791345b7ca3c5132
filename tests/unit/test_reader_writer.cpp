// ChainReader / ChainWriter: byte-stream cursors over the readable and the
// writable buffers of a chain, across buffer boundaries, and zero-copy slices.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "devices/virtio/reader_writer.hpp"
#include "test_helpers.hpp"
#include "virtqueue_builder.hpp"

using Catch::Matchers::Contains;
using test::Bytes;
using test::VirtqueueBuilder;
using vmm::ChainReader;
using vmm::ChainWriter;
using vmm::GuestAddress;
using vmm::QueueError;
using Desc = VirtqueueBuilder::Desc;

namespace {

// A chain of readable buffers of the given lengths, filled with one pattern
// that runs on from buffer to buffer, then one writable buffer per `writable`.
struct TestChain {
    vmm::DescriptorChain chain;
    Bytes readable;  // the concatenated readable contents
    std::vector<Desc> writable;
};

TestChain make_chain(VirtqueueBuilder& vq, const std::vector<uint32_t>& readable,
                     const std::vector<uint32_t>& writable) {
    std::vector<Desc> descs;
    Bytes contents;
    for (uint32_t len : readable) {
        Desc desc = vq.readable(len);
        Bytes part = test::pattern(len, static_cast<uint8_t>(contents.size() + 1));
        vq.memory().write(GuestAddress(desc.addr), part);
        contents.insert(contents.end(), part.begin(), part.end());
        descs.push_back(desc);
    }
    std::vector<Desc> writable_descs;
    for (uint32_t len : writable) {
        writable_descs.push_back(vq.writable(len));
        descs.push_back(writable_descs.back());
    }
    vq.add_chain(descs);
    auto chain = vq.queue().pop(vq.memory());
    REQUIRE(chain);
    return {*chain, contents, writable_descs};
}

// What the writable buffers hold, concatenated.
Bytes written(const VirtqueueBuilder& vq, const std::vector<Desc>& writable) {
    Bytes all;
    for (const auto& desc : writable) {
        Bytes part = test::read_guest(vq.memory(), desc.addr, desc.len);
        all.insert(all.end(), part.begin(), part.end());
    }
    return all;
}

}  // namespace

TEST_CASE("ChainReader reads across buffer boundaries", "[reader_writer]") {
    VirtqueueBuilder vq;
    auto c = make_chain(vq, {3, 1, 7, 20}, {16});
    ChainReader reader(vq.memory(), c.chain);
    CHECK(reader.remaining() == 31);
    Bytes got;
    for (size_t chunk : {2, 5, 9, 100}) {
        Bytes part(chunk);
        size_t n = reader.read(part);
        part.resize(n);
        got.insert(got.end(), part.begin(), part.end());
    }
    CHECK(got == c.readable);
    CHECK(reader.remaining() == 0);
    CHECK(reader.bytes_read() == 31);
    Bytes more(4);
    CHECK(reader.read(more) == 0);
}

TEST_CASE("ChainReader read_obj spans buffers and throws when short", "[reader_writer]") {
    VirtqueueBuilder vq;
    auto c = make_chain(vq, {3, 5, 2}, {});
    ChainReader reader(vq.memory(), c.chain);
    uint64_t expected;
    std::memcpy(&expected, c.readable.data(), 8);
    CHECK(reader.read_obj<uint64_t>() == expected);
    CHECK(reader.remaining() == 2);
    CHECK_THROWS_AS(reader.read_obj<uint32_t>(), QueueError);
    CHECK_THROWS_WITH(reader.read_obj<uint32_t>(),
                      Contains("needs 4 readable bytes but only 2 are left"));
    CHECK(reader.remaining() == 2);  // a failed read_obj consumes nothing
    CHECK(reader.read_obj<uint16_t>() == uint16_t(c.readable[8] | c.readable[9] << 8));
}

TEST_CASE("ChainReader skip moves across buffers, not past the end", "[reader_writer]") {
    VirtqueueBuilder vq;
    auto c = make_chain(vq, {4, 4, 4}, {});
    ChainReader reader(vq.memory(), c.chain);
    reader.skip(6);
    CHECK(reader.read_obj<uint8_t>() == c.readable[6]);
    reader.skip(0);
    CHECK_THROWS_WITH(reader.skip(6), Contains("needs 6 readable bytes but only 5 are left"));
    CHECK(reader.remaining() == 5);
    reader.skip(5);
    CHECK(reader.remaining() == 0);
}

TEST_CASE("ChainReader sees only the readable buffers, ChainWriter the writable",
          "[reader_writer]") {
    VirtqueueBuilder vq;
    auto c = make_chain(vq, {8}, {5, 6});
    ChainReader reader(vq.memory(), c.chain);
    ChainWriter writer(vq.memory(), c.chain);
    CHECK(reader.remaining() == 8);
    CHECK(writer.remaining() == 11);
    Bytes all(100);
    CHECK(reader.read(all) == 8);
    CHECK(writer.remaining() == 11);
}

TEST_CASE("ChainReader and ChainWriter over a chain with no such buffers", "[reader_writer]") {
    VirtqueueBuilder vq;
    ChainReader reader(vq.memory(), make_chain(vq, {}, {4}).chain);
    ChainWriter writer(vq.memory(), make_chain(vq, {4}, {}).chain);
    Bytes buffer(4);
    CHECK(reader.remaining() == 0);
    CHECK(reader.read(buffer) == 0);
    CHECK(reader.slices(10).empty());
    CHECK(writer.remaining() == 0);
    CHECK(writer.write(buffer) == 0);
    CHECK_THROWS_AS(writer.write_obj<uint8_t>(1), QueueError);
}

TEST_CASE("ChainWriter writes across buffers and counts the bytes", "[reader_writer]") {
    VirtqueueBuilder vq;
    auto c = make_chain(vq, {4}, {3, 1, 10});
    ChainWriter writer(vq.memory(), c.chain);
    Bytes data = test::pattern(6, 40);
    CHECK(writer.write(data) == 6);
    writer.write_obj<uint32_t>(0xa1b2c3d4);
    CHECK(writer.bytes_written() == 10);
    CHECK(writer.remaining() == 4);
    Bytes tail = test::pattern(9, 90);
    CHECK(writer.write(tail) == 4);  // short at the end
    CHECK(writer.remaining() == 0);
    CHECK(writer.bytes_written() == 14);

    Bytes expected = data;
    for (uint8_t byte : {0xd4, 0xc3, 0xb2, 0xa1}) {
        expected.push_back(byte);
    }
    expected.insert(expected.end(), tail.begin(), tail.begin() + 4);
    CHECK(written(vq, c.writable) == expected);
}

TEST_CASE("ChainWriter write_obj that does not fit writes nothing", "[reader_writer]") {
    VirtqueueBuilder vq;
    auto c = make_chain(vq, {}, {2, 1});
    ChainWriter writer(vq.memory(), c.chain);
    CHECK_THROWS_WITH(writer.write_obj<uint32_t>(0xffffffff),
                      Contains("needs 4 writable bytes but only 3 are left"));
    CHECK(writer.bytes_written() == 0);
    CHECK(written(vq, c.writable) == Bytes{0, 0, 0});
    writer.write_obj<uint8_t>(7);
    writer.write_obj<uint16_t>(0x0908);
    CHECK(written(vq, c.writable) == Bytes{7, 8, 9});
}

TEST_CASE("ChainReader slices are the guest buffers, split at max_bytes", "[reader_writer]") {
    VirtqueueBuilder vq;
    auto c = make_chain(vq, {10, 20, 30}, {});
    ChainReader reader(vq.memory(), c.chain);
    reader.skip(4);
    auto first = reader.slices(21);
    REQUIRE(first.size() == 2);
    CHECK(first[0].size() == 6);
    CHECK(first[1].size() == 15);
    // The slices point at the guest bytes themselves.
    CHECK(std::memcmp(first[0].data(), c.readable.data() + 4, 6) == 0);
    CHECK(std::memcmp(first[1].data(), c.readable.data() + 10, 15) == 0);
    CHECK(reader.bytes_read() == 25);
    auto rest = reader.slices(1000);
    REQUIRE(rest.size() == 2);
    CHECK(rest[0].size() == 5);
    CHECK(rest[1].size() == 30);
    CHECK(reader.remaining() == 0);
    CHECK(reader.slices(1000).empty());
    CHECK(reader.slices(0).empty());
}

TEST_CASE("ChainWriter slices count as written and reach guest memory", "[reader_writer]") {
    VirtqueueBuilder vq;
    auto c = make_chain(vq, {1}, {8, 8});
    ChainWriter writer(vq.memory(), c.chain);
    writer.write_obj<uint16_t>(0x0201);
    auto slices = writer.slices(10);
    REQUIRE(slices.size() == 2);
    CHECK(slices[0].size() == 6);
    CHECK(slices[1].size() == 4);
    CHECK(writer.bytes_written() == 12);
    CHECK(writer.remaining() == 4);
    uint8_t value = 3;
    for (const auto& slice : slices) {
        for (size_t i = 0; i < slice.size(); ++i) {
            slice.data()[i] = value++;
        }
    }
    Bytes expected;
    for (uint8_t i = 1; i <= 12; ++i) {
        expected.push_back(i);
    }
    expected.resize(16, 0);
    CHECK(written(vq, c.writable) == expected);
}

TEST_CASE("ChainReader and ChainWriter walk an indirect chain", "[reader_writer]") {
    VirtqueueBuilder vq(8, 1ull << vmm::VIRTIO_F_RING_INDIRECT_DESC);
    Desc a = vq.readable(5);
    Desc b = vq.readable(7);
    Desc out = vq.writable(12);
    Bytes data = test::pattern(12, 3);
    vq.memory().write(GuestAddress(a.addr), std::span(data).first(5));
    vq.memory().write(GuestAddress(b.addr), std::span(data).subspan(5));
    vq.add_indirect_chain({a, b, out});
    auto chain = vq.queue().pop(vq.memory());
    REQUIRE(chain);
    ChainReader reader(vq.memory(), *chain);
    ChainWriter writer(vq.memory(), *chain);
    Bytes got(12);
    CHECK(reader.read(got) == 12);
    CHECK(got == data);
    CHECK(writer.write(got) == 12);
    CHECK(test::read_guest(vq.memory(), out.addr, 12) == data);
}

TEST_CASE("ChainReader outlives the chain it was made from", "[reader_writer]") {
    VirtqueueBuilder vq;
    auto c = make_chain(vq, {4, 4}, {});
    std::optional<ChainReader> reader;
    {
        auto copy = c.chain;
        reader.emplace(vq.memory(), copy);
    }
    Bytes got(8);
    CHECK(reader->read(got) == 8);
    CHECK(got == c.readable);
}

TEST_CASE("ChainReader split_at cuts a buffer in two", "[reader_writer]") {
    VirtqueueBuilder vq;
    auto c = make_chain(vq, {3, 1, 7, 20}, {16});
    ChainReader head(vq.memory(), c.chain);
    ChainReader rest = head.split_at(6);  // inside the 7-byte buffer
    CHECK(head.remaining() == 6);
    CHECK(rest.remaining() == 25);
    // Independent: the rest can be read first.
    Bytes tail(40);
    tail.resize(rest.read(tail));
    CHECK(tail == Bytes(c.readable.begin() + 6, c.readable.end()));
    CHECK(rest.bytes_read() == 25);
    CHECK(head.bytes_read() == 0);
    Bytes front(40);
    front.resize(head.read(front));
    CHECK(front == Bytes(c.readable.begin(), c.readable.begin() + 6));
    CHECK(head.remaining() == 0);
}

TEST_CASE("ChainReader split_at at a buffer boundary, at 0 and at the end", "[reader_writer]") {
    VirtqueueBuilder vq;
    auto c = make_chain(vq, {4, 4, 4}, {});
    auto contents = [](ChainReader& reader) {
        Bytes bytes(64);
        bytes.resize(reader.read(bytes));
        return bytes;
    };
    SECTION("a boundary") {
        ChainReader head(vq.memory(), c.chain);
        ChainReader rest = head.split_at(8);
        CHECK(contents(head) == Bytes(c.readable.begin(), c.readable.begin() + 8));
        CHECK(contents(rest) == Bytes(c.readable.begin() + 8, c.readable.end()));
    }
    SECTION("0: everything goes to the new reader") {
        ChainReader head(vq.memory(), c.chain);
        ChainReader rest = head.split_at(0);
        CHECK(head.remaining() == 0);
        CHECK(contents(rest) == c.readable);
    }
    SECTION("the end, and past it: the new reader is empty") {
        uint64_t offset = GENERATE(as<uint64_t>{}, 12, 13, 1ull << 32, ~0ull);
        ChainReader head(vq.memory(), c.chain);
        ChainReader rest = head.split_at(offset);
        CHECK(rest.remaining() == 0);
        CHECK(rest.slices(100).empty());
        CHECK_THROWS_AS(rest.read_obj<uint8_t>(), QueueError);
        CHECK(contents(head) == c.readable);
    }
}

TEST_CASE("ChainReader split_at counts from where the reader is", "[reader_writer]") {
    VirtqueueBuilder vq;
    auto c = make_chain(vq, {5, 5, 5}, {});
    ChainReader head(vq.memory(), c.chain);
    head.skip(3);
    SECTION("in the middle") {
        ChainReader rest = head.split_at(4);  // bytes 3..6 stay, 7.. go
        CHECK(head.bytes_read() == 3);
        CHECK(head.remaining() == 4);
        CHECK(rest.remaining() == 8);
        CHECK(rest.read_obj<uint8_t>() == c.readable[7]);
        uint32_t value = head.read_obj<uint32_t>();
        CHECK(std::memcmp(&value, c.readable.data() + 3, 4) == 0);
        CHECK(head.bytes_read() == 7);
    }
    SECTION("0 inside a buffer already partly read") {
        ChainReader rest = head.split_at(0);
        CHECK(head.remaining() == 0);
        Bytes none(4);
        CHECK(head.read(none) == 0);
        CHECK(head.slices(10).empty());
        CHECK(rest.remaining() == 12);
        CHECK(rest.read_obj<uint8_t>() == c.readable[3]);
    }
}

TEST_CASE("ChainReader split_at bounds the first part: a header cannot read into the rest",
          "[reader_writer]") {
    VirtqueueBuilder vq;
    auto c = make_chain(vq, {16, 16}, {});
    ChainReader header(vq.memory(), c.chain);
    ChainReader body = header.split_at(12);
    header.read_obj<uint64_t>();
    CHECK_THROWS_WITH(header.read_obj<uint64_t>(),
                      Contains("needs 8 readable bytes but only 4 are left"));
    CHECK_THROWS_AS(header.skip(5), QueueError);
    auto slices = header.slices(100);
    REQUIRE(slices.size() == 1);
    CHECK(slices[0].size() == 4);
    CHECK(body.remaining() == 20);
    // Splitting the second part again.
    ChainReader tail = body.split_at(4);
    CHECK(body.remaining() == 4);
    CHECK(tail.remaining() == 16);
    CHECK(tail.read_obj<uint8_t>() == c.readable[16]);
}

TEST_CASE("ChainWriter split_at writes a header and a payload separately", "[reader_writer]") {
    VirtqueueBuilder vq;
    auto c = make_chain(vq, {4}, {4, 16});
    ChainWriter header(vq.memory(), c.chain);
    ChainWriter payload = header.split_at(6);  // the header spans both buffers
    CHECK(header.remaining() == 6);
    CHECK(payload.remaining() == 14);
    Bytes data = test::pattern(20, 5);
    // Payload first, as a device does once it knows the header's contents.
    CHECK(payload.write(std::span(data).subspan(6)) == 14);
    CHECK_THROWS_WITH(header.write_obj<uint64_t>(0),
                      Contains("needs 8 writable bytes but only 6 are left"));
    CHECK(header.write(std::span(data).first(6)) == 6);
    CHECK(header.bytes_written() == 6);
    CHECK(payload.bytes_written() == 14);
    CHECK(written(vq, c.writable) == data);
    // Nothing more fits in either.
    CHECK(header.write(data) == 0);
    CHECK(payload.write(data) == 0);
}

TEST_CASE("ChainWriter split_at slices stay inside their part", "[reader_writer]") {
    VirtqueueBuilder vq;
    auto c = make_chain(vq, {}, {8, 8});
    ChainWriter first(vq.memory(), c.chain);
    first.write_obj<uint16_t>(0xffff);
    ChainWriter second = first.split_at(9);
    auto a = first.slices(100);
    REQUIRE(a.size() == 2);
    CHECK(a[0].size() == 6);
    CHECK(a[1].size() == 3);
    CHECK(a[1].data() == vq.memory().slice(GuestAddress(c.writable[1].addr), 1).data());
    auto b = second.slices(100);
    REQUIRE(b.size() == 1);
    CHECK(b[0].size() == 5);
    CHECK(b[0].data() == vq.memory().slice(GuestAddress(c.writable[1].addr + 3), 1).data());
    CHECK(first.bytes_written() == 11);
    CHECK(second.bytes_written() == 5);
}

TEST_CASE("ChainWriter split_at over buffers that alias the same guest bytes", "[reader_writer]") {
    // A hostile driver may list one buffer twice: the two parts then write
    // the same guest bytes, which is the driver's problem; each part still
    // counts and bounds its own.
    VirtqueueBuilder vq;
    Desc shared = vq.writable(8);
    vq.add_chain({shared, shared});
    auto chain = vq.queue().pop(vq.memory());
    REQUIRE(chain);
    ChainWriter first(vq.memory(), *chain);
    ChainWriter second = first.split_at(8);
    first.write_obj<uint64_t>(0x1111111111111111);
    second.write_obj<uint64_t>(0x2222222222222222);
    CHECK(vq.memory().read_obj<uint64_t>(GuestAddress(shared.addr)) == 0x2222222222222222);
    CHECK(first.bytes_written() + second.bytes_written() == 16);
    CHECK_THROWS_AS(first.write_obj<uint8_t>(0), QueueError);
    CHECK_THROWS_AS(second.write_obj<uint8_t>(0), QueueError);
}

TEST_CASE("ChainReader split_at on a chain of almost 4 GiB", "[reader_writer]") {
    // 255 indirect descriptors over the same 16 MiB: 2^32 - 16 MiB bytes, so
    // offsets past 32 bits of buffer arithmetic are exercised.
    constexpr uint64_t kMemory = 32 << 20;
    VirtqueueBuilder vq(256, 1ull << vmm::VIRTIO_F_RING_INDIRECT_DESC, kMemory);
    constexpr uint32_t kBuffer = 16 << 20;
    constexpr uint64_t kAt = kMemory - kBuffer;
    constexpr uint64_t kTotal = 255ull * kBuffer;
    Bytes contents = test::pattern(kBuffer, 9);
    vq.memory().write(GuestAddress(kAt), contents);
    vq.add_indirect_chain(std::vector<Desc>(255, Desc{kAt, kBuffer, 0, 0}));
    auto chain = vq.queue().pop(vq.memory());
    REQUIRE(chain);
    REQUIRE(chain->readable_bytes() == kTotal);

    uint64_t offset =
        GENERATE(as<uint64_t>{}, kTotal - 1, kTotal - kBuffer, 200ull * kBuffer + 12345, 1);
    CAPTURE(offset);
    ChainReader head(vq.memory(), *chain);
    ChainReader rest = head.split_at(offset);
    CHECK(head.remaining() == offset);
    CHECK(rest.remaining() == kTotal - offset);
    CHECK(rest.read_obj<uint8_t>() == contents[offset % kBuffer]);
    // The first part ends exactly at the offset.
    head.skip(offset - 1);
    CHECK(head.read_obj<uint8_t>() == contents[(offset - 1) % kBuffer]);
    CHECK(head.remaining() == 0);
}
