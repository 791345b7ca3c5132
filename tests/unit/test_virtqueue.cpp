// Queue: layout validation, the available ring (pop), the used ring
// (add_used) and interrupt suppression, with and without EVENT_IDX.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <cstdint>

#include "devices/virtio/queue.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "virtqueue_builder.hpp"

using Catch::Matchers::Contains;
using test::VirtqueueBuilder;
using vmm::GuestAddress;
using vmm::Queue;
using vmm::QueueError;

namespace {

constexpr uint64_t kIndirect = 1ull << vmm::VIRTIO_F_RING_INDIRECT_DESC;
constexpr uint64_t kEventIdx = 1ull << vmm::VIRTIO_F_RING_EVENT_IDX;
constexpr uint64_t kRam = VirtqueueBuilder::kMemorySize;

// Pops one chain, returns it as used, and asks whether to interrupt.
void use_one(VirtqueueBuilder& vq, uint32_t len = 0) {
    vq.add_chain({vq.writable(8)});
    auto chain = vq.queue().pop(vq.memory());
    REQUIRE(chain);
    vq.queue().add_used(vq.memory(), chain->head(), len);
}

}  // namespace

TEST_CASE("Queue maximum size must be a power of two up to 32768", "[virtqueue]") {
    CHECK_THROWS_WITH(Queue(0), Contains("invalid virtqueue maximum size 0"));
    CHECK_THROWS_WITH(Queue(3), Contains("maximum size 3"));
    CHECK_THROWS_WITH(Queue(0xffff), Contains("maximum size 65535"));
    Queue queue(32768);
    CHECK(queue.max_size() == 32768);
    CHECK(queue.size() == 32768);
    CHECK_FALSE(queue.ready());
}

TEST_CASE("Queue takes ring features from the negotiated bits", "[virtqueue]") {
    Queue queue(16);
    queue.set_features(kIndirect | (1ull << vmm::VIRTIO_F_VERSION_1));
    CHECK(queue.indirect());
    CHECK_FALSE(queue.event_idx());
    queue.set_features(kEventIdx);
    CHECK_FALSE(queue.indirect());
    CHECK(queue.event_idx());
}

TEST_CASE("Queue layout accepts a valid layout, up to the end of RAM", "[virtqueue]") {
    VirtqueueBuilder vq(16);
    Queue& queue = vq.queue();
    CHECK_NOTHROW(queue.validate_layout(vq.memory()));
    queue.set_desc_table(GuestAddress(kRam - 16 * 16));
    queue.set_avail_ring(GuestAddress(kRam - (6 + 2 * 16)));
    queue.set_used_ring(GuestAddress(kRam - (6 + 8 * 16) - 2));  // 4-aligned
    CHECK_NOTHROW(queue.validate_layout(vq.memory()));
}

TEST_CASE("Queue layout rejects bad sizes", "[virtqueue]") {
    VirtqueueBuilder vq(16);
    uint16_t size = GENERATE(0, 6, 255, 512);
    vq.queue().set_size(size);
    CHECK_THROWS_WITH(
        vq.queue().validate_layout(vq.memory()),
        Contains(fmt::format("virtqueue size {} is not a power of two between 1 and the maximum "
                             "256",
                             size)));
}

TEST_CASE("Queue layout rejects misaligned areas", "[virtqueue]") {
    VirtqueueBuilder vq(16);
    Queue& queue = vq.queue();
    SECTION("descriptor table") {
        queue.set_desc_table(GuestAddress(0x1008));
        CHECK_THROWS_WITH(queue.validate_layout(vq.memory()),
                          Contains("descriptor table at 0x1008 is not 16-byte aligned"));
    }
    SECTION("available ring") {
        queue.set_avail_ring(GuestAddress(0x2001));
        CHECK_THROWS_WITH(queue.validate_layout(vq.memory()),
                          Contains("available ring at 0x2001 is not 2-byte aligned"));
    }
    SECTION("used ring") {
        queue.set_used_ring(GuestAddress(0x3002));
        CHECK_THROWS_WITH(queue.validate_layout(vq.memory()),
                          Contains("used ring at 0x3002 is not 4-byte aligned"));
    }
}

