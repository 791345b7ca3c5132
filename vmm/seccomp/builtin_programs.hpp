// The built-in filters (default_filters.cpp), compiled to BPF when the VMM is
// built, not at each start (that took ~0.4 ms of boot): the build runs
// vmm/seccomp_gen, which writes their instructions and the syscall name
// table here. Defined by that generated source (library vmm_seccomp_builtin).
#pragma once

#include <linux/filter.h>

#include <span>

namespace vmm::seccomp {

struct BuiltinPrograms {
    std::span<const sock_filter> vmm;
    std::span<const sock_filter> vcpu;
    // Indexed by syscall number; nullptr where the number has no name.
    std::span<const char* const> syscall_names;
};

const BuiltinPrograms& builtin_programs();

}  // namespace vmm::seccomp
