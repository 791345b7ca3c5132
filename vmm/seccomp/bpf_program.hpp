// One thread kind's seccomp filter compiled to classic BPF (by libseccomp),
// once per process; installing it on a thread is then one syscall.
#pragma once

#include <linux/filter.h>

#include <span>
#include <vector>

#include "vmm/seccomp/filter_spec.hpp"

namespace vmm::seccomp {

class BpfProgram {
  public:
    // Throws Error naming the rule libseccomp refused (an unknown syscall
    // name, an argument index compared twice in one rule, ...).
    static BpfProgram compile(const ThreadFilter& filter);
    // A program compiled earlier (builtin_programs.hpp).
    static BpfProgram from_code(std::span<const sock_filter> code);

    // Sets no_new_privs and installs the filter on the calling thread only;
    // it stays for the thread's life and is inherited by threads it creates.
    void install_on_this_thread() const;

    std::span<const sock_filter> code() const { return code_; }

  private:
    std::vector<sock_filter> code_;
};

}  // namespace vmm::seccomp
