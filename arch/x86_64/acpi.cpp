#include "arch/x86_64/acpi.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "arch/x86_64/aml.hpp"
#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/table_checksum.hpp"

namespace vmm::x86 {

namespace {

using Bytes = std::vector<uint8_t>;

// ACPI 6.3 section 5.2: the structures, at the offsets the spec gives.
struct AcpiHeader {
    char signature[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    char creator_id[4];
    uint32_t creator_revision;
};
static_assert(sizeof(AcpiHeader) == 36);
constexpr size_t kLengthOffset = offsetof(AcpiHeader, length);
constexpr size_t kChecksumOffset = offsetof(AcpiHeader, checksum);

struct [[gnu::packed]] Rsdp {
    char signature[8];
    uint8_t checksum;  // of the ACPI 1.0 part, the first 20 bytes
    char oem_id[6];
    uint8_t revision;
    uint32_t rsdt_address;
    uint32_t length;
    uint64_t xsdt_address;
    uint8_t extended_checksum;  // of the whole structure
    uint8_t reserved[3];
};
static_assert(sizeof(Rsdp) == 36);
constexpr size_t kRsdpV1Length = 20;

struct [[gnu::packed]] GenericAddress {
    uint8_t space_id;
    uint8_t bit_width;
    uint8_t bit_offset;
    uint8_t access_size;
    uint64_t address;
};
static_assert(sizeof(GenericAddress) == 12);

struct [[gnu::packed]] Fadt {
    AcpiHeader header;
    uint32_t firmware_ctrl;
    uint32_t dsdt;
    uint8_t reserved0;
    uint8_t preferred_pm_profile;
    uint16_t sci_int;
    uint32_t smi_cmd;
    uint8_t acpi_enable;
    uint8_t acpi_disable;
    uint8_t s4bios_req;
    uint8_t pstate_cnt;
    uint32_t pm1a_evt_blk;
    uint32_t pm1b_evt_blk;
    uint32_t pm1a_cnt_blk;
    uint32_t pm1b_cnt_blk;
    uint32_t pm2_cnt_blk;
    uint32_t pm_tmr_blk;
    uint32_t gpe0_blk;
    uint32_t gpe1_blk;
    uint8_t pm1_evt_len;
    uint8_t pm1_cnt_len;
    uint8_t pm2_cnt_len;
    uint8_t pm_tmr_len;
    uint8_t gpe0_blk_len;
    uint8_t gpe1_blk_len;
    uint8_t gpe1_base;
    uint8_t cst_cnt;
    uint16_t p_lvl2_lat;
    uint16_t p_lvl3_lat;
    uint16_t flush_size;
    uint16_t flush_stride;
    uint8_t duty_offset;
    uint8_t duty_width;
    uint8_t day_alrm;
    uint8_t mon_alrm;
    uint8_t century;
    uint16_t iapc_boot_arch;
    uint8_t reserved1;
    uint32_t flags;
    GenericAddress reset_reg;
    uint8_t reset_value;
    uint16_t arm_boot_arch;
    uint8_t minor_version;
    uint64_t x_firmware_ctrl;
    uint64_t x_dsdt;
    GenericAddress x_pm1a_evt_blk;
    GenericAddress x_pm1b_evt_blk;
    GenericAddress x_pm1a_cnt_blk;
    GenericAddress x_pm1b_cnt_blk;
    GenericAddress x_pm2_cnt_blk;
    GenericAddress x_pm_tmr_blk;
    GenericAddress x_gpe0_blk;
    GenericAddress x_gpe1_blk;
    GenericAddress sleep_control_reg;
    GenericAddress sleep_status_reg;
    uint64_t hypervisor_vendor_id;
};
static_assert(sizeof(Fadt) == 276);
static_assert(offsetof(Fadt, iapc_boot_arch) == 109);
static_assert(offsetof(Fadt, reset_reg) == 116);
static_assert(offsetof(Fadt, minor_version) == 131);
static_assert(offsetof(Fadt, x_dsdt) == 140);

struct MadtHeader {
    AcpiHeader header;
    uint32_t lapic_address;
    uint32_t flags;
};
static_assert(sizeof(MadtHeader) == 44);

struct MadtLocalApic {
    uint8_t type;
    uint8_t length;
    uint8_t processor_uid;
    uint8_t apic_id;
    uint32_t flags;
};
static_assert(sizeof(MadtLocalApic) == 8);

struct MadtIoapic {
    uint8_t type;
    uint8_t length;
    uint8_t id;
    uint8_t reserved;
    uint32_t address;
    uint32_t gsi_base;
};
static_assert(sizeof(MadtIoapic) == 12);

struct [[gnu::packed]] MadtLocalApicNmi {
    uint8_t type;
    uint8_t length;
    uint8_t processor_uid;
    uint16_t flags;
    uint8_t lint;
};
static_assert(sizeof(MadtLocalApicNmi) == 6);

constexpr std::string_view kOemId = "VMMVMM";
constexpr std::string_view kCreatorId = "VMMC";
constexpr uint32_t kOemRevision = 1;
constexpr uint32_t kCreatorRevision = 1;

// ACPI 6.3: FADT 6.3, MADT 5; a DSDT of revision 2 has 64-bit integers.
constexpr uint8_t kRsdpRevision = 2;
constexpr uint8_t kXsdtRevision = 1;
constexpr uint8_t kFadtRevision = 6;
constexpr uint8_t kFadtMinorVersion = 3;
constexpr uint8_t kMadtRevision = 5;
constexpr uint8_t kDsdtRevision = 2;

// IA-PC boot architecture: no VGA to probe, and no CMOS RTC, which the VMM
// does not emulate (the wall clock comes from kvmclock). No 8042 either: the
// i8042 only implements the reset line, which the reset register covers.
constexpr uint16_t kBootArchNoVga = 1 << 2;
constexpr uint16_t kBootArchNoCmosRtc = 1 << 5;
constexpr uint32_t kFadtResetRegSupported = 1u << 10;
constexpr uint32_t kFadtHardwareReduced = 1u << 20;
constexpr uint8_t kSpaceSystemIo = 1;
constexpr uint8_t kAccessByte = 1;
// Writing 0xfe to the i8042 command port pulses the reset line.
constexpr uint64_t kResetPort = kI8042Port + 4;
constexpr uint8_t kResetValue = 0xfe;
// \_S5_'s SLP_TYP: what devices/legacy/acpi_power_off.cpp takes as power-off.
constexpr uint8_t kS5SleepType = 5;

constexpr uint32_t kMadtPcatCompat = 1;
constexpr uint8_t kMadtLocalApic = 0;
constexpr uint8_t kMadtIoapic = 1;
constexpr uint8_t kMadtLocalApicNmi = 4;
constexpr uint32_t kLocalApicEnabled = 1;
constexpr uint8_t kAllProcessors = 0xff;
constexpr uint16_t kConforming = 0;
constexpr uint8_t kNmiLint = 1;  // the VMM programs LINT1 as NMI

constexpr uint64_t kTableAlignment = 16;
constexpr uint64_t k4GiB = 0x100000000;

template <typename T>
Bytes bytes_of(const T& value) {
    const auto* raw = reinterpret_cast<const uint8_t*>(&value);
    return Bytes(raw, raw + sizeof(T));
}

template <size_t N>
void copy_id(char (&field)[N], std::string_view text) {
    std::memset(field, ' ', N);
    std::memcpy(field, text.data(), std::min(N, text.size()));
}

AcpiHeader header(std::string_view signature, uint8_t revision) {
    AcpiHeader header{};
    copy_id(header.signature, signature);
    header.revision = revision;
    copy_id(header.oem_id, kOemId);
    copy_id(header.oem_table_id, std::string("VMM") + std::string(signature));
    header.oem_revision = kOemRevision;
    copy_id(header.creator_id, kCreatorId);
    header.creator_revision = kCreatorRevision;
    return header;
}

// Fills in the length and checksum of a complete table.
void seal(Bytes& table) {
    auto length = static_cast<uint32_t>(table.size());
    std::memcpy(table.data() + kLengthOffset, &length, sizeof(length));
    table[kChecksumOffset] = 0;
    table[kChecksumOffset] = table_checksum(table);
}

// \_S5_, then Scope (\_SB) with COM1 (PNP0501) and one LNRO0005 device per
// virtio-mmio window: Linux gives each _CRS interrupt an IRQ through the
// IOAPIC, which a hardware-reduced machine has no other way to get (no PIC, so
// no ISA IRQs). Without \_S5_, Linux has no ACPI power-off and halts instead.
Bytes make_dsdt(std::span<const AcpiVirtioMmio> virtio_devices) {
    Bytes devices = aml::device(
        "COM1",
        aml::join({
            aml::name("_HID", aml::eisa_id("PNP0501")),
            aml::name("_UID", aml::integer(0)),
            aml::name("_CRS", aml::resource_template(aml::join(
                                  {aml::io_port(kCom1Port, 8), aml::edge_interrupt(kCom1Irq)}))),
        }));
    for (size_t i = 0; i < virtio_devices.size(); ++i) {
        const AcpiVirtioMmio& device = virtio_devices[i];
        if (i > 0xff) {
            throw Error("ACPI: the DSDT names at most 256 virtio-mmio devices");
        }
        if (device.size == 0 || device.address >= k4GiB || device.size > k4GiB - device.address) {
            throw Error(
                fmt::format("ACPI: virtio-mmio window {:#x}+{:#x} is empty or not below 4 GiB",
                            device.address, device.size));
        }
        if (device.gsi >= kIoapicPins) {
            throw Error(fmt::format("ACPI: virtio-mmio GSI {} is not an IOAPIC pin (0..{})",
                                    device.gsi, kIoapicPins - 1));
        }
        Bytes resources = aml::join({
            aml::memory32_fixed(static_cast<uint32_t>(device.address),
                                static_cast<uint32_t>(device.size)),
            aml::edge_interrupt(device.gsi),
        });
        Bytes body = aml::join({
            aml::name("_HID", aml::string("LNRO0005")),
            aml::name("_UID", aml::integer(i)),
            aml::name("_CRS", aml::resource_template(resources)),
        });
        Bytes declared = aml::device(fmt::format("VR{:02X}", i), body);
        devices.insert(devices.end(), declared.begin(), declared.end());
    }
    Bytes table = aml::join({
        bytes_of(header("DSDT", kDsdtRevision)),
        aml::name("_S5_", aml::package({aml::integer(kS5SleepType)})),
        aml::scope("\\_SB_", devices),
    });
    seal(table);
    return table;
}

Bytes make_madt(uint32_t vcpu_count) {
    MadtHeader madt{header("APIC", kMadtRevision), static_cast<uint32_t>(kLapicAddress),
                    kMadtPcatCompat};
    Bytes table = bytes_of(madt);
    for (uint32_t i = 0; i < vcpu_count; ++i) {
        auto id = static_cast<uint8_t>(i);
        MadtLocalApic lapic{kMadtLocalApic, sizeof(MadtLocalApic), id, id, kLocalApicEnabled};
        Bytes entry = bytes_of(lapic);
        table.insert(table.end(), entry.begin(), entry.end());
    }
    // ISA IRQs are identity-mapped onto GSIs (KVM's default routing), so no
    // Interrupt Source Override is needed, not even for the PIT's IRQ 0.
    MadtIoapic ioapic{kMadtIoapic,
                      sizeof(MadtIoapic),
                      static_cast<uint8_t>(vcpu_count),
                      0,
                      static_cast<uint32_t>(kIoapicAddress),
                      0};
    MadtLocalApicNmi nmi{kMadtLocalApicNmi, sizeof(MadtLocalApicNmi), kAllProcessors, kConforming,
                         kNmiLint};
    for (const Bytes& entry : {bytes_of(ioapic), bytes_of(nmi)}) {
        table.insert(table.end(), entry.begin(), entry.end());
    }
    seal(table);
    return table;
}

Bytes make_fadt(uint64_t dsdt_address) {
    Fadt fadt{};
    fadt.header = header("FACP", kFadtRevision);
    // Both DSDT fields: older parsers read the 32-bit one, and equal values
    // draw no mismatch warning from ACPICA.
    fadt.dsdt = static_cast<uint32_t>(dsdt_address);
    fadt.x_dsdt = dsdt_address;
    fadt.iapc_boot_arch = kBootArchNoVga | kBootArchNoCmosRtc;
    // Hardware-reduced: no PM1/GPE blocks, no SCI, no FACS; the VMM has none.
    fadt.flags = kFadtHardwareReduced | kFadtResetRegSupported;
    fadt.reset_reg = GenericAddress{kSpaceSystemIo, 8, 0, kAccessByte, kResetPort};
    fadt.reset_value = kResetValue;
    // One register for both, as Cloud Hypervisor's: Linux clears WAK_STS,
    // then writes SLP_TYP | SLP_EN; after S5 the VM is gone before Linux
    // would poll for WAK_STS.
    fadt.sleep_control_reg = GenericAddress{kSpaceSystemIo, 8, 0, kAccessByte, kAcpiSleepPort};
    fadt.sleep_status_reg = fadt.sleep_control_reg;
    fadt.minor_version = kFadtMinorVersion;
    Bytes table = bytes_of(fadt);
    seal(table);
    return table;
}

Bytes make_xsdt(std::initializer_list<uint64_t> tables) {
    Bytes table = bytes_of(header("XSDT", kXsdtRevision));
    for (uint64_t address : tables) {
        Bytes entry = bytes_of(address);  // 8-byte entries at offset 36: unaligned
        table.insert(table.end(), entry.begin(), entry.end());
    }
    seal(table);
    return table;
}

Bytes make_rsdp(uint64_t xsdt_address) {
    Rsdp rsdp{};
    std::memcpy(rsdp.signature, "RSD PTR ", 8);
    copy_id(rsdp.oem_id, kOemId);
    rsdp.revision = kRsdpRevision;
    rsdp.length = sizeof(Rsdp);
    rsdp.xsdt_address = xsdt_address;  // no RSDT: every ACPI 2.0+ reader takes the XSDT
    Bytes bytes = bytes_of(rsdp);
    bytes[offsetof(Rsdp, checksum)] = table_checksum(std::span(bytes).first(kRsdpV1Length));
    bytes[offsetof(Rsdp, extended_checksum)] = table_checksum(bytes);
    return bytes;
}

}  // namespace

uint64_t write_acpi_tables(const GuestMemory& memory, uint32_t vcpu_count,
                           std::span<const AcpiVirtioMmio> virtio_devices) {
    if (vcpu_count == 0 || vcpu_count > kAcpiMaxVcpus) {
        throw Error(fmt::format(
            "ACPI: {} vCPUs; the MADT's xAPIC entries describe 1 to {} (x2APIC entries would be "
            "needed beyond)",
            vcpu_count, kAcpiMaxVcpus));
    }
    Bytes dsdt = make_dsdt(virtio_devices);
    Bytes madt = make_madt(vcpu_count);
    constexpr size_t kXsdtSize = sizeof(AcpiHeader) + 2 * sizeof(uint64_t);

    // The RSDP first (16-byte aligned, where Linux's scan starts), then the
    // tables it leads to, each 16-byte aligned.
    uint64_t next = kAcpiTablesAddress;
    auto place = [&next](size_t size) {
        uint64_t address = next;
        next = (address + size + kTableAlignment - 1) & ~(kTableAlignment - 1);
        if (next > kAcpiTablesAddress + kAcpiTablesSize) {
            throw Error(fmt::format("ACPI: the tables need more than the {} KiB at {:#x}",
                                    kAcpiTablesSize >> 10, kAcpiTablesAddress));
        }
        return address;
    };
    uint64_t rsdp_address = place(sizeof(Rsdp));
    uint64_t xsdt_address = place(kXsdtSize);
    uint64_t fadt_address = place(sizeof(Fadt));
    uint64_t madt_address = place(madt.size());
    uint64_t dsdt_address = place(dsdt.size());

    memory.write(GuestAddress(rsdp_address), make_rsdp(xsdt_address));
    memory.write(GuestAddress(xsdt_address), make_xsdt({fadt_address, madt_address}));
    memory.write(GuestAddress(fadt_address), make_fadt(dsdt_address));
    memory.write(GuestAddress(madt_address), madt);
    memory.write(GuestAddress(dsdt_address), dsdt);
    return rsdp_address;
}

}  // namespace vmm::x86
