// What to do when KVM exits with an instruction-emulation failure. On hosts
// where guest code runs under KVM's emulator (PVM), some instructions are
// missing from it. int3 is one the VMM can finish itself: it delivers the #BP
// the instruction would have raised. Anything else becomes a report with the
// instruction bytes and registers.
#pragma once

#include <linux/kvm.h>

#include <optional>
#include <string>

#include "vmm/kvm/vcpu_fd.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace vmm::x86 {

// Returns nothing when the vCPU can resume, or the report to stop with.
std::optional<std::string> handle_emulation_failure(const VcpuFd& vcpu, const GuestMemory& memory);

// A multi-line register dump for reports.
std::string describe_vcpu_state(const VcpuFd& vcpu);

}  // namespace vmm::x86
