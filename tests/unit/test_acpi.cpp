// write_acpi_tables and the AML encoder: the tables read back the way ACPICA
// and Linux's acpi/boot.c find and check them (RSDP scan, checksums, XSDT
// entries, FADT fields, MADT subtables), and the DSDT's AML decoded.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "arch/x86_64/acpi.hpp"
#include "arch/x86_64/aml.hpp"
#include "arch/x86_64/layout.hpp"
#include "devices/legacy/acpi_power_off.hpp"
#include "test_helpers.hpp"
#include "vmm/core/bus.hpp"

using test::Bytes;
using test::get;
using vmm::x86::AcpiVirtioMmio;
using vmm::x86::write_acpi_tables;

namespace {

constexpr uint64_t kRegionStart = 0xe0000;
constexpr uint64_t kRegionEnd = 0xf0000;

uint8_t byte_sum(const Bytes& bytes, size_t length) {
    uint8_t sum = 0;
    for (size_t i = 0; i < length; ++i) {
        sum = static_cast<uint8_t>(sum + bytes[i]);
    }
    return sum;
}

// ACPICA's acpi_tb_scan_memory_for_rsdp over 0xe0000..0xfffff.
std::vector<uint64_t> scan_for_rsdp(const vmm::GuestMemory& memory) {
    Bytes area = test::read_guest(memory, 0xe0000, 0x20000);
    std::vector<uint64_t> found;
    for (size_t at = 0; at + 36 <= area.size(); at += 16) {
        Bytes candidate(area.begin() + at, area.begin() + at + 36);
        if (std::memcmp(candidate.data(), "RSD PTR ", 8) != 0 || byte_sum(candidate, 20) != 0) {
            continue;
        }
        if (candidate[15] >= 2 && byte_sum(candidate, 36) != 0) {
            continue;
        }
        found.push_back(0xe0000 + at);
    }
    return found;
}

struct Table {
    uint64_t address;
    std::string signature;
    Bytes bytes;
};

// A table with a valid header and checksum, wholly inside the ACPI region.
Table read_table(const vmm::GuestMemory& memory, uint64_t address) {
    INFO("table at " << std::hex << address);
    REQUIRE(address >= kRegionStart);
    REQUIRE(address + 36 <= kRegionEnd);
    Bytes header = test::read_guest(memory, address, 36);
    uint32_t length = get<uint32_t>(header, 4);
    REQUIRE(length >= 36);
    REQUIRE(address + length <= kRegionEnd);
    Table table{address, std::string(header.begin(), header.begin() + 4),
                test::read_guest(memory, address, length)};
    INFO(table.signature);
    CHECK(byte_sum(table.bytes, length) == 0);
    CHECK(std::string(table.bytes.begin() + 10, table.bytes.begin() + 16) == "VMMVMM");
    CHECK(get<uint32_t>(table.bytes, 28) != 0);  // creator ID
    CHECK(get<uint32_t>(table.bytes, 32) != 0);  // creator revision
    return table;
}

struct Tables {
    uint64_t rsdp;
    Table xsdt;
    std::map<std::string, Table> by_signature;  // what the XSDT lists, and the DSDT
};

Tables read_all(const vmm::GuestMemory& memory, uint64_t returned_rsdp) {
    auto found = scan_for_rsdp(memory);
    REQUIRE(found.size() == 1);
    CHECK(found[0] == returned_rsdp);
    CHECK(found[0] % 16 == 0);
    Bytes rsdp = test::read_guest(memory, found[0], 36);
    CHECK(rsdp[15] == 2);
    CHECK(get<uint32_t>(rsdp, 20) == 36);
    CHECK(get<uint32_t>(rsdp, 16) == 0);  // no RSDT
    uint64_t xsdt_address = get<uint64_t>(rsdp, 24);

    Tables tables{found[0], read_table(memory, xsdt_address), {}};
    CHECK(tables.xsdt.signature == "XSDT");
    CHECK(tables.xsdt.bytes[8] == 1);
    size_t entries_size = tables.xsdt.bytes.size() - 36;
    REQUIRE(entries_size % 8 == 0);
    for (size_t at = 36; at < tables.xsdt.bytes.size(); at += 8) {
        Table table = read_table(memory, get<uint64_t>(tables.xsdt.bytes, at));
        CHECK(tables.by_signature.count(table.signature) == 0);
        tables.by_signature.emplace(table.signature, table);
    }
    REQUIRE(tables.by_signature.count("FACP") == 1);
    const Bytes& fadt = tables.by_signature.at("FACP").bytes;
    REQUIRE(fadt.size() == 276);
    Table dsdt = read_table(memory, get<uint64_t>(fadt, 140));
    CHECK(dsdt.signature == "DSDT");
    tables.by_signature.emplace("DSDT", dsdt);
    return tables;
}

// No two tables (RSDP included) share a byte.
void check_disjoint(const Tables& tables) {
    std::vector<std::pair<uint64_t, uint64_t>> ranges{
        {tables.rsdp, tables.rsdp + 36},
        {tables.xsdt.address, tables.xsdt.address + tables.xsdt.bytes.size()}};
    for (const auto& [signature, table] : tables.by_signature) {
        ranges.emplace_back(table.address, table.address + table.bytes.size());
    }
    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 1; i < ranges.size(); ++i) {
        CHECK(ranges[i - 1].second <= ranges[i].first);
    }
}

