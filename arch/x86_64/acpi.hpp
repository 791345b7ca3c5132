// The ACPI tables (ACPI 6.3) that describe the machine to the guest: RSDP ->
// XSDT -> FADT (hardware-reduced, with a reset register and a sleep register
// at kAcpiSleepPort) -> DSDT, and the MADT with the vCPUs' LAPICs and the
// IOAPIC.
#pragma once

#include <cstdint>
#include <span>

#include "vmm/memory/guest_memory.hpp"

namespace vmm::x86 {

// Processor Local APIC entries hold 8-bit APIC IDs (0xff is not one); more
// vCPUs would need Processor Local x2APIC entries.
inline constexpr uint32_t kAcpiMaxVcpus = 255;

// A virtio-mmio transport, declared in the DSDT as an LNRO0005 device.
struct AcpiVirtioMmio {
    uint64_t address;
    uint64_t size;
    uint32_t gsi;
};

// Writes every table into [kAcpiTablesAddress, +kAcpiTablesSize), the RSDP
// first, and returns the RSDP's address. The DSDT declares COM1 and
// `virtio_devices`: with a hardware-reduced FADT, Linux has no legacy PIC and
// so no ISA IRQ numbers, and a device's interrupt works only if ACPI names it.
// It also declares \_S5_: the guest powers off through the sleep register,
// which the VMM must then serve (devices/legacy/acpi_power_off.hpp).
// Throws Error for 0 or more than kAcpiMaxVcpus vCPUs, or a device the DSDT
// cannot describe.
uint64_t write_acpi_tables(const GuestMemory& memory, uint32_t vcpu_count,
                           std::span<const AcpiVirtioMmio> virtio_devices = {});

}  // namespace vmm::x86
