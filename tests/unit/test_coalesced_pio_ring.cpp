// CoalescedPioRing: delivers the port writes KVM queued, in order, and
// hands the entries back.
#include <linux/kvm.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <utility>
#include <vector>

#include "vmm/kvm/coalesced_pio_ring.hpp"

namespace {

// A ring page laid out as the kernel writes it: first, last, then entries
// from byte 8.
struct FakeRing {
    std::vector<uint8_t> page = std::vector<uint8_t>(static_cast<size_t>(sysconf(_SC_PAGESIZE)));
    uint32_t entries() const { return static_cast<uint32_t>((page.size() - 8) / 24); }
    uint32_t first() const { return word(0); }
    uint32_t last() const { return word(4); }
    void set_first(uint32_t value) { std::memcpy(page.data(), &value, 4); }
    void set_last(uint32_t value) { std::memcpy(page.data() + 4, &value, 4); }
    uint32_t word(size_t at) const {
        uint32_t value = 0;
        std::memcpy(&value, page.data() + at, 4);
        return value;
    }
    // KVM's side: one queued write.
    void push(uint16_t port, uint8_t byte, uint32_t pio = 1, uint32_t len = 1) {
        kvm_coalesced_mmio entry{};
        entry.phys_addr = port;
        entry.len = len;
        entry.pio = pio;
        entry.data[0] = byte;
        std::memcpy(page.data() + 8 + size_t(last()) * 24, &entry, sizeof(entry));
        set_last((last() + 1) % entries());
    }
};

using Writes = std::vector<std::pair<uint16_t, std::vector<uint8_t>>>;

}  // namespace

TEST_CASE("CoalescedPioRing delivers queued writes in order and frees them", "[coalesced]") {
    FakeRing ring;
    Writes seen;
    vmm::CoalescedPioRing drain(
        ring.page.data(), [&seen](uint16_t port, std::span<const uint8_t> d) {
            seen.emplace_back(port, std::vector<uint8_t>(d.begin(), d.end()));
        });
    REQUIRE(drain.drain() == 0);
    REQUIRE(seen.empty());

    ring.push(0x3f8, 'h');
    ring.push(0x3f8, 'i');
    REQUIRE(drain.drain() == 2);
    REQUIRE(seen == Writes{{0x3f8, {'h'}}, {0x3f8, {'i'}}});
    REQUIRE(ring.first() == 2);

    SECTION("across the end of the ring") {
        seen.clear();
        ring.set_first(ring.entries() - 1);
        ring.set_last(ring.entries() - 1);
        ring.push(0x3f8, 'x');
        ring.push(0x3f8, 'y');
        REQUIRE(ring.last() == 1);
        drain.drain();
        REQUIRE(seen == Writes{{0x3f8, {'x'}}, {0x3f8, {'y'}}});
        REQUIRE(ring.first() == 1);
    }
    SECTION("an MMIO entry or a bad length is skipped, not delivered") {
        seen.clear();
        ring.push(0x3f8, 'm', 0);
        ring.push(0x3f8, 'l', 1, 9);
        ring.push(0x3f8, 'z');
        REQUIRE(drain.drain() == 3);  // taken off the ring, delivered or not
        REQUIRE(seen == Writes{{0x3f8, {'z'}}});
        REQUIRE(ring.first() == ring.last());
    }
    SECTION("an index past the ring stops the drain") {
        seen.clear();
        ring.set_last(ring.entries() + 5);
        drain.drain();
        REQUIRE(seen.empty());
        REQUIRE(ring.first() == 2);
    }
}
