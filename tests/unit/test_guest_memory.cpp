// GuestMemory: region creation, bounds checks at the edges, and accessors.
#include <catch2/catch.hpp>

#include <fcntl.h>

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "test_helpers.hpp"
#include "vmm/base/unique_fd.hpp"
#include "vmm/memory/guest_memory.hpp"

using vmm::GuestAddress;
using vmm::GuestMemory;
using vmm::GuestMemoryError;
using vmm::GuestRegionSpec;

namespace {

constexpr uint64_t kPage = 0x1000;

// Two regions with a hole between them: [0x10000, 0x20000) and [0x30000, 0x34000).
GuestMemory two_regions() {
    return GuestMemory::create(
        {{GuestAddress(0x30000), 4 * kPage}, {GuestAddress(0x10000), 16 * kPage}});
}

}  // namespace

TEST_CASE("GuestMemory regions are sorted with their sizes and total", "[guest_memory]") {
    GuestMemory memory = two_regions();
    REQUIRE(memory.regions().size() == 2);
    CHECK(memory.regions()[0].start() == GuestAddress(0x10000));
    CHECK(memory.regions()[0].size() == 16 * kPage);
    CHECK(memory.regions()[0].end() == 0x20000);
    CHECK(memory.regions()[1].start() == GuestAddress(0x30000));
    CHECK(memory.regions()[1].end() == 0x34000);
    CHECK(memory.total_size() == 20 * kPage);
    CHECK(memory.regions()[0].host_base() != nullptr);
    CHECK(memory.regions()[0].host_base() != memory.regions()[1].host_base());
}

TEST_CASE("GuestMemory maps each region at its guest address's offset in a 2 MiB page",
          "[guest_memory]") {
    // KVM maps a guest 2 MiB page with one entry only at such an address.
    constexpr uint64_t kHuge = uint64_t{2} << 20;
    auto offsets = [](const GuestMemory& memory) {
        std::vector<std::pair<uint64_t, uint64_t>> out;
        for (const auto& region : memory.regions()) {
            out.emplace_back(region.start().value() % kHuge, region.host_address() % kHuge);
        }
        return out;
    };
    std::vector<GuestRegionSpec> specs{{GuestAddress(0), 3 * kHuge + kPage},
                                       {GuestAddress(0x100000000 + 0x123000), 5 * kPage},
                                       {GuestAddress(0x200000000 + kHuge / 2), kHuge}};
    for (int attempt = 0; attempt < 4; ++attempt) {  // mmap's choice of address varies
        for (const auto& [guest, host] : offsets(GuestMemory::create(specs))) {
            CHECK(host == guest);
        }
    }
    test::TempFile file = test::TempFile::sparse(3 * kHuge + kPage + 5 * kPage + kHuge);
    vmm::UniqueFd fd(::open(file.path().c_str(), O_RDWR | O_CLOEXEC));
    REQUIRE(fd.valid());
    GuestMemory from_file = GuestMemory::create_from_file(specs, fd.get());
    for (const auto& [guest, host] : offsets(from_file)) {
        CHECK(host == guest);
    }
    from_file.write_obj(GuestAddress(0x100000000 + 0x123000), uint32_t{0xabcd1234});
    CHECK(from_file.read_obj<uint32_t>(GuestAddress(0x100000000 + 0x123000)) == 0xabcd1234);
}

TEST_CASE("GuestMemory fresh memory reads as zero", "[guest_memory]") {
    GuestMemory memory = two_regions();
    CHECK(memory.read_obj<uint64_t>(GuestAddress(0x10000)) == 0);
    CHECK(memory.read_obj<uint64_t>(GuestAddress(0x33ff8)) == 0);
}

TEST_CASE("GuestMemory write then read round-trips bytes", "[guest_memory]") {
    GuestMemory memory = two_regions();
    test::Bytes data = test::pattern(300, 9);
    memory.write(GuestAddress(0x1fe00), data);
    CHECK(test::read_guest(memory, 0x1fe00, 300) == data);
    // The bytes land in the host mapping of the region, at the right offset.
    CHECK(memory.regions()[0].host_base()[0xfe00] == data[0]);
    CHECK(memory.regions()[0].host_base()[0xfe00 + 299] == data[299]);
    // A neighbouring byte is untouched.
    CHECK(memory.read_obj<uint8_t>(GuestAddress(0x1fdff)) == 0);
    CHECK(memory.read_obj<uint8_t>(GuestAddress(0x1fe00 + 300)) == 0);
}