TEST_CASE("Queue layout rejects areas not wholly inside RAM", "[virtqueue]") {
    VirtqueueBuilder vq(16);
    Queue& queue = vq.queue();
    SECTION("descriptor table, one entry past the end") {
        queue.set_desc_table(GuestAddress(kRam - 15 * 16));
        CHECK_THROWS_WITH(
            queue.validate_layout(vq.memory()),
            Contains("descriptor table 0xfff10+0x100 is not wholly inside guest RAM"));
    }
    SECTION("available ring, used_event past the end") {
        queue.set_avail_ring(GuestAddress(kRam - (4 + 2 * 16)));
        CHECK_THROWS_WITH(queue.validate_layout(vq.memory()),
                          Contains("available ring 0xfffdc+0x26 is not wholly inside"));
    }
    SECTION("used ring, avail_event past the end") {
        queue.set_used_ring(GuestAddress(kRam - (4 + 8 * 16)));
        CHECK_THROWS_WITH(queue.validate_layout(vq.memory()),
                          Contains("used ring 0xfff7c+0x86 is not wholly inside"));
    }
    SECTION("an area wrapping around 2^64") {
        queue.set_used_ring(GuestAddress(~0ull - 3));
        CHECK_THROWS_WITH(queue.validate_layout(vq.memory()), Contains("used ring"));
    }
}

TEST_CASE("Queue pop returns nothing until the driver publishes", "[virtqueue]") {
    VirtqueueBuilder vq;
    CHECK_FALSE(vq.queue().pop(vq.memory()));
    vq.queue().set_ready(false);
    vq.add_chain({vq.readable(8)});
    CHECK_FALSE(vq.queue().pop(vq.memory()));  // a queue that is not ready has nothing
    vq.queue().set_ready(true);
    CHECK(vq.queue().pop(vq.memory()));
    CHECK_FALSE(vq.queue().pop(vq.memory()));
}

TEST_CASE("Queue pop returns chains in ring order and advances next_avail", "[virtqueue]") {
    VirtqueueBuilder vq(8);
    uint16_t a = vq.add_chain({vq.readable(1)});
    uint16_t b = vq.add_chain({vq.readable(2), vq.writable(2)});
    uint16_t c = vq.add_chain({vq.writable(3)});
    CHECK(vq.queue().pop(vq.memory())->head() == a);
    CHECK(vq.queue().next_avail() == 1);
    CHECK(vq.queue().pop(vq.memory())->head() == b);
    CHECK(vq.queue().pop(vq.memory())->head() == c);
    CHECK(vq.queue().next_avail() == 3);
    CHECK_FALSE(vq.queue().pop(vq.memory()));
}

TEST_CASE("Queue pop rejects an avail idx more than the queue size ahead", "[virtqueue]") {
    VirtqueueBuilder vq(8);
    for (int i = 0; i < 8; ++i) {
        vq.add_chain({vq.readable(8)});
    }
    SECTION("exactly the queue size ahead is a full ring") {
        for (int i = 0; i < 8; ++i) {
            CHECK(vq.queue().pop(vq.memory()));
        }
        CHECK_FALSE(vq.queue().pop(vq.memory()));
    }
    SECTION("one more is a violation, and leaves the queue as it was") {
        vq.set_avail_idx(9);
        CHECK_THROWS_AS(vq.queue().pop(vq.memory()), QueueError);
        CHECK_THROWS_WITH(vq.queue().pop(vq.memory()),
                          Contains("avail idx 9 is 9 entries ahead of the device's 0, more than "
                                   "the queue size 8"));
        CHECK(vq.queue().next_avail() == 0);
    }
    SECTION("an idx behind next_avail is a huge jump ahead") {
        vq.queue().pop(vq.memory());
        vq.set_avail_idx(0);
        CHECK_THROWS_WITH(vq.queue().pop(vq.memory()), Contains("65535 entries ahead"));
    }
}

