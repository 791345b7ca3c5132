// The x86_64 guest-physical memory map: where the VMM puts boot structures,
// where RAM lives and where the 32-bit MMIO hole is.
#pragma once

#include <cstdint>

namespace vmm::x86 {

// Boot structures in the first 1 MiB (all below the EBDA, all in RAM).
inline constexpr uint64_t kGdtAddress = 0x500;
inline constexpr uint64_t kIdtAddress = 0x530;  // after the 5-entry GDT
inline constexpr uint64_t kPvhStartInfoAddress = 0x6000;
inline constexpr uint64_t kPvhMemmapAddress = 0x6040;
inline constexpr uint64_t kPvhModlistAddress = 0x6f00;
inline constexpr uint64_t kZeroPageAddress = 0x7000;
inline constexpr uint64_t kBootStackPointer = 0x8ff0;
inline constexpr uint64_t kPml4Address = 0x9000;
inline constexpr uint64_t kPdptAddress = 0xa000;
inline constexpr uint64_t kPdAddress = 0xb000;  // four pages: 0xb000..0xefff
inline constexpr uint64_t kCmdlineAddress = 0x20000;
inline constexpr uint64_t kCmdlineMaxSize = 0x10000;
inline constexpr uint64_t kEbdaStart = 0x9fc00;

// Firmware tables in the legacy BIOS area (left out of the e820 RAM), where
// Linux scans for them: the RSDP on a 16-byte boundary in 0xe0000..0xfffff,
// the MP floating pointer in 0xf0000..0xfffff.
inline constexpr uint64_t kAcpiTablesAddress = 0xe0000;  // the RSDP first
inline constexpr uint64_t kAcpiTablesSize = 0x10000;     // up to 0xeffff
inline constexpr uint64_t kMpTableAddress = 0xf0000;     // floating pointer first
inline constexpr uint64_t kMpTableSize = 0x1000;         // up to 0xf0fff

// Where bzImage protected-mode code goes, and where RAM above the legacy
// BIOS area starts.
inline constexpr uint64_t kHighMemoryStart = 0x100000;

// The 32-bit MMIO hole: RAM stops at its start and resumes at 4 GiB.
inline constexpr uint64_t kMmioHoleStart = 0xc0000000;
inline constexpr uint64_t kMmioHoleEnd = 0x100000000;

// VMM debug page (boot timer and exit register), first page of the hole.
inline constexpr uint64_t kDebugMmioAddress = kMmioHoleStart;
inline constexpr uint64_t kDebugMmioSize = 0x1000;

// The in-kernel interrupt controllers (KVM_CREATE_IRQCHIP) at their default
// addresses; KVM's default GSI routing wires GSI n to IOAPIC pin n (and GSIs
// 0..15 to the PICs too), so ISA IRQs are identity-mapped, the PIT included.
inline constexpr uint64_t kIoapicAddress = 0xfec00000;
inline constexpr uint32_t kIoapicPins = 24;
inline constexpr uint64_t kLapicAddress = 0xfee00000;

// KVM needs three pages of guest-physical space for the real-mode TSS and one
// for the identity map on Intel; they sit just below the BIOS ROM window.
inline constexpr uint64_t kIdentityMapAddress = 0xfffbc000;
inline constexpr uint64_t kTssAddress = 0xfffbd000;

// Legacy ports.
inline constexpr uint16_t kCom1Port = 0x3f8;
inline constexpr uint32_t kCom1Irq = 4;
inline constexpr uint32_t kKeyboardIrq = 1;  // the i8042's keyboard port
inline constexpr uint16_t kI8042Port = 0x60;
inline constexpr uint16_t kDebugPort = 0xf4;  // 0xf4 exit status, 0xf5 boot timer
// The hardware-reduced ACPI sleep control and status register (the FADT's
// SLEEP_CONTROL_REG and SLEEP_STATUS_REG), one byte, only with --acpi. Cloud
// Hypervisor's port: no VGA here, and nothing else claims it.
inline constexpr uint16_t kAcpiSleepPort = 0x3c0;

}  // namespace vmm::x86
