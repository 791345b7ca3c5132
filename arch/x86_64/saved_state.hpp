// The byte format of a paused VM's KVM state in a snapshot (StateWriter,
// vmm/base/state_stream.hpp): one vCPU's (kvm_state.hpp VcpuState, with its
// CPUID and TSC frequency) and the VM's (PIC, IOAPIC, PIT, clock). KVM's
// structs are written as they are, each with its size, so a reader built
// against another layout refuses them; KVM checks their contents when they
// are set. The counts are bounded here.
#pragma once

#include "arch/x86_64/kvm_state.hpp"
#include "vmm/base/state_stream.hpp"

namespace vmm::x86 {

void write_vcpu_state(StateWriter& out, const VcpuState& state);
VcpuState read_vcpu_state(StateReader& in);
void write_vm_state(StateWriter& out, const VmDeviceState& state);
VmDeviceState read_vm_state(StateReader& in);

}  // namespace vmm::x86