TEST_CASE("Queue pop follows avail idx across its 16-bit wrap", "[virtqueue]") {
    VirtqueueBuilder vq(4);
    vq.start_indices_at(0xfffe);
    uint16_t a = vq.add_chain({vq.readable(1)});
    uint16_t b = vq.add_chain({vq.readable(2)});
    uint16_t c = vq.add_chain({vq.readable(3)});
    CHECK(vq.avail_idx() == 1);
    CHECK(vq.queue().pop(vq.memory())->head() == a);
    CHECK(vq.queue().pop(vq.memory())->head() == b);
    CHECK(vq.queue().next_avail() == 0);
    CHECK(vq.queue().pop(vq.memory())->head() == c);
    CHECK_FALSE(vq.queue().pop(vq.memory()));
    // Across the wrap, size + 1 ahead is still caught.
    vq.set_avail_idx(static_cast<uint16_t>(vq.queue().next_avail() + 5));
    CHECK_THROWS_WITH(vq.queue().pop(vq.memory()), Contains("5 entries ahead"));
}

TEST_CASE("Queue pop of a broken chain leaves next_avail alone", "[virtqueue]") {
    VirtqueueBuilder vq(8);
    vq.add_chain({VirtqueueBuilder::Desc{kRam, 8, 0, 0}});
    CHECK_THROWS_AS(vq.queue().pop(vq.memory()), QueueError);
    CHECK(vq.queue().next_avail() == 0);
}

TEST_CASE("Queue accesses outside RAM are QueueErrors even without validation", "[virtqueue]") {
    VirtqueueBuilder vq(8);
    Queue& queue = vq.queue();
    queue.set_features(kEventIdx);
    SECTION("avail ring") {
        queue.set_avail_ring(GuestAddress(kRam));
        CHECK_THROWS_AS(queue.pop(vq.memory()), QueueError);
        CHECK_THROWS_WITH(queue.pop(vq.memory()), Contains("avail idx at 0x100000+0x2"));
    }
    SECTION("used ring") {
        use_one(vq);
        queue.set_used_ring(GuestAddress(~0ull - 1));
        CHECK_THROWS_AS(queue.pop(vq.memory()), QueueError);
        CHECK_THROWS_AS(queue.add_used(vq.memory(), 0, 0), QueueError);
    }
}

TEST_CASE("Queue add_used writes the element, then used idx", "[virtqueue]") {
    VirtqueueBuilder vq(4);
    Queue& queue = vq.queue();
    uint16_t a = vq.add_chain({vq.writable(8)});
    uint16_t b = vq.add_chain({vq.readable(8), vq.writable(8)});
    auto first = queue.pop(vq.memory());
    auto second = queue.pop(vq.memory());
    // Completion may be out of order.
    queue.add_used(vq.memory(), second->head(), 7);
    CHECK(vq.used_idx() == 1);
    CHECK(vq.used_elem(0).id == b);
    CHECK(vq.used_elem(0).len == 7);
    queue.add_used(vq.memory(), first->head(), 0x12345678);
    CHECK(vq.used_idx() == 2);
    CHECK(vq.used_elem(1).id == a);
    CHECK(vq.used_elem(1).len == 0x12345678);
    CHECK(queue.next_used() == 2);
}

TEST_CASE("Queue add_used wraps the ring slot and the 16-bit index", "[virtqueue]") {
    VirtqueueBuilder vq(4);
    vq.start_indices_at(0xfffe);
    for (uint32_t i = 0; i < 6; ++i) {
        use_one(vq, i);
        // Entry idx goes to slot idx % size: 0xfffe -> 2, 0xffff -> 3, 0 -> 0.
        uint16_t idx = static_cast<uint16_t>(0xfffe + i);
        CHECK(vq.used_elem(idx).len == i);
        CHECK(vq.used_idx() == static_cast<uint16_t>(idx + 1));
    }
    CHECK(vq.used_idx() == 4);
    CHECK(vq.queue().next_used() == 4);
}

TEST_CASE("Queue add_used rejects a bad head or a queue that is not ready", "[virtqueue]") {
    VirtqueueBuilder vq(4);
    CHECK_THROWS_WITH(vq.queue().add_used(vq.memory(), 4, 0),
                      Contains("used head 4 is not below the queue size 4"));
    vq.queue().set_ready(false);
    CHECK_THROWS_WITH(vq.queue().add_used(vq.memory(), 0, 0), Contains("not ready"));
    CHECK(vq.used_idx() == 0);
}

