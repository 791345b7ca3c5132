// The state KVM holds for a paused VM: per vCPU (registers, FPU/xsave, MSRs,
// LAPIC, pending events, run state) and per VM (PIC, IOAPIC, PIT, kvmclock).
// Read while every vCPU is out of KVM_RUN, written back before they re-enter:
// the base for pause/resume now and snapshots later.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "vmm/kvm/kvm.hpp"
#include "vmm/kvm/vcpu_fd.hpp"
#include "vmm/kvm/vm_fd.hpp"

namespace vmm::x86 {

struct VcpuState {
    kvm_mp_state mp_state;
    kvm_regs regs;
    kvm_sregs sregs;
    kvm_abi::Xsave xsave;
    kvm_xcrs xcrs;
    kvm_debugregs debugregs;
    kvm_lapic_state lapic;
    std::vector<std::pair<uint32_t, uint64_t>> msrs;
    kvm_vcpu_events events;
    // What a new vCPU needs before the rest when it is restored elsewhere;
    // the CPUID is the Platform's (save_vcpu_state() leaves it empty).
    std::vector<CpuidEntry> cpuid;
    uint32_t tsc_khz = 0;  // 0: KVM could not say
};

struct VmDeviceState {
    kvm_irqchip pic_master;
    kvm_irqchip pic_slave;
    kvm_irqchip ioapic;
    kvm_pit_state2 pit;
    kvm_clock_data clock;
};

// Call on the vCPU's thread once it is out of KVM_RUN with no exit pending
// (after an interrupted KVM_RUN). `msrs`: the indices to save (see
// saveable_msrs()).
VcpuState save_vcpu_state(const VcpuFd& vcpu, const std::vector<uint32_t>& msrs);
// In the order KVM needs: MSRs after the registers and LAPIC, events last.
// Not the CPUID or TSC frequency, which a vCPU that ran keeps (a new one
// gets them first, see Platform::restore_new_vcpu()).
void restore_vcpu_state(const VcpuFd& vcpu, const VcpuState& state);

// The MSRs of KVM_GET_MSR_INDEX_LIST that this vCPU can read (KVM lists some
// it then refuses, e.g. for features the CPUID hides).
std::vector<uint32_t> saveable_msrs(const VcpuFd& vcpu, const std::vector<uint32_t>& listed);

VmDeviceState save_vm_devices(const VmFd& vm);
void restore_vm_devices(const VmFd& vm, const VmDeviceState& state);

}  // namespace vmm::x86