TEST_CASE("GuestMemory read_obj and write_obj use little-endian host layout", "[guest_memory]") {
    GuestMemory memory = two_regions();
    memory.write_obj(GuestAddress(0x30010), uint64_t{0x1122334455667788});
    CHECK(memory.read_obj<uint64_t>(GuestAddress(0x30010)) == 0x1122334455667788);
    CHECK(memory.read_obj<uint8_t>(GuestAddress(0x30010)) == 0x88);
    CHECK(memory.read_obj<uint16_t>(GuestAddress(0x30016)) == 0x1122);

    struct Pair {
        uint32_t a;
        uint16_t b;
    };
    memory.write_obj(GuestAddress(0x33ff8), Pair{0xdeadbeef, 0x4242});
    Pair back = memory.read_obj<Pair>(GuestAddress(0x33ff8));
    CHECK(back.a == 0xdeadbeef);
    CHECK(back.b == 0x4242);
}

TEST_CASE("GuestMemory fill sets a range and nothing else", "[guest_memory]") {
    GuestMemory memory = two_regions();
    memory.fill(GuestAddress(0x10100), 0x20, 0xab);
    CHECK(memory.read_obj<uint8_t>(GuestAddress(0x100ff)) == 0);
    CHECK(memory.read_obj<uint8_t>(GuestAddress(0x10100)) == 0xab);
    CHECK(memory.read_obj<uint8_t>(GuestAddress(0x1011f)) == 0xab);
    CHECK(memory.read_obj<uint8_t>(GuestAddress(0x10120)) == 0);
    CHECK_THROWS_AS(memory.fill(GuestAddress(0x1fff0), 0x20, 1), GuestMemoryError);
}

TEST_CASE("GuestMemory check_range at region edges", "[guest_memory]") {
    GuestMemory memory = two_regions();
    // Whole region, first and last byte.
    CHECK(memory.check_range(GuestAddress(0x10000), 0x10000));
    CHECK(memory.check_range(GuestAddress(0x10000), 1));
    CHECK(memory.check_range(GuestAddress(0x1ffff), 1));
    // One byte too many, one past the end, one before the start.
    CHECK_FALSE(memory.check_range(GuestAddress(0x10000), 0x10001));
    CHECK_FALSE(memory.check_range(GuestAddress(0x1ffff), 2));
    CHECK_FALSE(memory.check_range(GuestAddress(0x20000), 1));
    CHECK_FALSE(memory.check_range(GuestAddress(0xffff), 1));
    CHECK_FALSE(memory.check_range(GuestAddress(0xffff), 2));
    // The second region's last byte.
    CHECK(memory.check_range(GuestAddress(0x33fff), 1));
    CHECK_FALSE(memory.check_range(GuestAddress(0x34000), 1));
}

TEST_CASE("GuestMemory check_range with length zero needs the address in RAM", "[guest_memory]") {
    GuestMemory memory = two_regions();
    CHECK(memory.check_range(GuestAddress(0x10000), 0));
    CHECK(memory.check_range(GuestAddress(0x1ffff), 0));
    CHECK_FALSE(memory.check_range(GuestAddress(0x20000), 0));
    CHECK_FALSE(memory.check_range(GuestAddress(0), 0));
    CHECK_FALSE(memory.check_range(GuestAddress(UINT64_MAX), 0));
}

TEST_CASE("GuestMemory check_range rejects ranges wrapping past 2^64", "[guest_memory]") {
    GuestMemory memory = two_regions();
    CHECK_FALSE(memory.check_range(GuestAddress(0x10000), UINT64_MAX));
    CHECK_FALSE(memory.check_range(GuestAddress(0x1ffff), UINT64_MAX));
    // addr + len wraps to a small value that would look "inside" if computed naively.
    CHECK_FALSE(memory.check_range(GuestAddress(0x10000), UINT64_MAX - 0xffff + 0x100));
    CHECK_FALSE(memory.check_range(GuestAddress(UINT64_MAX), 2));
    CHECK_FALSE(memory.check_range(GuestAddress(UINT64_MAX - 0xf), 0x20));
}

TEST_CASE("GuestMemory check_range rejects a range spanning a hole or two regions",
          "[guest_memory]") {
    GuestMemory memory = two_regions();
    // From the end of the first region across the hole into the second.
    CHECK_FALSE(memory.check_range(GuestAddress(0x1f000), 0x12000));
    CHECK_FALSE(memory.check_range(GuestAddress(0x25000), 0x10));  // inside the hole
    // Two adjacent regions are still two: an access must lie inside one.
    GuestMemory adjacent =
        GuestMemory::create({{GuestAddress(0), kPage}, {GuestAddress(kPage), kPage}});
    CHECK(adjacent.check_range(GuestAddress(0), kPage));
    CHECK(adjacent.check_range(GuestAddress(kPage), kPage));
    CHECK_FALSE(adjacent.check_range(GuestAddress(kPage - 4), 8));
    CHECK_THROWS_AS(adjacent.read_obj<uint64_t>(GuestAddress(kPage - 4)), GuestMemoryError);
}

