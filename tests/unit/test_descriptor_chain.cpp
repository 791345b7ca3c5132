// DescriptorChain: the walk of a chain at pop time and every rule a hostile
// driver can break (VIRTIO 1.2, 2.7.5), driven through Queue::pop.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

#include "devices/virtio/descriptor_chain.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "virtqueue_builder.hpp"

using Catch::Matchers::Contains;
using test::VirtqueueBuilder;
using vmm::GuestAddress;
using vmm::QueueError;
using vmm::VIRTQ_DESC_F_INDIRECT;
using vmm::VIRTQ_DESC_F_NEXT;
using vmm::VIRTQ_DESC_F_WRITE;
using Desc = VirtqueueBuilder::Desc;

namespace {

constexpr uint64_t kIndirect = 1ull << vmm::VIRTIO_F_RING_INDIRECT_DESC;
constexpr uint64_t kRam = VirtqueueBuilder::kMemorySize;

vmm::DescriptorChain pop_chain(VirtqueueBuilder& vq) {
    auto chain = vq.queue().pop(vq.memory());
    REQUIRE(chain.has_value());
    return *chain;
}

void check_pop_fails(VirtqueueBuilder& vq, const std::string& message) {
    CHECK_THROWS_AS(vq.queue().pop(vq.memory()), QueueError);
    CHECK_THROWS_WITH(vq.queue().pop(vq.memory()), Contains(message));
}

}  // namespace

TEST_CASE("DescriptorChain lists readable then writable buffers", "[descriptor_chain]") {
    VirtqueueBuilder vq;
    Desc header = vq.readable(16);
    Desc data = vq.readable(512);
    Desc status = vq.writable(1);
    vq.add_chain({vq.readable(4)});  // a chain before it, so the head is not 0
    pop_chain(vq);
    uint16_t head = vq.add_chain({header, data, status});
    auto chain = pop_chain(vq);
    CHECK(chain.head() == head);
    CHECK(head == 1);
    REQUIRE(chain.buffers().size() == 3);
    CHECK(chain.buffers()[0].address == GuestAddress(header.addr));
    CHECK(chain.buffers()[0].length == 16);
    CHECK_FALSE(chain.buffers()[0].writable);
    CHECK(chain.buffers()[1].address == GuestAddress(data.addr));
    CHECK(chain.buffers()[2].address == GuestAddress(status.addr));
    CHECK(chain.buffers()[2].writable);
    CHECK(chain.readable_bytes() == 528);
    CHECK(chain.writable_bytes() == 1);
}

TEST_CASE("DescriptorChain parse can be called without a queue", "[descriptor_chain]") {
    VirtqueueBuilder vq(8);
    vq.set_desc(5, vq.writable(64));
    auto chain =
        vmm::DescriptorChain::parse(vq.memory(), VirtqueueBuilder::kDescTable, 8, 5, false);
    CHECK(chain.head() == 5);
    CHECK(chain.writable_bytes() == 64);
    CHECK_THROWS_WITH(vmm::DescriptorChain::parse(vq.memory(), GuestAddress(kRam - 8), 8, 0, false),
                      Contains("descriptor 0 lies outside guest RAM"));
}

TEST_CASE("DescriptorChain rejects a head index outside the queue", "[descriptor_chain]") {
    VirtqueueBuilder vq(8);
    vq.publish(8);
    check_pop_fails(vq, "head index 8 is not below the queue size 8");
    vq.start_indices_at(0);
    vq.publish(0xffff);
    check_pop_fails(vq, "head index 65535");
}

TEST_CASE("DescriptorChain rejects a next index outside the queue", "[descriptor_chain]") {
    VirtqueueBuilder vq(8);
    Desc first = vq.readable(8);
    first.flags = VIRTQ_DESC_F_NEXT;
    first.next = 8;
    vq.set_desc(0, first);
    vq.publish(0);
    check_pop_fails(vq, "descriptor 0 has next index 8, not below the table size 8");
}