struct MadtEntry {
    uint8_t type;
    Bytes bytes;
};

std::vector<MadtEntry> madt_entries(const Bytes& madt) {
    std::vector<MadtEntry> entries;
    size_t at = 44;
    while (at < madt.size()) {
        REQUIRE(at + 2 <= madt.size());
        uint8_t length = madt[at + 1];
        INFO("MADT entry at " << at);
        REQUIRE(length >= 2);
        REQUIRE(at + length <= madt.size());
        entries.push_back({madt[at], Bytes(madt.begin() + at, madt.begin() + at + length)});
        at += length;
    }
    CHECK(at == madt.size());
    return entries;
}

// ---- a small AML reader for the DSDT ----------------------------------------

using AmlValue = std::variant<uint64_t, std::string, Bytes>;
using AmlDevice = std::map<std::string, AmlValue>;

struct AmlReader {
    const Bytes& bytes;
    size_t at;

    uint8_t next() {
        REQUIRE(at < bytes.size());
        return bytes[at++];
    }
    // Returns where the package that starts here ends.
    size_t package_end() {
        size_t start = at;
        uint8_t lead = next();
        size_t follow = lead >> 6;
        size_t length = follow == 0 ? (lead & 0x3f) : (lead & 0x0f);
        for (size_t i = 0; i < follow; ++i) {
            length |= size_t(next()) << (4 + 8 * i);
        }
        REQUIRE(start + length <= bytes.size());
        return start + length;
    }
    std::string name_segment() {
        std::string name;
        for (int i = 0; i < 4; ++i) {
            name.push_back(static_cast<char>(next()));
        }
        return name;
    }
    uint64_t little_endian(size_t size) {
        uint64_t value = 0;
        for (size_t i = 0; i < size; ++i) {
            value |= uint64_t(next()) << (8 * i);
        }
        return value;
    }
    AmlValue data_object() {
        uint8_t op = next();
        switch (op) {
            case 0x00:
                return uint64_t{0};
            case 0x01:
                return uint64_t{1};
            case 0x0a:
                return little_endian(1);
            case 0x0b:
                return little_endian(2);
            case 0x0c:
                return little_endian(4);
            case 0x0e:
                return little_endian(8);
            case 0x0d: {
                std::string text;
                for (uint8_t c = next(); c != 0; c = next()) {
                    text.push_back(static_cast<char>(c));
                }
                return text;
            }
            case 0x11: {
                size_t end = package_end();
                AmlValue size = data_object();
                REQUIRE(std::holds_alternative<uint64_t>(size));
                Bytes data(bytes.begin() + at, bytes.begin() + end);
                CHECK(data.size() == std::get<uint64_t>(size));
                at = end;
                return data;
            }
        }
        FAIL("unexpected AML opcode " << int(op) << " at " << at - 1);
        return uint64_t{0};
    }
    // Package () { integers }, NumElements checked against what follows.
    std::vector<uint64_t> integer_package() {
        REQUIRE(next() == 0x12);
        size_t end = package_end();
        size_t count = next();
        std::vector<uint64_t> values;
        while (at < end) {
            AmlValue value = data_object();
            REQUIRE(std::holds_alternative<uint64_t>(value));
            values.push_back(std::get<uint64_t>(value));
        }
        CHECK(at == end);
        CHECK(values.size() == count);
        return values;
    }
};

