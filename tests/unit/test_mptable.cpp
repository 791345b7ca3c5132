// write_mp_table: the MP 1.4 tables read back the way Linux's mpparse.c finds
// and walks them (scan for "_MP_", checksums, then the entries by type).
#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <string>

#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/mptable.hpp"
#include "test_helpers.hpp"

using test::Bytes;
using test::get;
using vmm::x86::write_mp_table;

namespace {

uint8_t byte_sum(const Bytes& bytes, size_t offset, size_t length) {
    uint8_t sum = 0;
    for (size_t i = offset; i < offset + length; ++i) {
        sum = static_cast<uint8_t>(sum + bytes[i]);
    }
    return sum;
}

// Linux's smp_scan_config: 16-byte steps, signature, length 1, checksum,
// spec revision 1 or 4.
std::optional<uint64_t> scan_for_floating_pointer(const vmm::GuestMemory& memory, uint64_t base,
                                                  uint64_t length) {
    Bytes area = test::read_guest(memory, base, length);
    for (size_t at = 0; at + 16 <= area.size(); at += 16) {
        if (std::memcmp(&area[at], "_MP_", 4) == 0 && area[at + 8] == 1 &&
            byte_sum(area, at, 16) == 0 && (area[at + 9] == 1 || area[at + 9] == 4)) {
            return base + at;
        }
    }
    return std::nullopt;
}

struct Processor {
    uint8_t apic_id;
    uint8_t version;
    uint8_t flags;
};

struct Interrupt {
    uint8_t kind;
    uint16_t flags;
    uint8_t bus;
    uint8_t source_irq;
    uint8_t destination;
    uint8_t pin;
};

struct ParsedTable {
    uint64_t floating_pointer;
    uint64_t config_address;
    uint16_t base_length;
    uint32_t lapic_address;
    std::string oem_id;
    std::vector<Processor> processors;
    std::vector<std::pair<uint8_t, std::string>> buses;
    std::vector<Bytes> ioapics;
    std::vector<Interrupt> io_interrupts;
    std::vector<Interrupt> local_interrupts;
};

Interrupt interrupt_at(const Bytes& table, size_t at) {
    return {table[at + 1], get<uint16_t>(table, at + 2),
            table[at + 4], table[at + 5],
            table[at + 6], table[at + 7]};
}

// Finds and checks everything Linux checks, then sorts the entries by type.
ParsedTable parse(const vmm::GuestMemory& memory) {
    ParsedTable parsed{};
    // Linux looks at the first KiB, the last KiB below 640 KiB, then the BIOS.
    REQUIRE_FALSE(scan_for_floating_pointer(memory, 0, 0x400));
    REQUIRE_FALSE(scan_for_floating_pointer(memory, 639 * 0x400, 0x400));
    auto found = scan_for_floating_pointer(memory, 0xf0000, 0x10000);
    REQUIRE(found);
    parsed.floating_pointer = *found;
    Bytes pointer = test::read_guest(memory, *found, 16);
    CHECK(pointer[9] == 4);   // MP 1.4
    CHECK(pointer[11] == 0);  // feature 1: a configuration table, not a default one
    CHECK(pointer[12] == 0);  // feature 2: no IMCR (virtual wire mode)
    parsed.config_address = get<uint32_t>(pointer, 4);
    REQUIRE(parsed.config_address != 0);

    Bytes header = test::read_guest(memory, parsed.config_address, 44);
    REQUIRE(std::memcmp(header.data(), "PCMP", 4) == 0);
    parsed.base_length = get<uint16_t>(header, 4);
    REQUIRE(parsed.base_length >= 44);
    CHECK(header[6] == 4);
    parsed.oem_id = std::string(header.begin() + 8, header.begin() + 16);
    parsed.lapic_address = get<uint32_t>(header, 36);
    CHECK(get<uint16_t>(header, 40) == 0);  // no extended table
    uint16_t entry_count = get<uint16_t>(header, 34);

    Bytes table = test::read_guest(memory, parsed.config_address, parsed.base_length);
    CHECK(byte_sum(table, 0, table.size()) == 0);
    size_t at = 44;
    uint16_t seen = 0;
    int last_type = -1;
    while (at < table.size()) {
        uint8_t type = table[at];
        INFO("entry at offset " << at << ", type " << int(type));
        REQUIRE(type <= 4);
        CHECK(int(type) >= last_type);  // sorted by type, as the spec orders them
        last_type = type;
        size_t size = type == 0 ? 20 : 8;
        REQUIRE(at + size <= table.size());
        switch (type) {
            case 0:
                parsed.processors.push_back({table[at + 1], table[at + 2], table[at + 3]});
                break;
            case 1:
                parsed.buses.emplace_back(
                    table[at + 1], std::string(table.begin() + at + 2, table.begin() + at + 8));
                break;
            case 2:
                parsed.ioapics.emplace_back(table.begin() + at, table.begin() + at + 8);
                break;
            case 3:
                parsed.io_interrupts.push_back(interrupt_at(table, at));
                break;
            case 4:
                parsed.local_interrupts.push_back(interrupt_at(table, at));
                break;
        }
        at += size;
        ++seen;
    }
    CHECK(at == table.size());
    CHECK(seen == entry_count);
    return parsed;
}

constexpr uint8_t kEnabled = 1;
constexpr uint8_t kBootstrap = 2;
constexpr uint16_t kActiveHighEdge = 0x5;

}  // namespace