TEST_CASE("DescriptorChain catches loops", "[descriptor_chain]") {
    VirtqueueBuilder vq(4);
    // 1 MiB buffers: a walk that missed the bound would stop at the 32-bit
    // total instead, with another message.
    const uint32_t len = uint32_t(kRam);
    SECTION("a descriptor pointing at itself") {
        vq.set_desc(2, Desc{0, len, VIRTQ_DESC_F_NEXT, 2});
        vq.publish(2);
    }
    SECTION("a cycle through the table") {
        vq.set_desc(0, Desc{0, len, VIRTQ_DESC_F_NEXT, 1});
        vq.set_desc(1, Desc{0, len, VIRTQ_DESC_F_NEXT, 2});
        vq.set_desc(2, Desc{0, len, VIRTQ_DESC_F_NEXT, 1});
        vq.publish(0);
    }
    SECTION("a cycle of zero-length descriptors") {
        vq.set_desc(0, Desc{0, 0, VIRTQ_DESC_F_NEXT, 1});
        vq.set_desc(1, Desc{0, 0, VIRTQ_DESC_F_NEXT, 0});
        vq.publish(0);
    }
    check_pop_fails(vq, "more than 4 descriptors in the queue's table (a loop)");
}

TEST_CASE("DescriptorChain accepts a chain as long as the queue", "[descriptor_chain]") {
    VirtqueueBuilder vq(4);
    vq.add_chain({vq.readable(1), vq.readable(2), vq.readable(3), vq.writable(4)});
    auto chain = pop_chain(vq);
    CHECK(chain.buffers().size() == 4);
    CHECK(chain.readable_bytes() == 6);
    CHECK(chain.writable_bytes() == 4);
}

TEST_CASE("DescriptorChain rejects unknown flags", "[descriptor_chain]") {
    VirtqueueBuilder vq;
    Desc desc = vq.readable(8);
    desc.flags = 0x8;
    vq.add_chain({vq.readable(8), desc});
    check_pop_fails(vq, "descriptor 1 has unknown flags 0x8");
}

TEST_CASE("DescriptorChain rejects buffers outside guest RAM", "[descriptor_chain]") {
    VirtqueueBuilder vq;
    Desc bad;
    std::string what;
    SECTION("past the end") {
        bad = Desc{kRam, 1, 0, 0};
        what = "buffer 0x100000+0x1 outside guest RAM";
    }
    SECTION("straddling the end") {
        bad = Desc{kRam - 8, 16, VIRTQ_DESC_F_WRITE, 0};
        what = "buffer 0xffff8+0x10 outside guest RAM";
    }
    SECTION("wrapping around 2^64") {
        bad = Desc{~0ull - 7, 16, 0, 0};
        what = "buffer 0xfffffffffffffff8+0x10 outside guest RAM";
    }
    vq.add_chain({vq.readable(8), bad});
    check_pop_fails(vq, "descriptor 1 has " + what);
}

TEST_CASE("DescriptorChain accepts a buffer ending exactly at the end of RAM",
          "[descriptor_chain]") {
    VirtqueueBuilder vq;
    vq.add_chain({Desc{kRam - 16, 16, 0, 0}});
    CHECK(pop_chain(vq).readable_bytes() == 16);
}

TEST_CASE("DescriptorChain rejects a total length beyond 32 bits", "[descriptor_chain]") {
    // 256 overlapping 16 MiB buffers make 2^32 bytes, in a chain no longer
    // than the queue; the RAM is reserved, never touched.
    VirtqueueBuilder vq(256, kIndirect, 32 << 20);
    std::vector<Desc> descs(256, Desc{0, 16 << 20, 0, 0});
    SECTION("2^32 - 1 bytes fit") {
        descs.back().len -= 1;
        vq.add_indirect_chain(descs);
        CHECK(pop_chain(vq).readable_bytes() == 0xffffffffull);
    }
    SECTION("2^32 bytes do not") {
        vq.add_indirect_chain(descs);
        check_pop_fails(vq, "total length 4294967296 does not fit in 32 bits");
    }
}

