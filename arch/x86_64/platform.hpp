// The x86_64 port of the platform interface (arch/arch.hpp): a PC without
// firmware. RAM around the 32-bit MMIO hole, an in-kernel PIC/IOAPIC/PIT,
// COM1, the i8042 for reset, the Linux boot protocol or PVH entry, the MP
// table and optionally ACPI, and CPUID built from what KVM offers.
// Included through arch/arch.hpp only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arch/x86_64/boot.hpp"
#include "arch/x86_64/cpuid.hpp"
#include "arch/x86_64/kvm_state.hpp"
#include "arch/x86_64/saved_state.hpp"

namespace vmm::arch {

using BootEntry = x86::BootEntry;
using BootFiles = x86::BootFiles;
using BootSetup = x86::BootSetup;
using VcpuState = x86::VcpuState;
using VmState = x86::VmDeviceState;

// The command line a guest gets when the user gives none, per console.
inline constexpr const char* kDefaultCmdline = "console=ttyS0 reboot=k panic=-1";
// With --console virtio: hvc0 is the console, the 8250 an early console
// until hvc0 registers (which then skips replaying what it already printed).
inline constexpr const char* kDefaultVirtioConsoleCmdline =
    "console=hvc0 earlycon=uart8250,io,0x3f8 reboot=k panic=-1";
// What a stock kernel needs on a PVM host besides the CPUID profile: no xsave
// (xrstor), no SMAP (clac/stac), no int3 self-test, no mitigation code paths.
inline constexpr const char* kPvmCmdline =
    "noxsave nosmap no_int3_selftest mitigations=off "
    "clearcpuid=smap,fsgsbase,pcid,invpcid,rdrand,rdseed,rdpid,popcnt";

// What KVM offers on this host, read once per process and shared by every
// VM it builds (the API reads it while it waits for InstanceStart).
struct HostKvm {
    std::vector<CpuidEntry> supported_cpuid;
    std::vector<uint32_t> msr_index_list;
    // What every vCPU's MSRs start as (x86::initial_msrs), from the list.
    std::vector<std::pair<uint32_t, uint64_t>> initial_msrs;
    bool pvm = false;           // KVM is PVM: guest code runs under its emulator
    bool tsc_scaling = false;   // KVM_CAP_TSC_CONTROL: a vCPU's TSC can run at any rate
    bool tsc_deadline = false;  // KVM_CAP_TSC_DEADLINE_TIMER: its LAPIC has the TSC deadline mode
};

// A snapshot's vCPU and VM state as bytes (arch/x86_64/saved_state.hpp).
using x86::read_vcpu_state;
using x86::read_vm_state;
using x86::write_vcpu_state;
using x86::write_vm_state;

// Throws Error naming a capability the VMM needs and KVM lacks.
HostKvm probe_host(const Kvm& kvm);
// The empty VM's x86 needs before any memory slot: the TSS and identity-map
// pages KVM uses on Intel.
void prepare_vm(const Kvm& kvm, const VmFd& vm);

// Throws Error naming a feature in the comma-separated `mask` that this
// port does not know (the user's --cpuid-mask, checked with the rest of the
// configuration, before KVM is opened).
void check_cpu_feature_mask(const std::string& mask);

struct PlatformOptions {
    uint64_t memory_bytes = 0;
    uint32_t vcpu_count = 1;
    CpuProfileChoice cpu_profile = CpuProfileChoice::Auto;
    std::string cpuid_mask;  // comma-separated feature names
    bool acpi = false;
};

// What the core asks of setup_boot().
struct BootRequest {
    std::optional<std::string> cmdline;  // the user's; the default when unset
    ConsoleKind console = ConsoleKind::Serial;
    BootEntry entry = BootEntry::Auto;
    // e.g. "root=/dev/vda rw": added unless the command line names a root.
    std::optional<std::string> root;
    std::vector<VirtioMmioSlot> virtio_devices;
};

class Platform {
  public:
    // Throws Error for an unknown CPUID feature in `options.cpuid_mask`.
    Platform(const HostKvm& host, PlatformOptions options);

    std::vector<GuestRegionSpec> ram_regions() const;
    // The PIC, IOAPIC and PIT in the kernel; after the memory slots (once
    // the LAPIC exists, each slot change waits for an SRCU grace period).
    void create_interrupt_controller(const VmFd& vm) const;
    PlatformLayout layout() const;

    // Loads the kernel and initrd, writes the command line (the default or
    // the user's, plus what the CPU profile and the devices need), the zero
    // page or PVH start info, the MP table and, with ACPI, the ACPI tables.
    BootSetup setup_boot(const GuestMemory& memory, const BootFiles& files,
                         const BootRequest& request) const;

    // CPUID, XCR0, MSRs, FPU, LAPIC; the boot CPU's registers for the entry.
    // The boot CPU (id 0) comes first: its call builds the CPUID table,
    // patched per vCPU after. Once it returned, calls for the other ids may
    // run concurrently, from several threads: they only read.
    void configure_vcpu(const VcpuFd& vcpu, uint32_t id, const BootSetup& boot);

    // While every vCPU is out of KVM_RUN (see vmm/core/vcpu.hpp).
    VcpuState save_vcpu(const VcpuFd& vcpu);
    void restore_vcpu(const VcpuFd& vcpu, const VcpuState& state) const;
    VmState save_vm(const VmFd& vm) const;
    void restore_vm(const VmFd& vm, const VmState& state) const;
    // A snapshot's vCPU on a vCPU just made: its CPUID and TSC frequency
    // (where KVM can scale the TSC) first, then what restore_vcpu() writes.
    void restore_new_vcpu(const VcpuFd& vcpu, const VcpuState& state);
    // Throws Error naming what this host lacks to run the snapshot's guest:
    // CPU features it saw, or another CPU vendor. Before any vCPU is made.
    void check_snapshot_cpu(const VcpuState& state) const;

    // Lines worth telling the user once the VM is built (a PVM host).
    std::vector<std::string> host_notes() const;

  private:
    const HostKvm& host_;
    PlatformOptions options_;
    bool pvm_profile_;
    std::vector<const x86::CpuFeature*> masked_;
    std::optional<x86::CpuidTemplate> cpuid_;              // built at the first vCPU
    std::optional<std::vector<uint32_t>> saveable_msrs_;   // probed at the first save
    std::vector<std::vector<CpuidEntry>> restored_cpuid_;  // per vCPU, when restored
};

// Finishes an instruction KVM's emulator could not (int3 on PVM) and
// returns nothing, or returns the report to stop the VM with.
std::optional<std::string> handle_emulation_failure(const VcpuFd& vcpu, const GuestMemory& memory);
// A register dump for reports.
std::string describe_vcpu(const VcpuFd& vcpu);
// One line on a saved vCPU: where it stopped, its run state, what was saved.

}  // namespace vmm::arch
