// A seccomp filter per thread kind, as data: what Firecracker's seccompiler
// reads from JSON (and what `--seccomp-filter FILE` accepts), and what the
// built-in filters are written in. bpf_program.* compiles it.
//
// The JSON format (Firecracker's seccompiler input):
//   { "vmm":  { "default_action": "trap", "filter_action": "allow",
//               "filter": [ { "syscall": "read" },
//                           { "syscall": "ioctl", "comment": "KVM_RUN",
//                             "args": [ { "index": 1, "type": "dword",
//                                         "op": "eq", "val": 44672 } ] } ] },
//     "api":  { ... },
//     "vcpu": { ... } }
// Actions: "allow", "trap", "kill_thread", "kill_process", "log",
// {"errno": N}, {"trace": N}. An "op" is "eq", "ne", "lt", "le", "gt", "ge"
// or {"masked_eq": MASK}; "dword" compares the argument's low 32 bits.
// Several rules for one syscall allow it when any matches; the conditions
// of one rule must all hold.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace vmm::seccomp {

struct Action {
    enum class Kind { Allow, Trap, KillThread, KillProcess, Log, Errno, Trace };
    Kind kind = Kind::Trap;
    uint16_t value = 0;  // the errno or trace value

    bool operator==(const Action&) const = default;
};

struct ArgCondition {
    enum class Width { Dword, Qword };
    enum class Op { Eq, Ne, Lt, Le, Gt, Ge, MaskedEq };
    unsigned index = 0;  // 0..5
    Width width = Width::Qword;
    Op op = Op::Eq;
    uint64_t mask = 0;  // MaskedEq only
    uint64_t value = 0;
    std::string comment;
};

struct SyscallRule {
    std::string syscall;
    std::vector<ArgCondition> args;  // all must hold; none: any arguments
    std::string comment;
};

struct ThreadFilter {
    Action default_action;  // for syscalls no rule allows
    Action filter_action{Action::Kind::Allow, 0};
    std::vector<SyscallRule> rules;
};

// Keyed by thread kind: "vmm" (our main thread: event loop, devices and the
// API), "vcpu"; a file may also have Firecracker's "api", which our main
// thread adds to its own (it serves the API too).
using FilterSet = std::map<std::string, ThreadFilter>;

// Throws Error naming the offending element ("vcpu.filter[3].args[0].op: ...").
FilterSet parse_filter_json(std::string_view text);
std::string to_json(const FilterSet& filters);

}  // namespace vmm::seccomp