TEST_CASE("DescriptorChain rejects readable after writable", "[descriptor_chain]") {
    VirtqueueBuilder vq;
    SECTION("in the queue's table") {
        vq.add_chain({vq.readable(8), vq.writable(8), vq.readable(8)});
        check_pop_fails(vq, "descriptor 2 is device-readable but follows a device-writable one");
    }
    SECTION("in an indirect table") {
        vq.queue().set_features(kIndirect);
        vq.add_indirect_chain({vq.writable(8), vq.readable(8)});
        check_pop_fails(vq, "indirect descriptor 1 is device-readable but follows");
    }
    SECTION("across a direct and an indirect part") {
        vq.queue().set_features(kIndirect);
        uint64_t table = vq.alloc(16);
        vq.write_table(table, {vq.readable(8)});
        vq.add_chain({vq.writable(8), Desc{table, 16, VIRTQ_DESC_F_INDIRECT, 0}});
        check_pop_fails(vq, "indirect descriptor 0 is device-readable");
    }
}

TEST_CASE("DescriptorChain skips zero-length buffers but still checks them", "[descriptor_chain]") {
    VirtqueueBuilder vq;
    SECTION("they are not listed, and their address is not used") {
        Desc data = vq.readable(8);
        vq.add_chain({Desc{~0ull, 0, 0, 0}, data, Desc{kRam + 4096, 0, VIRTQ_DESC_F_WRITE, 0}});
        auto chain = pop_chain(vq);
        REQUIRE(chain.buffers().size() == 1);
        CHECK(chain.buffers()[0].address == GuestAddress(data.addr));
        CHECK(chain.readable_bytes() == 8);
        CHECK(chain.writable_bytes() == 0);
    }
    SECTION("the readable-before-writable order covers them") {
        vq.add_chain({Desc{0, 0, VIRTQ_DESC_F_WRITE, 0}, vq.readable(8)});
        check_pop_fails(vq, "descriptor 1 is device-readable but follows");
    }
    SECTION("their flags are checked") {
        vq.add_chain({Desc{0, 0, 0x10, 0}});
        check_pop_fails(vq, "unknown flags 0x10");
    }
}

TEST_CASE("DescriptorChain follows an indirect table", "[descriptor_chain]") {
    VirtqueueBuilder vq(4, kIndirect);
    Desc a = vq.readable(10);
    Desc b = vq.readable(20);
    Desc c = vq.writable(30);
    vq.add_chain({vq.readable(1)});
    pop_chain(vq);
    uint16_t head = vq.add_indirect_chain({a, b, c});
    auto chain = pop_chain(vq);
    CHECK(chain.head() == head);
    REQUIRE(chain.buffers().size() == 3);
    CHECK(chain.buffers()[0].address == GuestAddress(a.addr));
    CHECK(chain.buffers()[1].address == GuestAddress(b.addr));
    CHECK(chain.buffers()[2].address == GuestAddress(c.addr));
    CHECK(chain.readable_bytes() == 30);
    CHECK(chain.writable_bytes() == 30);
}

TEST_CASE("DescriptorChain joins direct descriptors and a final indirect table",
          "[descriptor_chain]") {
    VirtqueueBuilder vq(4, kIndirect);
    Desc header = vq.readable(16);
    uint64_t table = vq.alloc(32);
    vq.write_table(table, {Desc{vq.alloc(100), 100, VIRTQ_DESC_F_NEXT, 1}, vq.writable(1)});
    // The WRITE flag of the descriptor pointing at a table is ignored (2.7.5.3.2).
    vq.add_chain({header, Desc{table, 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0}});
    auto chain = pop_chain(vq);
    REQUIRE(chain.buffers().size() == 3);
    CHECK(chain.readable_bytes() == 116);
    CHECK(chain.writable_bytes() == 1);
}