TEST_CASE("GuestMemory slice returns a checked window into the region", "[guest_memory]") {
    GuestMemory memory = two_regions();
    vmm::GuestSlice slice = memory.slice(GuestAddress(0x30100), 0x40);
    CHECK(slice.size() == 0x40);
    CHECK(slice.data() == memory.regions()[1].host_base() + 0x100);
    slice.data()[0] = 0x5a;
    CHECK(memory.read_obj<uint8_t>(GuestAddress(0x30100)) == 0x5a);
}

TEST_CASE("GuestMemory out-of-range accesses throw GuestMemoryError", "[guest_memory]") {
    GuestMemory memory = two_regions();
    std::array<uint8_t, 8> buffer{};
    CHECK_THROWS_AS(memory.slice(GuestAddress(0x20000), 1), GuestMemoryError);
    CHECK_THROWS_AS(memory.slice(GuestAddress(0x1ffff), 2), GuestMemoryError);
    CHECK_THROWS_AS(memory.slice(GuestAddress(0x10000), UINT64_MAX), GuestMemoryError);
    CHECK_THROWS_AS(memory.read(GuestAddress(0x1fffc), buffer), GuestMemoryError);
    CHECK_THROWS_AS(memory.write(GuestAddress(0x33ffc), buffer), GuestMemoryError);
    CHECK_THROWS_AS(memory.read_obj<uint32_t>(GuestAddress(0x8000)), GuestMemoryError);
    CHECK_THROWS_AS(memory.write_obj(GuestAddress(UINT64_MAX), uint16_t{1}), GuestMemoryError);
    CHECK_THROWS_WITH(memory.slice(GuestAddress(0x20000), 0x10),
                      Catch::Contains("outside guest RAM") && Catch::Contains("0x20000"));
    // GuestMemoryError is a vmm::Error, so generic handlers catch it too.
    CHECK_THROWS_AS(memory.slice(GuestAddress(0x20000), 1), vmm::Error);
}

TEST_CASE("GuestMemory create rejects zero, unaligned and overlapping regions", "[guest_memory]") {
    using Specs = std::vector<GuestRegionSpec>;
    CHECK_THROWS_WITH(GuestMemory::create(Specs{{GuestAddress(0), 0}}),
                      Catch::Contains("invalid guest memory region"));
    CHECK_THROWS_WITH(GuestMemory::create(Specs{{GuestAddress(0x800), kPage}}),
                      Catch::Contains("invalid guest memory region"));
    CHECK_THROWS_WITH(GuestMemory::create(Specs{{GuestAddress(0), kPage + 1}}),
                      Catch::Contains("invalid guest memory region"));
    // A region may not end at (wrap past) 2^64.
    CHECK_THROWS_WITH(GuestMemory::create(Specs{{GuestAddress(UINT64_MAX - kPage + 1), kPage}}),
                      Catch::Contains("invalid guest memory region"));
    // Overlaps, given in either order.
    CHECK_THROWS_WITH(
        GuestMemory::create(Specs{{GuestAddress(0), 2 * kPage}, {GuestAddress(kPage), 2 * kPage}}),
        Catch::Contains("overlaps"));
    CHECK_THROWS_WITH(
        GuestMemory::create(Specs{{GuestAddress(kPage), 2 * kPage}, {GuestAddress(0), 2 * kPage}}),
        Catch::Contains("overlaps"));
    CHECK_THROWS_WITH(
        GuestMemory::create(Specs{{GuestAddress(0), 4 * kPage}, {GuestAddress(kPage), kPage}}),
        Catch::Contains("overlaps"));
    CHECK_THROWS_WITH(
        GuestMemory::create(Specs{{GuestAddress(kPage), kPage}, {GuestAddress(kPage), kPage}}),
        Catch::Contains("overlaps"));
    // Touching is fine.
    CHECK_NOTHROW(
        GuestMemory::create(Specs{{GuestAddress(0), kPage}, {GuestAddress(kPage), kPage}}));
}

TEST_CASE("GuestMemory move keeps the mapping valid", "[guest_memory]") {
    GuestMemory memory = two_regions();
    memory.write_obj(GuestAddress(0x10000), uint32_t{0xcafef00d});
    GuestMemory moved = std::move(memory);
    CHECK(moved.read_obj<uint32_t>(GuestAddress(0x10000)) == 0xcafef00d);
    CHECK(moved.total_size() == 20 * kPage);
}
