#include "arch/x86_64/mptable.hpp"

#include <cstring>
#include <vector>

#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/table_checksum.hpp"

namespace vmm::x86 {

namespace {

// The structures of the MP Specification 1.4, chapter 4; every field is
// naturally aligned, so no packing is needed.
struct MpFloatingPointer {
    char signature[4];
    uint32_t config_table;
    uint8_t length;  // in 16-byte units
    uint8_t spec_rev;
    uint8_t checksum;
    uint8_t features[5];
};
static_assert(sizeof(MpFloatingPointer) == 16);

struct MpConfigHeader {
    char signature[4];
    uint16_t base_length;
    uint8_t spec_rev;
    uint8_t checksum;
    char oem_id[8];
    char product_id[12];
    uint32_t oem_table;
    uint16_t oem_table_size;
    uint16_t entry_count;
    uint32_t lapic_address;
    uint16_t extended_length;
    uint8_t extended_checksum;
    uint8_t reserved;
};
static_assert(sizeof(MpConfigHeader) == 44);

struct MpProcessor {
    uint8_t type;
    uint8_t lapic_id;
    uint8_t lapic_version;
    uint8_t flags;
    uint32_t signature;
    uint32_t features;
    uint32_t reserved[2];
};
static_assert(sizeof(MpProcessor) == 20);

struct MpBus {
    uint8_t type;
    uint8_t bus_id;
    char bus_type[6];
};
static_assert(sizeof(MpBus) == 8);

struct MpIoapic {
    uint8_t type;
    uint8_t id;
    uint8_t version;
    uint8_t flags;
    uint32_t address;
};
static_assert(sizeof(MpIoapic) == 8);

// An I/O interrupt assignment (to an IOAPIC pin) or a local one (to a LINT pin).
struct MpInterrupt {
    uint8_t type;
    uint8_t interrupt_type;
    uint16_t flags;
    uint8_t source_bus;
    uint8_t source_irq;
    uint8_t destination;  // IOAPIC ID, or LAPIC ID
    uint8_t pin;          // INTIN# or LINTIN#
};
static_assert(sizeof(MpInterrupt) == 8);

constexpr uint8_t kSpecRev14 = 4;
constexpr uint8_t kProcessorEntry = 0;
constexpr uint8_t kBusEntry = 1;
constexpr uint8_t kIoapicEntry = 2;
constexpr uint8_t kIoInterruptEntry = 3;
constexpr uint8_t kLocalInterruptEntry = 4;

constexpr uint8_t kCpuEnabled = 0x01;
constexpr uint8_t kCpuBootstrap = 0x02;
// What KVM's LAPIC and IOAPIC report in their version registers; Linux warns
// when the table disagrees with the boot CPU's LAPIC.
constexpr uint8_t kLapicVersion = 0x14;
constexpr uint8_t kIoapicVersion = 0x11;
constexpr uint8_t kIoapicUsable = 0x01;
// Family 6, model 15, stepping 11: the table's model field has only 4 bits.
constexpr uint32_t kCpuSignature = (6 << 8) | (15 << 4) | 11;
constexpr uint32_t kCpuFeatures = (1u << 0) | (1u << 9);  // CPUID.1:EDX FPU and APIC

constexpr uint8_t kIsaBusId = 0;
constexpr uint8_t kInterruptInt = 0;
constexpr uint8_t kInterruptNmi = 1;
constexpr uint8_t kInterruptExtInt = 3;
constexpr uint16_t kConforming = 0;  // polarity and trigger as the bus says
constexpr uint16_t kActiveHighEdge = 0x1 | (0x1 << 2);
constexpr uint8_t kAllLapics = 0xff;
constexpr uint8_t kIsaCascadeIrq = 2;

// Every IOAPIC pin but the cascade: ISA IRQ n to pin n (KVM's default GSI
// routing, the PIT's IRQ 0 included), and pins 16..23 as ISA IRQs of the same
// number, which Linux maps to IRQ 16..23 so virtio-mmio devices can claim them
// from the command line. irqfd and KVM_IRQ_LINE pulses are edges.
constexpr uint32_t kIoInterruptCount = kIoapicPins - 1;

constexpr size_t table_size(uint32_t vcpu_count) {
    return sizeof(MpConfigHeader) + vcpu_count * sizeof(MpProcessor) + sizeof(MpBus) +
           sizeof(MpIoapic) + (kIoInterruptCount + 2) * sizeof(MpInterrupt);
}
static_assert(sizeof(MpFloatingPointer) + table_size(kMpTableMaxVcpus) <= kMpTableSize);
static_assert(sizeof(MpFloatingPointer) + table_size(kMpTableMaxVcpus + 1) > kMpTableSize);

template <typename T>
void append(std::vector<uint8_t>& bytes, const T& value) {
    const auto* raw = reinterpret_cast<const uint8_t*>(&value);
    bytes.insert(bytes.end(), raw, raw + sizeof(T));
}

}  // namespace

uint64_t write_mp_table(const GuestMemory& memory, uint32_t vcpu_count) {
    if (vcpu_count == 0 || vcpu_count > kMpTableMaxVcpus) {
        throw Error(
            fmt::format("MP table: {} vCPUs; it describes 1 to {}", vcpu_count, kMpTableMaxVcpus));
    }
    const uint8_t ioapic_id = static_cast<uint8_t>(vcpu_count);
    std::vector<uint8_t> table(sizeof(MpConfigHeader));
    uint16_t entries = 0;
    for (uint32_t i = 0; i < vcpu_count; ++i) {
        MpProcessor cpu{};
        cpu.type = kProcessorEntry;
        cpu.lapic_id = static_cast<uint8_t>(i);
        cpu.lapic_version = kLapicVersion;
        cpu.flags = kCpuEnabled | (i == 0 ? kCpuBootstrap : 0);
        cpu.signature = kCpuSignature;
        cpu.features = kCpuFeatures;
        append(table, cpu);
        ++entries;
    }
    MpBus bus{kBusEntry, kIsaBusId, {'I', 'S', 'A', ' ', ' ', ' '}};
    append(table, bus);
    MpIoapic ioapic{kIoapicEntry, ioapic_id, kIoapicVersion, kIoapicUsable,
                    static_cast<uint32_t>(kIoapicAddress)};
    append(table, ioapic);
    entries += 2;
    for (uint32_t pin = 0; pin < kIoapicPins; ++pin) {
        if (pin == kIsaCascadeIrq) {
            continue;
        }
        auto line = static_cast<uint8_t>(pin);
        append(table, MpInterrupt{kIoInterruptEntry, kInterruptInt, kActiveHighEdge, kIsaBusId,
                                  line, ioapic_id, line});
        ++entries;
    }
    // The VMM programs every LAPIC's LINT0 as ExtINT (the PIC) and LINT1 as NMI.
    append(table, MpInterrupt{kLocalInterruptEntry, kInterruptExtInt, kConforming, kIsaBusId, 0,
                              kAllLapics, 0});
    append(table, MpInterrupt{kLocalInterruptEntry, kInterruptNmi, kConforming, kIsaBusId, 0,
                              kAllLapics, 1});
    entries += 2;

    MpConfigHeader header{};
    std::memcpy(header.signature, "PCMP", 4);
    header.base_length = static_cast<uint16_t>(table.size());
    header.spec_rev = kSpecRev14;
    std::memcpy(header.oem_id, "VMMVMM  ", 8);
    std::memcpy(header.product_id, "VMM MPTABLE ", 12);
    header.entry_count = entries;
    header.lapic_address = static_cast<uint32_t>(kLapicAddress);
    std::memcpy(table.data(), &header, sizeof(header));
    table[offsetof(MpConfigHeader, checksum)] = table_checksum(table);

    const uint64_t config_address = kMpTableAddress + sizeof(MpFloatingPointer);
    // Feature bytes all zero: a configuration table is present (no default
    // configuration) and there is no IMCR, the LAPICs start in virtual wire mode.
    MpFloatingPointer pointer{};
    std::memcpy(pointer.signature, "_MP_", 4);
    pointer.config_table = static_cast<uint32_t>(config_address);
    pointer.length = 1;
    pointer.spec_rev = kSpecRev14;
    pointer.checksum =
        table_checksum(std::span(reinterpret_cast<const uint8_t*>(&pointer), sizeof(pointer)));

    memory.write_obj(GuestAddress(kMpTableAddress), pointer);
    memory.write(GuestAddress(config_address), table);
    return kMpTableAddress;
}

}  // namespace vmm::x86
