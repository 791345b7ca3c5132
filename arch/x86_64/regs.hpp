// Initial vCPU state for the boot CPU: segment and control registers for the
// chosen entry (64-bit or PVH 32-bit), general registers, MSRs, FPU, LAPIC.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "arch/x86_64/boot.hpp"
#include "vmm/kvm/vcpu_fd.hpp"

namespace vmm::x86 {

// Registers for the entry described by `setup`.
void setup_boot_registers(const VcpuFd& vcpu, const BootSetup& setup);
// MSRs every vCPU starts with, restricted to those KVM lists as supported
// (the same for every vCPU: built once, written with VcpuFd::set_msrs).
std::vector<std::pair<uint32_t, uint64_t>> initial_msrs(
    const std::vector<uint32_t>& supported_msrs);
void setup_fpu(const VcpuFd& vcpu);
// XCR0 = `xcr0` (see initial_xcr0); nothing when it is 0 (no XSAVE offered).
// After KVM_SET_CPUID2: KVM refuses bits the guest's CPUID does not offer.
void setup_xcr0(const VcpuFd& vcpu, uint64_t xcr0);
// LINT0 as ExtINT (the legacy PIC) and LINT1 as NMI, as firmware leaves them.
void setup_lapic(const VcpuFd& vcpu);

}  // namespace vmm::x86
