// Every check of the host before the jailer changes anything: root, the
// exec file, the chroot base, the network namespace, the cgroup
// hierarchies. What it finds is the plan the jail is built from.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "vmm/base/unique_fd.hpp"
#include "vmm/jailer/cgroups.hpp"
#include "vmm/jailer/chroot.hpp"
#include "vmm/jailer/options.hpp"

namespace vmm::jailer {

struct JailPlan {
    std::string exec_path;   // canonical
    std::string exec_name;   // its last component: the name inside the jail
    std::string chroot_dir;  // <base>/<exec_name>/<id>/root, base canonical
    UniqueFd netns;          // checked to be a network namespace
    CgroupPlan cgroups;
    std::vector<DeviceNode> devices;
    bool pvm_host = false;
};

// Throws Error (one line) at the first problem.
JailPlan preflight(const JailerOptions& options);

}  // namespace vmm::jailer
