// Bus: range insertion (validation, overlaps) and access dispatch.
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "vmm/base/error.hpp"
#include "vmm/core/bus.hpp"

using vmm::Bus;

namespace {

// Records every access; reads return `fill`.
class RecordingDevice : public vmm::BusDevice {
  public:
    struct Access {
        bool write;
        uint64_t offset;
        std::vector<uint8_t> data;
    };

    explicit RecordingDevice(uint8_t fill = 0x77) : fill_(fill) {}

    void read(uint64_t offset, std::span<uint8_t> data) override {
        std::fill(data.begin(), data.end(), fill_);
        accesses.push_back({false, offset, {data.begin(), data.end()}});
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        accesses.push_back({true, offset, {data.begin(), data.end()}});
    }

    std::vector<Access> accesses;

  private:
    uint8_t fill_;
};

}  // namespace

TEST_CASE("Bus insert rejects a zero length", "[bus]") {
    Bus bus;
    auto device = std::make_shared<RecordingDevice>();
    CHECK_THROWS_WITH(bus.insert(0x100, 0, device), Catch::Contains("invalid bus range"));
}

TEST_CASE("Bus insert rejects ranges that wrap past 2^64", "[bus]") {
    Bus bus;
    auto device = std::make_shared<RecordingDevice>();
    CHECK_THROWS_WITH(bus.insert(UINT64_MAX, 2, device), Catch::Contains("invalid bus range"));
    CHECK_THROWS_WITH(bus.insert(UINT64_MAX - 0xf, 0x20, device),
                      Catch::Contains("invalid bus range"));
    CHECK_THROWS_AS(bus.insert(2, UINT64_MAX, device), vmm::Error);
    // Ending exactly at the last address is fine, and reachable.
    CHECK_NOTHROW(bus.insert(UINT64_MAX - 0xf, 0x10, device));
    std::array<uint8_t, 1> byte{};
    CHECK(bus.read(UINT64_MAX, byte));
    REQUIRE(device->accesses.size() == 1);
    CHECK(device->accesses[0].offset == 0xf);
    std::array<uint8_t, 2> two{};
    CHECK_FALSE(bus.read(UINT64_MAX, two));
}

TEST_CASE("Bus insert rejects overlapping ranges", "[bus]") {
    Bus bus;
    auto device = std::make_shared<RecordingDevice>();
    bus.insert(0x100, 0x10, device);  // [0x100, 0x110)

    CHECK_THROWS_WITH(bus.insert(0x100, 0x10, device), Catch::Contains("overlaps"));  // same
    CHECK_THROWS_WITH(bus.insert(0xf0, 0x11, device), Catch::Contains("overlaps"));   // left
    CHECK_THROWS_WITH(bus.insert(0x10f, 0x10, device), Catch::Contains("overlaps"));  // right
    CHECK_THROWS_WITH(bus.insert(0x104, 0x4, device), Catch::Contains("overlaps"));   // inside
    CHECK_THROWS_WITH(bus.insert(0x0, 0x1000, device), Catch::Contains("overlaps"));  // around
    CHECK_THROWS_WITH(bus.insert(0x100, 1, device), Catch::Contains("overlaps"));     // first byte
    CHECK_THROWS_WITH(bus.insert(0x10f, 1, device), Catch::Contains("overlaps"));     // last byte

    // Touching on either side is fine.
    CHECK_NOTHROW(bus.insert(0xf0, 0x10, device));
    CHECK_NOTHROW(bus.insert(0x110, 0x10, device));
    // And a range sitting between two others must not touch either.
    CHECK_THROWS_WITH(bus.insert(0xe0, 0x11, device), Catch::Contains("overlaps"));
}

TEST_CASE("Bus dispatches to the device with the offset into its range", "[bus]") {
    Bus bus;
    auto serial = std::make_shared<RecordingDevice>(0x11);
    auto other = std::make_shared<RecordingDevice>(0x22);
    bus.insert(0x3f8, 8, serial);
    bus.insert(0x60, 5, other);

    std::array<uint8_t, 1> byte{};
    REQUIRE(bus.read(0x3fd, byte));
    CHECK(byte[0] == 0x11);
    REQUIRE(serial->accesses.size() == 1);
    CHECK_FALSE(serial->accesses[0].write);
    CHECK(serial->accesses[0].offset == 5);

    const std::array<uint8_t, 2> word{0xaa, 0xbb};
    REQUIRE(bus.write(0x63, word));
    REQUIRE(other->accesses.size() == 1);
    CHECK(other->accesses[0].write);
    CHECK(other->accesses[0].offset == 3);
    CHECK(other->accesses[0].data == std::vector<uint8_t>{0xaa, 0xbb});

    // The first and last byte of a range.
    REQUIRE(bus.write(0x3f8, std::span(word.data(), 1)));
    CHECK(serial->accesses.back().offset == 0);
    REQUIRE(bus.read(0x3ff, byte));
    CHECK(serial->accesses.back().offset == 7);
    CHECK(serial->accesses.size() == 3);
}

TEST_CASE("Bus does not dispatch accesses outside or straddling a range", "[bus]") {
    Bus bus;
    auto device = std::make_shared<RecordingDevice>();
    bus.insert(0x1000, 0x10, device);

    std::array<uint8_t, 4> data{1, 2, 3, 4};
    CHECK_FALSE(bus.read(0xfff, std::span(data.data(), 1)));   // just below
    CHECK_FALSE(bus.read(0x1010, std::span(data.data(), 1)));  // just past
    CHECK_FALSE(bus.write(0x100e, data));                      // straddles the end
    CHECK_FALSE(bus.read(0x100d, data));                       // straddles the end by 1
    CHECK_FALSE(bus.write(0xffe, data));                       // straddles the start
    CHECK_FALSE(bus.read(0x1000, std::span<uint8_t>()));       // zero-sized
    CHECK(device->accesses.empty());
    // An unhandled read leaves the buffer to the caller.
    CHECK(data == std::array<uint8_t, 4>{1, 2, 3, 4});

    CHECK(bus.read(0x100c, data));  // exactly the last four bytes
    REQUIRE(device->accesses.size() == 1);
    CHECK(device->accesses[0].offset == 0xc);
}

TEST_CASE("Bus with no ranges dispatches nothing", "[bus]") {
    Bus bus;
    std::array<uint8_t, 1> byte{};
    CHECK_FALSE(bus.read(0, byte));
    CHECK_FALSE(bus.write(UINT64_MAX, byte));
}