using RootPackages = std::map<std::string, std::vector<uint64_t>>;

// Name (...) packages at the root (\_S5_), then Scope (\_SB) { Device (...) {
// Name (...) ... } ... }: every device's names, and in `root` the packages.
std::map<std::string, AmlDevice> decode_dsdt(const Bytes& dsdt, RootPackages* root = nullptr) {
    AmlReader reader{dsdt, 36};
    RootPackages packages;
    while (reader.at < dsdt.size() && dsdt[reader.at] == 0x08) {
        reader.next();
        std::string name = reader.name_segment();
        CHECK(packages.count(name) == 0);
        packages[name] = reader.integer_package();
    }
    if (root != nullptr) {
        *root = packages;
    }
    REQUIRE(reader.next() == 0x10);
    size_t scope_end = reader.package_end();
    CHECK(scope_end == dsdt.size());
    REQUIRE(reader.next() == '\\');
    CHECK(reader.name_segment() == "_SB_");
    std::map<std::string, AmlDevice> devices;
    while (reader.at < scope_end) {
        REQUIRE(reader.next() == 0x5b);
        REQUIRE(reader.next() == 0x82);
        size_t device_end = reader.package_end();
        std::string name = reader.name_segment();
        CHECK(devices.count(name) == 0);
        AmlDevice& device = devices[name];
        while (reader.at < device_end) {
            REQUIRE(reader.next() == 0x08);
            std::string object = reader.name_segment();
            device[object] = reader.data_object();
        }
        CHECK(reader.at == device_end);
    }
    CHECK(reader.at == dsdt.size());
    return devices;
}

struct Resources {
    std::vector<std::pair<uint16_t, uint8_t>> io;          // base (min = max), length
    std::vector<std::pair<uint32_t, uint32_t>> memory32;   // base, length
    std::vector<std::pair<uint8_t, uint32_t>> interrupts;  // flags, GSI
};

// The descriptors of a _CRS buffer, which must end with an end tag.
Resources decode_resources(const Bytes& buffer) {
    Resources resources;
    size_t at = 0;
    bool ended = false;
    while (at < buffer.size() && !ended) {
        uint8_t tag = buffer[at];
        INFO("descriptor " << int(tag) << " at " << at);
        if (tag & 0x80) {
            REQUIRE(at + 3 <= buffer.size());
            size_t length = get<uint16_t>(buffer, at + 1);
            REQUIRE(at + 3 + length <= buffer.size());
            if (tag == 0x86) {
                REQUIRE(length == 9);
                CHECK(buffer[at + 3] == 1);  // read-write
                resources.memory32.emplace_back(get<uint32_t>(buffer, at + 4),
                                                get<uint32_t>(buffer, at + 8));
            } else if (tag == 0x89) {
                REQUIRE(length >= 6);
                REQUIRE(buffer[at + 4] == 1);
                CHECK(length == 6);  // no resource source
                resources.interrupts.emplace_back(buffer[at + 3], get<uint32_t>(buffer, at + 5));
            } else {
                FAIL("unexpected large descriptor");
            }
            at += 3 + length;
        } else {
            size_t length = tag & 0x07;
            REQUIRE(at + 1 + length <= buffer.size());
            uint8_t item = (tag >> 3) & 0x0f;
            if (item == 0x08) {
                REQUIRE(length == 7);
                CHECK(buffer[at + 1] == 1);  // 16-bit decode
                CHECK(get<uint16_t>(buffer, at + 2) == get<uint16_t>(buffer, at + 4));
                resources.io.emplace_back(get<uint16_t>(buffer, at + 2), buffer[at + 7]);
            } else if (item == 0x0f) {
                REQUIRE(length == 1);
                ended = true;
            } else {
                FAIL("unexpected small descriptor");
            }
            at += 1 + length;
        }
    }
    CHECK(ended);
    CHECK(at == buffer.size());
    return resources;
}

constexpr uint8_t kConsumerEdgeHighExclusive = 0x03;

}  // namespace

