#include "vmm/jailer/cgroups.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <sstream>

#include <fmt/format.h>

#include "vmm/base/error.hpp"
#include "vmm/jailer/files.hpp"

namespace vmm::jailer {

namespace {

// /proc/mounts writes space, tab, newline and backslash as \ooo.
std::string unescape_mount_field(const std::string& field) {
    std::string out;
    for (size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size()) {
            const std::string digits = field.substr(i + 1, 3);
            if (std::all_of(digits.begin(), digits.end(),
                            [](char c) { return c >= '0' && c <= '7'; })) {
                out += static_cast<char>(std::stoi(digits, nullptr, 8));
                i += 3;
                continue;
            }
        }
        out += field[i];
    }
    return out;
}

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> parts;
    std::string part;
    std::istringstream in(text);
    while (std::getline(in, part, separator)) {
        parts.push_back(part);
    }
    return parts;
}

std::vector<std::string> words(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string word;
    while (in >> word) {
        out.push_back(word);
    }
    return out;
}

std::string join(const std::vector<std::string>& list) {
    std::string out;
    for (const auto& item : list) {
        out += (out.empty() ? "" : " ") + item;
    }
    return out;
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
}

std::vector<std::string> cgroup_levels(const JailerOptions& options, const std::string& exec_name) {
    std::vector<std::string> levels =
        options.parent_cgroup ? split(*options.parent_cgroup, '/') : std::vector{exec_name};
    levels.push_back(options.id);
    return levels;
}

// A new v1 cpuset cgroup has no CPUs and no memory nodes, and no task can
// join it until it has: take the parent's, as Firecracker's jailer does.
void inherit_cpuset(const std::string& parent, const std::string& child) {
    for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
        std::string mine = read_text_file(child + "/" + file);
        if (!words(mine).empty()) {
            continue;
        }
        std::string theirs = read_text_file(parent + "/" + file);
        if (!words(theirs).empty()) {
            write_text_file(child + "/" + file, words(theirs).front());
        }
    }
}

void enable_controllers(const std::string& folder, const std::vector<std::string>& controllers) {
    std::vector<std::string> enabled = words(read_text_file(folder + "/cgroup.subtree_control"));
    for (const auto& controller : controllers) {
        if (!contains(enabled, controller)) {
            write_text_file(folder + "/cgroup.subtree_control", "+" + controller);
        }
    }
}

}  // namespace

std::vector<MountEntry> parse_mounts(const std::string& text) {
    std::vector<MountEntry> mounts;
    for (const auto& line : split(text, '\n')) {
        std::vector<std::string> fields = words(line);
        if (fields.size() < 4) {
            continue;
        }
        mounts.push_back({unescape_mount_field(fields[0]), unescape_mount_field(fields[1]),
                          fields[2], fields[3]});
    }
    return mounts;
}

std::string CgroupDir::path() const {
    std::string out = hierarchy;
    for (const auto& level : levels) {
        out += "/" + level;
    }
    return out;
}

CgroupPlan plan_cgroups(const JailerOptions& options, const std::string& exec_name,
                        const std::vector<MountEntry>& mounts) {
    CgroupPlan plan;
    plan.version = options.cgroup_version;
    if (options.cgroups.empty()) {
        return plan;
    }
    std::vector<std::string> levels = cgroup_levels(options, exec_name);
    if (options.cgroup_version == 2) {
        auto mount = std::find_if(mounts.begin(), mounts.end(),
                                  [](const MountEntry& m) { return m.fs_type == "cgroup2"; });
        if (mount == mounts.end()) {
            throw Error("--cgroup-version 2: no cgroup2 hierarchy is mounted (see /proc/mounts)");
        }
        CgroupDir dir{mount->mount_point, levels, options.cgroups, {}};
        for (const auto& setting : options.cgroups) {
            // cgroup.* files are the core's, in every cgroup without a controller.
            if (setting.controller != "cgroup" && !contains(dir.controllers, setting.controller)) {
                dir.controllers.push_back(setting.controller);
            }
        }
        plan.dirs.push_back(dir);
        return plan;
    }
    for (const auto& setting : options.cgroups) {
        auto mount = std::find_if(mounts.begin(), mounts.end(), [&](const MountEntry& m) {
            return m.fs_type == "cgroup" && contains(split(m.options, ','), setting.controller);
        });
        if (mount == mounts.end()) {
            throw Error(fmt::format(
                "--cgroup {}: no cgroup v1 hierarchy has the '{}' controller (see /proc/mounts; "
                "--cgroup-version 2 for the unified hierarchy)",
                setting.file, setting.controller));
        }
        auto dir = std::find_if(plan.dirs.begin(), plan.dirs.end(), [&](const CgroupDir& d) {
            return d.hierarchy == mount->mount_point;
        });
        if (dir == plan.dirs.end()) {
            plan.dirs.push_back({mount->mount_point, levels, {}, {}});
            dir = plan.dirs.end() - 1;
        }
        dir->settings.push_back(setting);
        if (!contains(dir->controllers, setting.controller)) {
            dir->controllers.push_back(setting.controller);
        }
    }
    return plan;
}

void check_cgroups_available(const CgroupPlan& plan) {
    for (const auto& dir : plan.dirs) {
        struct stat st {};
        if (::stat(dir.hierarchy.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
            throw_errno("cgroup hierarchy " + dir.hierarchy);
        }
        if (plan.version != 2 || dir.controllers.empty()) {
            continue;
        }
        std::vector<std::string> available =
            words(read_text_file(dir.hierarchy + "/cgroup.controllers"));
        for (const auto& controller : dir.controllers) {
            if (!contains(available, controller)) {
                throw Error(fmt::format(
                    "--cgroup {}.*: the cgroup v2 hierarchy at {} has no '{}' controller "
                    "(available: {})",
                    controller, dir.hierarchy, controller,
                    available.empty() ? std::string("none") : join(available)));
            }
        }
    }
}

void apply_cgroups(const CgroupPlan& plan, pid_t pid) {
    for (const auto& dir : plan.dirs) {
        std::string folder = dir.hierarchy;
        bool cpuset = plan.version == 1 && contains(dir.controllers, "cpuset");
        for (const auto& level : dir.levels) {
            // v2 controllers must be enabled in every ancestor's subtree.
            if (plan.version == 2 && !dir.controllers.empty()) {
                enable_controllers(folder, dir.controllers);
            }
            std::string child = folder + "/" + level;
            make_directory(child, 0755);
            if (cpuset) {
                inherit_cpuset(folder, child);
            }
            folder = child;
        }
        for (const auto& setting : dir.settings) {
            write_text_file(folder + "/" + setting.file, setting.value);
        }
    }
    // Only once every value is written: some depend on others (cpuset).
    for (const auto& dir : plan.dirs) {
        write_text_file(dir.path() + "/cgroup.procs", std::to_string(pid));
    }
}

}  // namespace vmm::jailer