TEST_CASE("DescriptorChain accepts an indirect chain as long as the queue", "[descriptor_chain]") {
    VirtqueueBuilder vq(16, kIndirect);
    std::vector<Desc> descs;
    for (int i = 0; i < 16; ++i) {
        descs.push_back(vq.readable(4));
    }
    vq.add_indirect_chain(descs);
    auto chain = pop_chain(vq);
    CHECK(chain.buffers().size() == 16);
    CHECK(chain.readable_bytes() == 64);
}

// VIRTIO 1.2, 2.7.5.3.1: "A driver MUST NOT create a descriptor chain longer
// than the Queue Size of the device", indirect descriptors included. Walking
// (and keeping) a table of 65536 entries per chain held the I/O thread for
// seconds and cost a device 268 MB.
TEST_CASE("DescriptorChain rejects a chain longer than the queue, indirect entries included",
          "[descriptor_chain]") {
    VirtqueueBuilder vq(16, kIndirect, 2 << 20);
    SECTION("an indirect table alone") {
        vq.add_indirect_chain(std::vector<Desc>(17, vq.readable(4)));
    }
    SECTION("direct descriptors and an indirect table") {
        uint64_t table = vq.alloc(16 * 15);
        std::vector<Desc> entries(15, vq.readable(4));
        for (uint16_t i = 0; i + 1 < 15; ++i) {
            entries[i].flags = VIRTQ_DESC_F_NEXT;
            entries[i].next = uint16_t(i + 1);
        }
        vq.write_table(table, entries);
        vq.add_chain(
            {vq.readable(4), vq.readable(4), Desc{table, 16 * 15, VIRTQ_DESC_F_INDIRECT, 0}});
    }
    SECTION("zero-length entries count too") {
        vq.add_indirect_chain(std::vector<Desc>(17, Desc{0, 0, 0, 0}));
    }
    SECTION("the largest indirect table") {
        // 65536 linked entries: the walk must stop at the queue size.
        uint64_t table = vq.alloc(16 * 65536);
        std::vector<Desc> entries(65536, vq.readable(4));
        for (uint32_t i = 0; i + 1 < entries.size(); ++i) {
            entries[i].flags = VIRTQ_DESC_F_NEXT;
            entries[i].next = uint16_t(i + 1);
        }
        vq.write_table(table, entries);
        vq.add_chain({Desc{table, 16 * 65536, VIRTQ_DESC_F_INDIRECT, 0}});
    }
    check_pop_fails(vq, "longer than the queue size 16");
}

TEST_CASE("DescriptorChain rejects indirect tables unless negotiated", "[descriptor_chain]") {
    VirtqueueBuilder vq;
    vq.add_indirect_chain({vq.readable(8)});
    check_pop_fails(vq,
                    "descriptor 0 is indirect but VIRTIO_F_RING_INDIRECT_DESC was not "
                    "negotiated");
}

TEST_CASE("DescriptorChain rejects nested indirect tables", "[descriptor_chain]") {
    VirtqueueBuilder vq(16, kIndirect);
    uint64_t inner = vq.alloc(16);
    vq.write_table(inner, {vq.readable(8)});
    vq.add_indirect_chain({vq.readable(8), Desc{inner, 16, VIRTQ_DESC_F_INDIRECT, 0}});
    check_pop_fails(vq, "indirect descriptor 1 is itself indirect (nested indirect tables)");
}

TEST_CASE("DescriptorChain rejects bad indirect table lengths", "[descriptor_chain]") {
    VirtqueueBuilder vq(16, kIndirect);
    uint64_t table = vq.alloc(64);
    vq.write_table(table, {vq.readable(8), vq.readable(8)});
    uint32_t len = GENERATE(0u, 8u, 24u, 33u);
    vq.add_chain({Desc{table, len, VIRTQ_DESC_F_INDIRECT, 0}});
    check_pop_fails(vq,
                    fmt::format("indirect table length {}, not a non-zero multiple of 16", len));
}

