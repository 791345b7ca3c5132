// The vmm's cgroup: where it goes (planned from /proc/mounts before anything
// is touched) and putting it there. Like Firecracker's jailer, a cgroup is
// made only for --cgroup settings: <hierarchy>/<parent cgroup>/<id>, where
// the parent defaults to the exec file's name.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "vmm/jailer/options.hpp"

namespace vmm::jailer {

// One line of /proc/mounts, octal escapes (\040) decoded.
struct MountEntry {
    std::string device;
    std::string mount_point;
    std::string fs_type;
    std::string options;
};

std::vector<MountEntry> parse_mounts(const std::string& text);

// One cgroup folder of the vmm: cgroup v2 has one, v1 one per hierarchy that
// a --cgroup setting names (controllers mounted together share one).
struct CgroupDir {
    std::string hierarchy;            // the hierarchy's mount point
    std::vector<std::string> levels;  // parent cgroup components, then the id
    std::vector<CgroupSetting> settings;
    std::vector<std::string> controllers;  // v2: to enable on the way down

    std::string path() const;  // hierarchy/levels...
};

struct CgroupPlan {
    int version = 1;
    std::vector<CgroupDir> dirs;
};

// Pure: throws Error when no mounted hierarchy has a controller a setting
// needs (or, for v2, when no cgroup2 is mounted).
CgroupPlan plan_cgroups(const JailerOptions& options, const std::string& exec_name,
                        const std::vector<MountEntry>& mounts);

// Reads the hierarchy (no writes): v2 controllers must be available.
void check_cgroups_available(const CgroupPlan& plan);

// Creates the folders, writes the settings, then moves `pid` in.
void apply_cgroups(const CgroupPlan& plan, pid_t pid);

}  // namespace vmm::jailer
