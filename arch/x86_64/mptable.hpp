// The Intel MultiProcessor Specification 1.4 tables: how kernels without ACPI
// (or booted with acpi=off) learn the vCPUs' APIC IDs, the IOAPIC and how the
// ISA IRQs reach it.
#pragma once

#include <cstdint>

#include "vmm/memory/guest_memory.hpp"

namespace vmm::x86 {

// The floating pointer and the configuration table must fit in kMpTableSize
// (4 KiB): with 20 bytes per processor entry that is 191 vCPUs.
inline constexpr uint32_t kMpTableMaxVcpus = 191;

// Writes the floating pointer at kMpTableAddress and the configuration table
// right after it: one processor per vCPU (APIC ID = index, the BSP is 0), an
// ISA bus, the IOAPIC (ID = vcpu_count) with every pin routed, LINT0 ExtINT and
// LINT1 NMI. Returns the floating pointer's address. Throws Error for 0 vCPUs
// or more than kMpTableMaxVcpus.
uint64_t write_mp_table(const GuestMemory& memory, uint32_t vcpu_count);

}  // namespace vmm::x86