TEST_CASE("Queue needs_notification without EVENT_IDX follows NO_INTERRUPT", "[virtqueue]") {
    VirtqueueBuilder vq;
    Queue& queue = vq.queue();
    CHECK_FALSE(queue.needs_notification(vq.memory()));  // nothing used yet
    use_one(vq);
    CHECK(queue.needs_notification(vq.memory()));
    CHECK_FALSE(queue.needs_notification(vq.memory()));  // already told
    use_one(vq);
    use_one(vq);
    CHECK(queue.needs_notification(vq.memory()));
    vq.set_avail_flags(vmm::VIRTQ_AVAIL_F_NO_INTERRUPT);
    use_one(vq);
    CHECK_FALSE(queue.needs_notification(vq.memory()));
    vq.set_avail_flags(0);
    CHECK_FALSE(queue.needs_notification(vq.memory()));  // that one was suppressed, not queued
    use_one(vq);
    queue.set_ready(false);  // a queue that is not ready never interrupts
    CHECK_FALSE(queue.needs_notification(vq.memory()));
}

TEST_CASE("Queue needs_notification with EVENT_IDX follows used_event", "[virtqueue]") {
    VirtqueueBuilder vq(8, kEventIdx);
    Queue& queue = vq.queue();
    // NO_INTERRUPT is ignored once EVENT_IDX is negotiated.
    vq.set_avail_flags(vmm::VIRTQ_AVAIL_F_NO_INTERRUPT);
    SECTION("the driver wants to hear about entry used_event") {
        vq.set_used_event(0);
        use_one(vq);  // used idx 0 -> 1 passes entry 0
        CHECK(queue.needs_notification(vq.memory()));
        use_one(vq);  // 1 -> 2 does not pass 0 again
        CHECK_FALSE(queue.needs_notification(vq.memory()));
    }
    SECTION("not before used_event is passed") {
        vq.set_used_event(2);
        use_one(vq);
        use_one(vq);  // idx 2: entries 0 and 1 used
        CHECK_FALSE(queue.needs_notification(vq.memory()));
        use_one(vq);  // entry 2 used
        CHECK(queue.needs_notification(vq.memory()));
    }
    SECTION("a batch since the last check passing used_event") {
        vq.set_used_event(1);
        use_one(vq);
        use_one(vq);
        use_one(vq);
        CHECK(queue.needs_notification(vq.memory()));
        CHECK_FALSE(queue.needs_notification(vq.memory()));
    }
}

TEST_CASE("Queue needs_notification with EVENT_IDX across the 16-bit wrap", "[virtqueue]") {
    VirtqueueBuilder vq(4, kEventIdx);
    Queue& queue = vq.queue();
    vq.start_indices_at(0xfffe);
    CHECK_FALSE(queue.needs_notification(vq.memory()));  // restored: nothing new used
    SECTION("used_event just before the wrap") {
        vq.set_used_event(0xffff);
        use_one(vq);  // 0xfffe -> 0xffff
        CHECK_FALSE(queue.needs_notification(vq.memory()));
        use_one(vq);  // 0xffff -> 0x0000 passes 0xffff
        CHECK(queue.needs_notification(vq.memory()));
    }
    SECTION("used_event just after the wrap, in one batch") {
        vq.set_used_event(0x0000);
        use_one(vq);
        use_one(vq);  // idx 0: entry 0 not used yet
        CHECK_FALSE(queue.needs_notification(vq.memory()));
        use_one(vq);  // 0 -> 1
        CHECK(queue.needs_notification(vq.memory()));
    }
    SECTION("used_event far behind") {
        vq.set_used_event(0x8000);
        use_one(vq);
        use_one(vq);
        use_one(vq);
        CHECK_FALSE(queue.needs_notification(vq.memory()));
    }
}

