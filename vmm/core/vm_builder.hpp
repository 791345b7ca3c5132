// Builds a Machine from a validated configuration, in boot order:
//   config -> KVM -> memory -> arch boot -> devices -> vCPUs
// (then Machine::start() runs it). vm_builder.cpp reads top to bottom in
// that order; every architecture-specific step goes through arch/arch.hpp.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "vmm/base/state_stream.hpp"
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

// Guest memory for a restore, laid out as `regions` (from the memory file,
// or registered with a page-fault handler).
using MemoryLoader = std::function<GuestMemory(const std::vector<GuestRegionSpec>& regions)>;

// A machine from a snapshot's state (what follows its configuration
// section, see Machine::save_snapshot()) instead of a boot: `config` is the
// snapshot's, `inputs` opened from it without boot files. Every part of the
// state is checked before a vCPU can run; throws StateError or Error, and
// then nothing is left. Paused unless `resume`.
std::unique_ptr<Machine> restore_machine(const VmConfig& config, MachineInputs inputs,
                                         std::unique_ptr<EmptyVm> empty, BootTrace& trace,
                                         EventLoop& loop, StateReader& state,
                                         const MemoryLoader& load_memory, bool resume);

}  // namespace vmm