TEST_CASE("ACPI: the RSDP is found by scanning and leads to checksummed tables", "[acpi]") {
    auto memory = test::make_guest_memory();
    uint64_t rsdp = write_acpi_tables(memory, 2);
    CHECK(rsdp == vmm::x86::kAcpiTablesAddress);
    Tables tables = read_all(memory, rsdp);
    // The XSDT lists exactly the FADT and the MADT.
    CHECK(tables.xsdt.bytes.size() == 36 + 2 * 8);
    CHECK(tables.by_signature.count("APIC") == 1);
    CHECK(tables.by_signature.size() == 3);
    check_disjoint(tables);
    // The MP table's region above stays untouched.
    Bytes above = test::read_guest(memory, kRegionEnd, 0x1000);
    CHECK(std::all_of(above.begin(), above.end(), [](uint8_t b) { return b == 0; }));
}

TEST_CASE("ACPI: FADT is hardware-reduced, points at the DSDT, resets via 0x64, sleeps via 0x3c0",
          "[acpi]") {
    auto memory = test::make_guest_memory();
    Tables tables = read_all(memory, write_acpi_tables(memory, 1));
    const Bytes& fadt = tables.by_signature.at("FACP").bytes;
    CHECK(fadt[8] == 6);    // revision
    CHECK(fadt[131] == 3);  // ACPI 6.3
    uint32_t flags = get<uint32_t>(fadt, 112);
    CHECK((flags & (1u << 20)) != 0);  // HW_REDUCED_ACPI
    CHECK((flags & (1u << 10)) != 0);  // RESET_REG_SUP
    uint64_t dsdt = tables.by_signature.at("DSDT").address;
    CHECK(get<uint64_t>(fadt, 140) == dsdt);  // X_DSDT
    CHECK(get<uint32_t>(fadt, 40) == dsdt);   // DSDT, the same
    CHECK(get<uint64_t>(fadt, 132) == 0);     // no FACS when hardware-reduced
    CHECK(get<uint32_t>(fadt, 36) == 0);

    // RESET_REG: system I/O, 8 bits at offset 0, byte access, port 0x64.
    CHECK(fadt[116] == 1);
    CHECK(fadt[117] == 8);
    CHECK(fadt[118] == 0);
    CHECK(fadt[119] == 1);
    CHECK(get<uint64_t>(fadt, 120) == 0x64);
    CHECK(fadt[128] == 0xfe);  // RESET_VALUE

    // SLEEP_CONTROL_REG and SLEEP_STATUS_REG: the same byte, port 0x3c0.
    for (size_t at : {244, 256}) {
        INFO("GAS at " << at);
        CHECK(fadt[at] == 1);      // system I/O
        CHECK(fadt[at + 1] == 8);  // bits
        CHECK(fadt[at + 2] == 0);  // bit offset
        CHECK(fadt[at + 3] == 1);  // byte access
        CHECK(get<uint64_t>(fadt, at + 4) == 0x3c0);
        CHECK(get<uint64_t>(fadt, at + 4) == vmm::x86::kAcpiSleepPort);
    }
    CHECK(get<uint64_t>(fadt, 268) == 0);  // hypervisor vendor identity

    uint16_t boot_arch = get<uint16_t>(fadt, 109);
    CHECK((boot_arch & (1 << 2)) != 0);  // VGA not present
    CHECK((boot_arch & (1 << 5)) != 0);  // CMOS RTC not present
    CHECK((boot_arch & (1 << 1)) == 0);  // no 8042 to probe
    // No fixed hardware: SCI, PM1 blocks and the PM timer are all zero.
    CHECK(get<uint16_t>(fadt, 46) == 0);
    CHECK(get<uint32_t>(fadt, 56) == 0);
    CHECK(get<uint32_t>(fadt, 64) == 0);
    CHECK(get<uint32_t>(fadt, 76) == 0);
}