TEST_CASE("vring_need_event is the spec's 16-bit rule", "[virtqueue]") {
    CHECK(vmm::vring_need_event(0, 1, 0));
    CHECK_FALSE(vmm::vring_need_event(1, 1, 0));
    CHECK(vmm::vring_need_event(5, 10, 2));
    CHECK_FALSE(vmm::vring_need_event(10, 10, 2));
    CHECK_FALSE(vmm::vring_need_event(1, 10, 2));
    CHECK(vmm::vring_need_event(0xffff, 1, 0xfffe));
    CHECK_FALSE(vmm::vring_need_event(0, 0, 0xfffe));
}

TEST_CASE("Queue pop publishes avail_event only with EVENT_IDX", "[virtqueue]") {
    SECTION("with EVENT_IDX it asks for the next entry it will read") {
        VirtqueueBuilder vq(8, kEventIdx);
        vq.start_indices_at(0xfffe);
        vq.add_chain({vq.readable(1)});
        vq.add_chain({vq.readable(1)});
        vq.add_chain({vq.readable(1)});
        while (vq.queue().pop(vq.memory())) {
        }
        CHECK(vq.avail_event() == 1);
        CHECK(vq.queue().next_avail() == 1);
    }
    SECTION("without it the field is left to its owner") {
        VirtqueueBuilder vq(8);
        vq.memory().write_obj<uint16_t>(GuestAddress(VirtqueueBuilder::kUsedRing.value() + 4 + 64),
                                        0xabcd);
        vq.add_chain({vq.readable(1)});
        while (vq.queue().pop(vq.memory())) {
        }
        CHECK(vq.avail_event() == 0xabcd);
    }
}

TEST_CASE("Queue reset forgets the driver's setup and the indices", "[virtqueue]") {
    VirtqueueBuilder vq(8, kIndirect | kEventIdx);
    use_one(vq);
    Queue& queue = vq.queue();
    queue.reset();
    CHECK(queue.max_size() == VirtqueueBuilder::kMaxSize);
    CHECK(queue.size() == VirtqueueBuilder::kMaxSize);
    CHECK_FALSE(queue.ready());
    CHECK(queue.desc_table() == GuestAddress(0));
    CHECK(queue.avail_ring() == GuestAddress(0));
    CHECK(queue.used_ring() == GuestAddress(0));
    CHECK_FALSE(queue.indirect());
    CHECK_FALSE(queue.event_idx());
    CHECK(queue.next_avail() == 0);
    CHECK(queue.next_used() == 0);
    CHECK_FALSE(queue.pop(vq.memory()));
    CHECK_FALSE(queue.needs_notification(vq.memory()));
}

TEST_CASE("Queue give_back makes the next pop yield the same chain", "[virtqueue]") {
    VirtqueueBuilder vq(8);
    Queue& queue = vq.queue();
    auto data = vq.writable(64);
    uint16_t a = vq.add_chain({vq.readable(16), data});
    uint16_t b = vq.add_chain({vq.readable(8)});
    auto first = queue.pop(vq.memory());
    REQUIRE(first);
    queue.give_back(*first);
    CHECK(queue.next_avail() == 0);
    auto again = queue.pop(vq.memory());
    REQUIRE(again);
    CHECK(again->head() == a);
    REQUIRE(again->buffers().size() == 2);
    CHECK(again->buffers()[1].address == GuestAddress(data.addr));
    CHECK(again->writable_bytes() == 64);
    CHECK(queue.pop(vq.memory())->head() == b);
    // The chain popped again is used like any other.
    queue.add_used(vq.memory(), again->head(), 5);
    CHECK(vq.used_idx() == 1);
    CHECK(vq.used_elem(0).id == a);
    CHECK(vq.used_elem(0).len == 5);
}

