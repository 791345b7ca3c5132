// What happens when a thread makes a syscall its filter forbids: the filter
// traps (SIGSYS), this handler writes one line naming the thread, its filter
// and the syscall to stderr and the log file, then the process dies of
// SIGSYS. Everything the handler does is async-signal-safe.
#pragma once

#include <span>
#include <string_view>

namespace vmm::seccomp {

// Process-wide, once, before the first filter: installs the SIGSYS handler,
// which names syscalls from `syscall_names` (indexed by number; must live
// for the process: builtin_programs()'s table).
void install_violation_handler(std::span<const char* const> syscall_names);

// Remembers, for reports from the calling thread, its name and filter kind.
void label_this_thread(std::string_view filter_kind);

}  // namespace vmm::seccomp