TEST_CASE("ACPI: MADT has one enabled LAPIC per vCPU, the IOAPIC and the NMI", "[acpi]") {
    for (uint32_t count : {1u, 2u, 4u, 32u, vmm::x86::kAcpiMaxVcpus}) {
        INFO(count << " vCPUs");
        auto memory = test::make_guest_memory();
        Tables tables = read_all(memory, write_acpi_tables(memory, count));
        const Bytes& madt = tables.by_signature.at("APIC").bytes;
        CHECK(madt[8] == 5);
        CHECK(get<uint32_t>(madt, 36) == 0xfee00000);
        CHECK(get<uint32_t>(madt, 40) == 1);  // PCAT_COMPAT
        std::vector<Bytes> lapics, ioapics, nmis;
        for (const MadtEntry& entry : madt_entries(madt)) {
            INFO("type " << int(entry.type));
            switch (entry.type) {
                case 0:
                    CHECK(entry.bytes.size() == 8);
                    lapics.push_back(entry.bytes);
                    break;
                case 1:
                    CHECK(entry.bytes.size() == 12);
                    ioapics.push_back(entry.bytes);
                    break;
                case 4:
                    CHECK(entry.bytes.size() == 6);
                    nmis.push_back(entry.bytes);
                    break;
                default:
                    // Interrupt Source Overrides included: ISA IRQs are
                    // identity-mapped, the PIT on GSI 0 as KVM routes it.
                    FAIL("unexpected MADT entry type");
            }
        }
        REQUIRE(lapics.size() == count);
        for (uint32_t i = 0; i < count; ++i) {
            INFO("LAPIC " << i);
            CHECK(lapics[i][2] == i);                 // ACPI processor UID
            CHECK(lapics[i][3] == i);                 // APIC ID
            CHECK(get<uint32_t>(lapics[i], 4) == 1);  // enabled
            CHECK(lapics[i][3] != 0xff);              // Linux ignores APIC ID 0xff
        }
        REQUIRE(ioapics.size() == 1);
        CHECK(ioapics[0][2] == count);
        CHECK(get<uint32_t>(ioapics[0], 4) == 0xfec00000);
        CHECK(get<uint32_t>(ioapics[0], 8) == 0);  // GSI base
        REQUIRE(nmis.size() == 1);
        CHECK(nmis[0][2] == 0xff);  // all processors
        CHECK(nmis[0][5] == 1);     // LINT1
    }
}

TEST_CASE("ACPI: vCPU counts the xAPIC MADT cannot describe throw", "[acpi]") {
    auto memory = test::make_guest_memory();
    CHECK_THROWS_AS(write_acpi_tables(memory, 0), vmm::Error);
    CHECK_THROWS_AS(write_acpi_tables(memory, 256), vmm::Error);
    CHECK_THROWS_AS(write_acpi_tables(memory, 1000), vmm::Error);
    CHECK(scan_for_rsdp(memory).empty());
}

TEST_CASE("ACPI: DSDT declares COM1 with its port and IRQ", "[acpi]") {
    auto memory = test::make_guest_memory();
    Tables tables = read_all(memory, write_acpi_tables(memory, 1));
    const Bytes& dsdt = tables.by_signature.at("DSDT").bytes;
    CHECK(dsdt[8] == 2);  // 64-bit integers
    auto devices = decode_dsdt(dsdt);
    REQUIRE(devices.size() == 1);
    REQUIRE(devices.count("COM1") == 1);
    AmlDevice& com1 = devices["COM1"];
    // EisaId ("PNP0501") as iasl compiles it.
    CHECK(std::get<uint64_t>(com1["_HID"]) == 0x0105d041);
    CHECK(std::get<uint64_t>(com1["_UID"]) == 0);
    Resources resources = decode_resources(std::get<Bytes>(com1["_CRS"]));
    CHECK(resources.io == std::vector<std::pair<uint16_t, uint8_t>>{{0x3f8, 8}});
    CHECK(resources.memory32.empty());
    CHECK(resources.interrupts ==
          std::vector<std::pair<uint8_t, uint32_t>>{{kConsumerEdgeHighExclusive, 4}});
}

TEST_CASE("ACPI: DSDT declares _S5_ at the root with SLP_TYP 5", "[acpi]") {
    auto memory = test::make_guest_memory();
    Tables tables = read_all(memory, write_acpi_tables(memory, 1));
    const Bytes& dsdt = tables.by_signature.at("DSDT").bytes;
    // Name (_S5_, Package (0x01) {0x05}), as iasl compiles it, first in the
    // definition block (the root scope).
    Bytes s5{0x08, '_', 'S', '5', '_', 0x12, 0x04, 0x01, 0x0a, 0x05};
    REQUIRE(dsdt.size() >= 36 + s5.size());
    CHECK(Bytes(dsdt.begin() + 36, dsdt.begin() + 36 + s5.size()) == s5);
    RootPackages root;
    decode_dsdt(dsdt, &root);
    CHECK(root == RootPackages{{"_S5_", {5}}});
}

