// What the jailed process may do: resource limits, and dropping to the
// given uid/gid with no capability left in any set.
#pragma once

#include <cstdint>

#include "vmm/jailer/options.hpp"

namespace vmm::jailer {

// Closes every file descriptor above stderr: nothing the caller left open
// reaches the vmm (Firecracker's jailer does the same).
void close_inherited_fds();

// Throws Error unless the effective uid is 0.
void require_root();

void set_resource_limits(const ResourceLimits& limits);

// Empties the bounding and ambient sets, switches groups and ids (real,
// effective, saved), clears every capability set and sets no_new_privs.
// Checks the result: throws Error if any capability or id survived.
void drop_privileges(uint32_t uid, uint32_t gid);

}  // namespace vmm::jailer
