#include "vmm/jailer/privileges.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>

#include "vmm/base/error.hpp"

namespace vmm::jailer {

namespace {

// glibc has no wrappers for capget/capset.
bool get_caps(__user_cap_data_struct (&data)[2]) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    return ::syscall(SYS_capget, &header, data) == 0;
}

void clear_caps() {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capset, &header, data) != 0) {
        throw_errno("capset (clearing the capabilities)");
    }
}

void set_limit(int resource, uint64_t value, const char* name) {
    rlimit limit{static_cast<rlim_t>(value), static_cast<rlim_t>(value)};
    if (::setrlimit(resource, &limit) != 0) {
        throw_errno(fmt::format("--resource-limit {}={}", name, value));
    }
}

}  // namespace

void close_inherited_fds() {
    if (::close_range(3, UINT_MAX, 0) != 0) {
        throw_errno("close_range (closing inherited file descriptors)");
    }
}

void require_root() {
    if (::geteuid() != 0) {
        throw Error(fmt::format(
            "must run as root (uid 0), not uid {}: it builds the jail (device nodes, cgroups, "
            "namespaces) and then drops to --uid/--gid",
            ::geteuid()));
    }
}

void set_resource_limits(const ResourceLimits& limits) {
    if (limits.file_size) {
        set_limit(RLIMIT_FSIZE, *limits.file_size, "fsize");
    }
    set_limit(RLIMIT_NOFILE, limits.open_files, "no-file");
}

void drop_privileges(uint32_t uid, uint32_t gid) {
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
        throw_errno("prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
    }
    // While CAP_SETPCAP is still there; EINVAL past the kernel's last one.
    for (int cap = 0; cap < 64; ++cap) {
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
            if (errno == EINVAL) {
                break;
            }
            throw_errno(fmt::format("prctl(PR_CAPBSET_DROP, {})", cap));
        }
    }
    if (::setgroups(0, nullptr) != 0) {
        throw_errno("setgroups (dropping supplementary groups)");
    }
    if (::setresgid(gid, gid, gid) != 0) {
        throw_errno(fmt::format("setresgid({})", gid));
    }
    if (::setresuid(uid, uid, uid) != 0) {
        throw_errno(fmt::format("setresuid({})", uid));
    }
    // Leaving uid 0 empties the permitted and effective sets, but not the
    // inheritable one (and --uid 0 keeps them all): clear them explicitly.
    clear_caps();
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        throw_errno("prctl(PR_SET_NO_NEW_PRIVS)");
    }

    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    __user_cap_data_struct caps[2] = {};
    if (::getresuid(&ruid, &euid, &suid) != 0 || ::getresgid(&rgid, &egid, &sgid) != 0 ||
        !get_caps(caps)) {
        throw_errno("checking the dropped privileges");
    }
    bool ids_ok =
        ruid == uid && euid == uid && suid == uid && rgid == gid && egid == gid && sgid == gid;
    bool caps_empty = true;
    for (const auto& set : caps) {
        caps_empty = caps_empty && set.effective == 0 && set.permitted == 0 && set.inheritable == 0;
    }
    if (!ids_ok || !caps_empty || ::prctl(PR_CAPBSET_READ, 0, 0, 0, 0) != 0) {
        throw Error("privileges were not fully dropped (ids or capabilities remain)");
    }
}

}  // namespace vmm::jailer
