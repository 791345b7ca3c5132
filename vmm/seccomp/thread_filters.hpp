// The compiled filter of each kind of thread we run, and where each goes:
// a vCPU thread installs "vcpu" before its first KVM_RUN; the main thread
// (event loop, devices, API) installs "vmm" once the vCPU threads exist,
// before they enter the guest (Machine::start()).
#pragma once

#include <string>

#include "vmm/seccomp/bpf_program.hpp"
#include "vmm/seccomp/builtin_programs.hpp"
#include "vmm/seccomp/filter_spec.hpp"

namespace vmm::seccomp {

enum class ThreadKind { Vmm, Vcpu };

class ThreadFilters {
  public:
    // Needs "vmm" and "vcpu"; an "api" filter's rules join the vmm one (our
    // main thread serves the API). Throws Error.
    static ThreadFilters compile(const FilterSet& filters);

    // The built-in filters, compiled when the VMM was built.
    static ThreadFilters built_in(const BuiltinPrograms& programs);

    // Reads a --seccomp-filter file (a regular file, at most 1 MiB) and
    // compiles it. Throws Error naming the option and the file.
    static ThreadFilters from_file(const std::string& path);

    // Installs the kind's filter on the calling thread, whose reports then
    // name it (violation_report.hpp). Throws SystemError.
    void install(ThreadKind kind) const;

  private:
    ThreadFilters(BpfProgram vmm, BpfProgram vcpu) : vmm_(std::move(vmm)), vcpu_(std::move(vcpu)) {}

    BpfProgram vmm_;
    BpfProgram vcpu_;
};

}  // namespace vmm::seccomp