TEST_CASE("DescriptorChain rejects indirect tables of more than 65536 entries",
          "[descriptor_chain]") {
    VirtqueueBuilder vq(16, kIndirect);
    vq.add_chain({Desc{0, 16 * 65537, VIRTQ_DESC_F_INDIRECT, 0}});
    check_pop_fails(vq, "indirect table of 65537 entries, more than 65536");
}

TEST_CASE("DescriptorChain rejects INDIRECT together with NEXT", "[descriptor_chain]") {
    VirtqueueBuilder vq(16, kIndirect);
    uint64_t table = vq.alloc(16);
    vq.write_table(table, {vq.readable(8)});
    vq.add_chain({Desc{table, 16, VIRTQ_DESC_F_INDIRECT, 0}, vq.writable(8)});
    check_pop_fails(vq, "descriptor 0 has both INDIRECT and NEXT set");
}

TEST_CASE("DescriptorChain allows at most one indirect table per chain", "[descriptor_chain]") {
    // The only way to reach a second table is INDIRECT with NEXT (or from
    // inside a table): both are refused.
    VirtqueueBuilder vq(16, kIndirect);
    uint64_t table = vq.alloc(16);
    vq.write_table(table, {vq.readable(8)});
    Desc indirect{table, 16, VIRTQ_DESC_F_INDIRECT, 0};
    vq.add_chain({indirect, indirect});
    check_pop_fails(vq, "descriptor 0 has both INDIRECT and NEXT set");
}

TEST_CASE("DescriptorChain rejects an indirect table outside guest RAM", "[descriptor_chain]") {
    VirtqueueBuilder vq(16, kIndirect);
    vq.add_chain({Desc{kRam - 16, 32, VIRTQ_DESC_F_INDIRECT, 0}});
    check_pop_fails(vq, "descriptor 0 has indirect table 0xffff0+0x20 outside guest RAM");
}

TEST_CASE("DescriptorChain catches loops and bad indices inside an indirect table",
          "[descriptor_chain]") {
    VirtqueueBuilder vq(16, kIndirect);
    uint64_t table = vq.alloc(32);
    SECTION("a loop") {
        vq.write_table(table, {Desc{0, uint32_t(kRam), VIRTQ_DESC_F_NEXT, 1},
                               Desc{0, uint32_t(kRam), VIRTQ_DESC_F_NEXT, 0}});
        vq.add_chain({Desc{table, 32, VIRTQ_DESC_F_INDIRECT, 0}});
        check_pop_fails(vq, "more than 2 descriptors in the indirect table (a loop)");
    }
    SECTION("a next index beyond the table") {
        vq.write_table(table, {Desc{vq.alloc(8), 8, VIRTQ_DESC_F_NEXT, 2}, vq.readable(8)});
        vq.add_chain({Desc{table, 32, VIRTQ_DESC_F_INDIRECT, 0}});
        check_pop_fails(vq, "indirect descriptor 0 has next index 2, not below the table size 2");
    }
    SECTION("a buffer outside RAM") {
        vq.write_table(table, {Desc{vq.alloc(8), 8, VIRTQ_DESC_F_NEXT, 1}, Desc{kRam, 8, 0, 0}});
        vq.add_chain({Desc{table, 32, VIRTQ_DESC_F_INDIRECT, 0}});
        check_pop_fails(vq, "indirect descriptor 1 has buffer 0x100000+0x8 outside guest RAM");
    }
    SECTION("an unknown flag") {
        vq.write_table(table, {Desc{vq.alloc(8), 8, 0x20, 0}});
        vq.add_chain({Desc{table, 16, VIRTQ_DESC_F_INDIRECT, 0}});
        check_pop_fails(vq, "indirect descriptor 0 has unknown flags 0x20");
    }
}

TEST_CASE("DescriptorChain errors name the chain's head", "[descriptor_chain]") {
    VirtqueueBuilder vq;
    vq.add_chain({vq.readable(8)});
    pop_chain(vq);
    vq.add_chain({Desc{kRam, 8, 0, 0}});
    check_pop_fails(vq, "descriptor chain at head 1:");
}
