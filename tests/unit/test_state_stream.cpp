// StateWriter/StateReader: round trips, and every kind of bad state refused
// with a StateError instead of a read past the end.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "vmm/base/state_stream.hpp"

using vmm::StateError;
using vmm::StateReader;
using vmm::StateWriter;

namespace {

struct Pod {
    uint32_t a;
    uint16_t b;
    uint8_t c[6];
};

}  // namespace

TEST_CASE("state stream: what is written reads back in order", "[state]") {
    StateWriter inner;
    inner.u32(0xdeadbeef);
    inner.string("inner");
    StateWriter w;
    w.u8(7);
    w.u16(0x1234);
    w.u32(0x89abcdef);
    w.u64(0x0123456789abcdefull);
    w.boolean(true);
    w.boolean(false);
    w.string("rootfs");
    w.bytes(std::vector<uint8_t>{1, 2, 3});
    w.pod(Pod{42, 7, {1, 2, 3, 4, 5, 6}});
    w.section(inner);
    w.u8(9);

    StateReader r(w.data(), "test");
    CHECK(r.u8() == 7);
    CHECK(r.u16() == 0x1234);
    CHECK(r.u32() == 0x89abcdef);
    CHECK(r.u64() == 0x0123456789abcdefull);
    CHECK(r.boolean());
    CHECK_FALSE(r.boolean());
    CHECK(r.string(64) == "rootfs");
    CHECK(r.bytes(3) == std::vector<uint8_t>{1, 2, 3});
    Pod pod = r.pod<Pod>();
    CHECK(pod.a == 42);
    CHECK(pod.c[5] == 6);
    StateReader section = r.section("inner part");
    CHECK(section.u32() == 0xdeadbeef);
    CHECK(section.string(16) == "inner");
    section.expect_end();
    CHECK(r.u8() == 9);
    r.expect_end();
}

TEST_CASE("state stream: truncated, oversized and corrupt state is refused", "[state]") {
    StateWriter w;
    w.u32(5);
    w.string("hello");
    std::vector<uint8_t> data = w.take();

    SECTION("truncated integer") {
        StateReader r{std::span(data).first(3), "vCPU 0"};
        CHECK_THROWS_WITH(r.u32(), Catch::Contains("vCPU 0: truncated"));
    }
    SECTION("truncated string") {
        StateReader r{std::span(data).first(data.size() - 1), "x"};
        r.u32();
        CHECK_THROWS_AS(r.string(64), StateError);
    }
    SECTION("a length above the limit") {
        StateReader r(data, "x");
        r.u32();
        CHECK_THROWS_WITH(r.string(4), Catch::Contains("at most 4"));
    }
    SECTION("a flag that is neither 0 nor 1") {
        std::vector<uint8_t> flag{2};
        StateReader r(flag, "x");
        CHECK_THROWS_AS(r.boolean(), StateError);
    }
    SECTION("leftover bytes") {
        StateReader r(data, "x");
        r.u32();
        CHECK_THROWS_WITH(r.expect_end(), Catch::Contains("left over"));
    }
    SECTION("a structure of another size") {
        StateWriter small;
        small.pod(uint32_t{1});
        StateReader r(small.data(), "x");
        CHECK_THROWS_WITH(r.pod<uint64_t>(), Catch::Contains("4-byte structure"));
    }
    SECTION("a section longer than what is left") {
        std::vector<uint8_t> bad{0xff, 0, 0, 0, 1};
        StateReader r(bad, "x");
        CHECK_THROWS_AS(r.section("y"), StateError);
    }
}