TEST_CASE("MP table: found by Linux's scan, checksummed, in its 4 KiB", "[mptable]") {
    auto memory = test::make_guest_memory();
    uint64_t address = write_mp_table(memory, 2);
    ParsedTable table = parse(memory);
    CHECK(table.floating_pointer == address);
    CHECK(address == vmm::x86::kMpTableAddress);
    CHECK(table.oem_id == "VMMVMM  ");
    CHECK(table.lapic_address == 0xfee00000);
    // The config table follows the pointer and ends inside the region, clear
    // of the ACPI tables below it.
    CHECK(table.config_address == address + 16);
    CHECK(table.config_address + table.base_length <=
          vmm::x86::kMpTableAddress + vmm::x86::kMpTableSize);
    CHECK(vmm::x86::kAcpiTablesAddress + vmm::x86::kAcpiTablesSize <= address);
}

TEST_CASE("MP table: one processor per vCPU, APIC ID = index, BSP 0", "[mptable]") {
    for (uint32_t count : {1u, 2u, 4u, 32u, vmm::x86::kMpTableMaxVcpus}) {
        INFO(count << " vCPUs");
        auto memory = test::make_guest_memory();
        write_mp_table(memory, count);
        ParsedTable table = parse(memory);
        REQUIRE(table.processors.size() == count);
        for (uint32_t i = 0; i < count; ++i) {
            INFO("processor " << i);
            CHECK(table.processors[i].apic_id == i);
            CHECK(table.processors[i].version == 0x14);  // KVM's LAPIC version
            CHECK((table.processors[i].flags & kEnabled) != 0);
            CHECK(((table.processors[i].flags & kBootstrap) != 0) == (i == 0));
        }
        REQUIRE(table.ioapics.size() == 1);
        CHECK(table.ioapics[0][1] == count);  // IOAPIC ID after the LAPIC IDs
        CHECK(table.config_address + table.base_length <=
              vmm::x86::kMpTableAddress + vmm::x86::kMpTableSize);
    }
}

TEST_CASE("MP table: the ISA bus and the IOAPIC", "[mptable]") {
    auto memory = test::make_guest_memory();
    write_mp_table(memory, 4);
    ParsedTable table = parse(memory);
    REQUIRE(table.buses.size() == 1);
    CHECK(table.buses[0].second == "ISA   ");
    REQUIRE(table.ioapics.size() == 1);
    const Bytes& ioapic = table.ioapics[0];
    CHECK(ioapic[1] == 4);
    CHECK(ioapic[2] == 0x11);
    CHECK((ioapic[3] & 1) == 1);  // usable: Linux ignores the IOAPIC otherwise
    CHECK(get<uint32_t>(ioapic, 4) == 0xfec00000);
}

TEST_CASE("MP table: every IOAPIC pin but the cascade is an edge ISA IRQ", "[mptable]") {
    auto memory = test::make_guest_memory();
    write_mp_table(memory, 4);
    ParsedTable table = parse(memory);
    REQUIRE(table.buses.size() == 1);
    uint8_t isa = table.buses[0].first;
    std::map<uint8_t, Interrupt> by_pin;
    for (const Interrupt& entry : table.io_interrupts) {
        INFO("pin " << int(entry.pin));
        CHECK(entry.kind == 0);  // INT: no ExtINT pin, KVM's PIC reaches LINT0 only
        CHECK(entry.bus == isa);
        CHECK(entry.destination == 4);
        CHECK(entry.flags == kActiveHighEdge);
        CHECK(by_pin.count(entry.pin) == 0);
        by_pin[entry.pin] = entry;
    }
    // Pins 0..23 minus 2; IRQ n on pin n, the PIT's IRQ 0 included, because
    // KVM's default routing sends GSI 0 to pin 0.
    CHECK(by_pin.size() == 23);
    CHECK(by_pin.count(2) == 0);
    for (uint8_t pin = 0; pin < 24; ++pin) {
        if (pin == 2) {
            continue;
        }
        INFO("pin " << int(pin));
        REQUIRE(by_pin.count(pin) == 1);
        CHECK(by_pin[pin].source_irq == pin);
    }
}

TEST_CASE("MP table: LINT0 ExtINT and LINT1 NMI on every LAPIC", "[mptable]") {
    auto memory = test::make_guest_memory();
    write_mp_table(memory, 2);
    ParsedTable table = parse(memory);
    REQUIRE(table.local_interrupts.size() == 2);
    std::map<uint8_t, uint8_t> kind_by_lint;
    for (const Interrupt& entry : table.local_interrupts) {
        CHECK(entry.destination == 0xff);
        kind_by_lint[entry.pin] = entry.kind;
    }
    CHECK(kind_by_lint == std::map<uint8_t, uint8_t>{{0, 3}, {1, 1}});
}

TEST_CASE("MP table: vCPU counts it cannot describe throw", "[mptable]") {
    auto memory = test::make_guest_memory();
    CHECK_THROWS_AS(write_mp_table(memory, 0), vmm::Error);
    CHECK_THROWS_AS(write_mp_table(memory, vmm::x86::kMpTableMaxVcpus + 1), vmm::Error);
    CHECK_THROWS_AS(write_mp_table(memory, 256), vmm::Error);
    // Nothing was written.
    CHECK_FALSE(scan_for_floating_pointer(memory, 0xf0000, 0x10000));
}