TEST_CASE("Queue give_back takes several chains back, newest first", "[virtqueue]") {
    VirtqueueBuilder vq(8);
    Queue& queue = vq.queue();
    uint16_t a = vq.add_chain({vq.readable(1)});
    uint16_t b = vq.add_chain({vq.readable(2)});
    uint16_t c = vq.add_chain({vq.readable(3)});
    auto ca = queue.pop(vq.memory());
    auto cb = queue.pop(vq.memory());
    auto cc = queue.pop(vq.memory());
    REQUIRE(queue.next_avail() == 3);
    // Oldest first is refused, and changes nothing.
    CHECK_THROWS_WITH(queue.give_back(*ca),
                      Contains("cannot give back the chain at head 0: only chains popped since "
                               "the last add_used() go back, the most recent first"));
    CHECK_THROWS_AS(queue.give_back(*cb), vmm::Error);
    CHECK(queue.next_avail() == 3);
    queue.give_back(*cc);
    queue.give_back(*cb);
    CHECK(queue.next_avail() == 1);
    auto cb2 = queue.pop(vq.memory());
    auto cc2 = queue.pop(vq.memory());
    CHECK(cb2->head() == b);
    CHECK(cc2->head() == c);
    CHECK_FALSE(queue.pop(vq.memory()));
    // The chains popped again go back too, down to the first.
    queue.give_back(*cc2);
    queue.give_back(*cb2);
    queue.give_back(*ca);
    CHECK(queue.next_avail() == 0);
    CHECK(queue.pop(vq.memory())->head() == a);
}

TEST_CASE("Queue give_back refuses a chain given back already", "[virtqueue]") {
    VirtqueueBuilder vq(8);
    Queue& queue = vq.queue();
    vq.add_chain({vq.readable(1)});
    vq.add_chain({vq.readable(1)});
    auto first = queue.pop(vq.memory());
    auto second = queue.pop(vq.memory());
    queue.give_back(*second);
    CHECK_THROWS_WITH(queue.give_back(*second), Contains("cannot give back the chain at head 1"));
    CHECK(queue.next_avail() == 1);
    // The copy popped again is the one that may go back now, and only once.
    auto again = queue.pop(vq.memory());
    queue.give_back(*again);
    queue.give_back(*first);
    CHECK_THROWS_AS(queue.give_back(*first), vmm::Error);
    CHECK(queue.next_avail() == 0);
}

TEST_CASE("Queue give_back refuses chains popped before the last add_used", "[virtqueue]") {
    VirtqueueBuilder vq(8);
    Queue& queue = vq.queue();
    vq.add_chain({vq.writable(1)});
    vq.add_chain({vq.writable(1)});
    vq.add_chain({vq.writable(1)});
    auto a = queue.pop(vq.memory());
    auto b = queue.pop(vq.memory());
    queue.add_used(vq.memory(), a->head(), 0);
    // b was never used, but it was popped before that add_used.
    CHECK_THROWS_AS(queue.give_back(*b), vmm::Error);
    CHECK_THROWS_AS(queue.give_back(*a), vmm::Error);  // used: the driver owns it again
    CHECK(queue.next_avail() == 2);
    auto c = queue.pop(vq.memory());
    CHECK_NOTHROW(queue.give_back(*c));
    CHECK(queue.next_avail() == 2);
}

TEST_CASE("Queue give_back refuses a chain from another queue or from before a reset",
          "[virtqueue]") {
    VirtqueueBuilder vq(8);
    VirtqueueBuilder other(8);
    vq.add_chain({vq.readable(1)});
    other.add_chain({other.readable(1)});
    auto mine = vq.queue().pop(vq.memory());
    auto theirs = other.queue().pop(other.memory());
    // Same head, same position in the ring: still not this queue's.
    REQUIRE(theirs->head() == mine->head());
    CHECK_THROWS_WITH(vq.queue().give_back(*theirs),
                      Contains("it was not popped from this queue since the queue's last reset"));
    // Nor a chain parsed without a queue.
    auto parsed =
        vmm::DescriptorChain::parse(vq.memory(), VirtqueueBuilder::kDescTable, 8, 0, false);
    CHECK_THROWS_AS(vq.queue().give_back(parsed), vmm::Error);
    CHECK(vq.queue().next_avail() == 1);

    SECTION("a reset") {
        vq.queue().reset();
        CHECK_THROWS_WITH(vq.queue().give_back(*mine), Contains("since the queue's last reset"));
        CHECK(vq.queue().next_avail() == 0);
    }
    SECTION("a restore of next_avail") {
        vq.queue().set_next_avail(1);
        CHECK_THROWS_AS(vq.queue().give_back(*mine), vmm::Error);
        CHECK(vq.queue().next_avail() == 1);
    }
}