// What Linux does for poweroff, from the tables: acpi_get_sleep_type_data
// reads \_S5_ (SLP_TYPa is the low byte of a one-element package), then
// acpi_hw_extended_sleep writes WAK_STS to SLEEP_STATUS_REG and
// ((SLP_TYPa << 2) & 0x1c) | SLP_EN to SLEEP_CONTROL_REG, each one byte wide.
TEST_CASE("ACPI: Linux's S5 sequence through the FADT reaches AcpiPowerOff", "[acpi]") {
    auto memory = test::make_guest_memory();
    Tables tables = read_all(memory, write_acpi_tables(memory, 2));
    const Bytes& fadt = tables.by_signature.at("FACP").bytes;
    RootPackages root;
    decode_dsdt(tables.by_signature.at("DSDT").bytes, &root);
    REQUIRE(root.count("_S5_") == 1);
    REQUIRE(root["_S5_"].size() == 1);
    auto sleep_type_a = static_cast<uint8_t>(root["_S5_"][0]);
    CHECK(sleep_type_a <= 7);  // ACPI_SLEEP_TYPE_MAX
    uint8_t control = static_cast<uint8_t>(((sleep_type_a << 2) & 0x1c) | 0x20);
    CHECK(control == 0x34);

    int power_offs = 0;
    vmm::Bus pio;
    pio.insert(vmm::x86::kAcpiSleepPort, 1,
               std::make_shared<vmm::AcpiPowerOff>([&] { ++power_offs; }));
    std::array<uint8_t, 1> wake_status{0x80};
    CHECK(pio.write(get<uint64_t>(fadt, 256 + 4), wake_status));
    CHECK(power_offs == 0);
    std::array<uint8_t, 1> sleep{control};
    CHECK(pio.write(get<uint64_t>(fadt, 244 + 4), sleep));
    CHECK(power_offs == 1);
}

TEST_CASE("ACPI: DSDT declares each virtio-mmio device with its window and GSI", "[acpi]") {
    std::vector<AcpiVirtioMmio> virtio;
    for (uint32_t i = 0; i < 19; ++i) {
        virtio.push_back({0xd0000000 + i * 0x1000ull, 0x1000, 5 + i});
    }
    auto memory = test::make_guest_memory();
    Tables tables = read_all(memory, write_acpi_tables(memory, 32, virtio));
    check_disjoint(tables);
    auto devices = decode_dsdt(tables.by_signature.at("DSDT").bytes);
    REQUIRE(devices.size() == 1 + virtio.size());
    for (size_t i = 0; i < virtio.size(); ++i) {
        std::string name = fmt::format("VR{:02X}", i);
        INFO(name);
        REQUIRE(devices.count(name) == 1);
        AmlDevice& device = devices[name];
        CHECK(std::get<std::string>(device["_HID"]) == "LNRO0005");
        CHECK(std::get<uint64_t>(device["_UID"]) == i);
        Resources resources = decode_resources(std::get<Bytes>(device["_CRS"]));
        CHECK(resources.io.empty());
        auto base = static_cast<uint32_t>(0xd0000000 + i * 0x1000);
        auto gsi = static_cast<uint32_t>(5 + i);
        CHECK(resources.memory32 == std::vector<std::pair<uint32_t, uint32_t>>{{base, 0x1000}});
        CHECK(resources.interrupts ==
              std::vector<std::pair<uint8_t, uint32_t>>{{kConsumerEdgeHighExclusive, gsi}});
    }
}

TEST_CASE("ACPI: virtio-mmio devices the DSDT cannot describe throw", "[acpi]") {
    auto memory = test::make_guest_memory();
    std::vector<AcpiVirtioMmio> bad_gsi{{0xd0000000, 0x1000, 24}};
    CHECK_THROWS_AS(write_acpi_tables(memory, 1, bad_gsi), vmm::Error);
    std::vector<AcpiVirtioMmio> high{{0x100000000, 0x1000, 5}};
    CHECK_THROWS_AS(write_acpi_tables(memory, 1, high), vmm::Error);
    std::vector<AcpiVirtioMmio> straddling{{0xfffff000, 0x2000, 5}};
    CHECK_THROWS_AS(write_acpi_tables(memory, 1, straddling), vmm::Error);
    std::vector<AcpiVirtioMmio> empty{{0xd0000000, 0, 5}};
    CHECK_THROWS_AS(write_acpi_tables(memory, 1, empty), vmm::Error);
    CHECK(scan_for_rsdp(memory).empty());
}

