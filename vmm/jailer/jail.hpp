// The jailer's run, in Firecracker's order: the chroot with the executable,
// the cgroup, the network namespace, the mount namespace and pivot_root,
// the device nodes, the resource limits, then the vmm, exec'd with its
// privileges dropped (in place, or as pid 1 of a new PID namespace).
#pragma once

#include "vmm/jailer/options.hpp"
#include "vmm/jailer/preflight.hpp"

namespace vmm::jailer {

// Returns only where the jailer outlives the vmm's start: the exit status
// to end with (the vmm's own when the jailer waited for it). Throws Error.
int run_jailer(const JailerOptions& options, JailPlan plan);

}  // namespace vmm::jailer
