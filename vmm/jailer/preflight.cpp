#include "vmm/jailer/preflight.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <memory>

#include "vmm/base/error.hpp"
#include "vmm/jailer/files.hpp"
#include "vmm/jailer/namespaces.hpp"
#include "vmm/jailer/privileges.hpp"

namespace vmm::jailer {

namespace {

std::string canonical_path(const std::string& path, const char* option) {
    std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(path.c_str(), nullptr),
                                                         &std::free);
    if (!resolved) {
        if (errno == ENOENT) {
            throw Error(fmt::format("{} {}: does not exist", option, path));
        }
        throw_errno(fmt::format("{} {}", option, path));
    }
    return resolved.get();
}

void check_exec_file(const std::string& path, const std::string& given) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        throw_errno("--exec-file " + given);
    }
    if (!S_ISREG(st.st_mode)) {
        throw Error(fmt::format("--exec-file {}: not a regular file", given));
    }
    if ((st.st_mode & 0111) == 0) {
        throw Error(fmt::format("--exec-file {}: not executable", given));
    }
}

}  // namespace

JailPlan preflight(const JailerOptions& options) {
    // First: without root nothing else matters, and paths may look missing.
    require_root();
    JailPlan plan;
    plan.exec_path = canonical_path(options.exec_file, "--exec-file");
    check_exec_file(plan.exec_path, options.exec_file);
    plan.exec_name = plan.exec_path.substr(plan.exec_path.rfind('/') + 1);

    std::string base = canonical_path(options.chroot_base_dir, "--chroot-base-dir");
    struct stat st {};
    if (::stat(base.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        throw Error(fmt::format("--chroot-base-dir {}: not a directory", options.chroot_base_dir));
    }
    plan.chroot_dir = (base == "/" ? "" : base) + "/" + plan.exec_name + "/" + options.id + "/root";
    if (plan.chroot_dir.size() >= PATH_MAX) {
        throw Error(fmt::format("the chroot path {} is too long", plan.chroot_dir));
    }

    if (options.netns) {
        plan.netns = open_network_namespace(*options.netns);
    }
    if (!options.cgroups.empty()) {
        plan.cgroups =
            plan_cgroups(options, plan.exec_name, parse_mounts(read_text_file("/proc/mounts")));
        check_cgroups_available(plan.cgroups);
    } else {
        plan.cgroups.version = options.cgroup_version;
    }
    plan.devices = host_device_nodes();
    plan.pvm_host = ::access("/sys/module/kvm_pvm", F_OK) == 0;
    return plan;
}

}  // namespace vmm::jailer