TEST_CASE("AML: PkgLength encodings at their boundaries", "[acpi][aml]") {
    namespace aml = vmm::x86::aml;
    CHECK(aml::pkg_length(0) == Bytes{0x01});
    CHECK(aml::pkg_length(62) == Bytes{0x3f});
    // 63 payload bytes + 2 length bytes = 65 = 0x41.
    CHECK(aml::pkg_length(63) == Bytes{0x41, 0x04});
    CHECK(aml::pkg_length(4093) == Bytes{0x4f, 0xff});           // 4095 total
    CHECK(aml::pkg_length(4094) == Bytes{0x81, 0x00, 0x01});     // 4097 total
    CHECK(aml::pkg_length(0xffffc) == Bytes{0x8f, 0xff, 0xff});  // 2^20 - 1 total
    CHECK(aml::pkg_length(0xffffd) == Bytes{0xc1, 0x00, 0x00, 0x01});
    CHECK_THROWS_AS(aml::pkg_length(size_t{1} << 28), vmm::Error);
}

TEST_CASE("AML: integers, strings, EISA IDs and names", "[acpi][aml]") {
    namespace aml = vmm::x86::aml;
    CHECK(aml::integer(0) == Bytes{0x00});
    CHECK(aml::integer(1) == Bytes{0x01});
    CHECK(aml::integer(2) == Bytes{0x0a, 0x02});
    CHECK(aml::integer(0x3f8) == Bytes{0x0b, 0xf8, 0x03});
    CHECK(aml::integer(0xd0000000) == Bytes{0x0c, 0x00, 0x00, 0x00, 0xd0});
    CHECK(aml::integer(0x100000000) == Bytes{0x0e, 0, 0, 0, 0, 1, 0, 0, 0});
    CHECK(aml::string("AB") == Bytes{0x0d, 'A', 'B', 0x00});
    CHECK(aml::eisa_id("PNP0A03") == Bytes{0x0c, 0x41, 0xd0, 0x0a, 0x03});
    CHECK(aml::name("_UID", aml::integer(0)) == Bytes{0x08, '_', 'U', 'I', 'D', 0x00});
    CHECK(aml::scope("\\_SB_", {}) == Bytes{0x10, 0x06, '\\', '_', 'S', 'B', '_'});
    CHECK(aml::device("COM1", {}) == Bytes{0x5b, 0x82, 0x05, 'C', 'O', 'M', '1'});
    CHECK_THROWS_AS(aml::device("com1", {}), vmm::Error);
    CHECK_THROWS_AS(aml::device("1COM", {}), vmm::Error);
    CHECK_THROWS_AS(aml::name("_HI", {}), vmm::Error);
    CHECK_THROWS_AS(aml::eisa_id("PNP05G1"), vmm::Error);
    CHECK_THROWS_AS(aml::string("a\nb"), vmm::Error);
}

TEST_CASE("AML: packages", "[acpi][aml]") {
    namespace aml = vmm::x86::aml;
    CHECK(aml::package({}) == Bytes{0x12, 0x02, 0x00});
    CHECK(aml::package({aml::integer(5)}) == Bytes{0x12, 0x04, 0x01, 0x0a, 0x05});
    CHECK(aml::package({aml::integer(0), aml::integer(0x3f8), aml::string("A")}) ==
          Bytes{0x12, 0x09, 0x03, 0x00, 0x0b, 0xf8, 0x03, 0x0d, 'A', 0x00});
    CHECK(aml::name("_S5_", aml::package({aml::integer(5)})) ==
          Bytes{0x08, '_', 'S', '5', '_', 0x12, 0x04, 0x01, 0x0a, 0x05});
    // 255 elements of 2 bytes: 511 bytes after a two-byte PkgLength, 513 in all.
    std::vector<Bytes> many(255, aml::integer(2));
    Bytes big = aml::package(many);
    REQUIRE(big.size() == 1 + 2 + 1 + 510);
    CHECK(big[1] == 0x41);  // 513 = 0x201: low nibble 1, one more byte
    CHECK(big[2] == 0x20);
    CHECK(big[3] == 0xff);  // NumElements
    many.push_back(aml::integer(2));
    CHECK_THROWS_AS(aml::package(many), vmm::Error);
}