TEST_CASE("Queue give_back goes back at most a queue's worth of pops", "[virtqueue]") {
    VirtqueueBuilder vq(4);
    Queue& queue = vq.queue();
    // Eight pops without a single add_used: a driver republishing heads
    // the device still holds (a bug or an attack).
    std::vector<vmm::DescriptorChain> chains;
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 4; ++i) {
            vq.add_chain({vq.readable(1)});
        }
        for (int i = 0; i < 4; ++i) {
            chains.push_back(*queue.pop(vq.memory()));
        }
    }
    for (int i = 7; i >= 4; --i) {
        queue.give_back(chains[size_t(i)]);
    }
    CHECK(queue.next_avail() == 4);
    CHECK_THROWS_AS(queue.give_back(chains[3]), vmm::Error);
    CHECK(queue.next_avail() == 4);
}

TEST_CASE("Queue give_back across the 16-bit wrap of the indices", "[virtqueue]") {
    VirtqueueBuilder vq(4);
    vq.start_indices_at(0xffff);
    uint16_t a = vq.add_chain({vq.readable(1)});
    uint16_t b = vq.add_chain({vq.readable(1)});
    auto ca = vq.queue().pop(vq.memory());
    auto cb = vq.queue().pop(vq.memory());
    CHECK(vq.queue().next_avail() == 1);
    vq.queue().give_back(*cb);
    vq.queue().give_back(*ca);
    CHECK(vq.queue().next_avail() == 0xffff);
    CHECK(vq.queue().pop(vq.memory())->head() == a);
    CHECK(vq.queue().pop(vq.memory())->head() == b);
}

TEST_CASE("Queue pop after give_back validates what the driver rewrote meanwhile", "[virtqueue]") {
    VirtqueueBuilder vq(8);
    Queue& queue = vq.queue();
    vq.add_chain({vq.readable(8)});
    auto chain = queue.pop(vq.memory());
    queue.give_back(*chain);
    SECTION("the ring entry now names a head beyond the queue") {
        vq.memory().write_obj<uint16_t>(GuestAddress(VirtqueueBuilder::kAvailRing.value() + 4),
                                        200);
        CHECK_THROWS_WITH(queue.pop(vq.memory()), Contains("head index 200"));
        CHECK(queue.next_avail() == 0);
    }
    SECTION("the descriptor now points outside guest RAM") {
        vq.set_desc(chain->head(), {kRam - 4, 8, 0, 0});
        CHECK_THROWS_AS(queue.pop(vq.memory()), QueueError);
        CHECK(queue.next_avail() == 0);
    }
    SECTION("the descriptor now loops") {
        vq.set_desc(chain->head(), {0x10000, 8, vmm::VIRTQ_DESC_F_NEXT, chain->head()});
        CHECK_THROWS_WITH(queue.pop(vq.memory()), Contains("(a loop)"));
    }
    SECTION("the ring entry now names another valid chain") {
        vq.set_desc(5, vq.writable(32));
        vq.memory().write_obj<uint16_t>(GuestAddress(VirtqueueBuilder::kAvailRing.value() + 4), 5);
        auto other = queue.pop(vq.memory());
        REQUIRE(other);
        CHECK(other->head() == 5);
        CHECK(other->writable_bytes() == 32);
    }
    SECTION("the driver took the entry back by lowering avail idx") {
        vq.set_avail_idx(0);
        CHECK_FALSE(queue.pop(vq.memory()));
        CHECK(queue.next_avail() == 0);
    }
}

TEST_CASE("Queue give_back with EVENT_IDX keeps asking for the next new entry", "[virtqueue]") {
    VirtqueueBuilder vq(8, kEventIdx);
    Queue& queue = vq.queue();
    vq.add_chain({vq.writable(8)});
    vq.add_chain({vq.writable(8)});
    auto a = queue.pop(vq.memory());
    auto b = queue.pop(vq.memory());
    CHECK_FALSE(queue.pop(vq.memory()));  // asks to hear of entry 2
    CHECK(vq.avail_event() == 2);
    queue.give_back(*b);
    queue.give_back(*a);
    CHECK(queue.next_avail() == 0);
    // The driver notifies when it adds entry 2, which is what the device that
    // gave these back waits for.
    CHECK(vq.avail_event() == 2);
}
