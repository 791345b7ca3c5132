// Network namespace handles: opened and checked before anything changes,
// joined later.
#pragma once

#include <string>

#include "vmm/base/unique_fd.hpp"

namespace vmm::jailer {

// Throws Error unless `path` is a network namespace (nsfs, type CLONE_NEWNET).
UniqueFd open_network_namespace(const std::string& path);
void join_network_namespace(const UniqueFd& netns, const std::string& path);

}  // namespace vmm::jailer
