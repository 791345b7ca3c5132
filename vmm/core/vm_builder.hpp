// Builds a Machine from a validated configuration, in boot order:
//   config -> KVM -> memory -> arch boot -> devices -> vCPUs
// (then Machine::start() runs it). vm_builder.cpp reads top to bottom in
// that order; every architecture-specific step goes through arch/arch.hpp.
#pragma once

#include <memory>

#include "vmm/config/config.hpp"
#include "vmm/core/boot_trace.hpp"
#include "vmm/core/empty_vm.hpp"
#include "vmm/core/event_loop.hpp"
#include "vmm/core/machine.hpp"

namespace vmm {

// `config` must outlive the machine, and so must `loop`; `inputs` are what
// the configuration names, opened from it. `empty`: the KVM work done ahead
// (the API makes it while it waits), made here when null. Throws Error, and
// then nothing is left running.
std::unique_ptr<Machine> build_machine(const VmConfig& config, MachineInputs inputs,
                                       std::unique_ptr<EmptyVm> empty, BootTrace& trace,
                                       EventLoop& loop);

}  // namespace vmm
