#include "vmm/jailer/chroot.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "vmm/base/error.hpp"
#include "vmm/base/unique_fd.hpp"
#include "vmm/jailer/files.hpp"

namespace vmm::jailer {

namespace {

constexpr mode_t kJailFolderMode = 0700;

void copy_file(const std::string& from, int to_dir, const std::string& name,
               const std::string& to_path) {
    UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in.valid()) {
        throw_errno("cannot open --exec-file " + from);
    }
    struct stat st {};
    if (::fstat(in.get(), &st) != 0) {
        throw_errno("cannot stat --exec-file " + from);
    }
    // A previous jail with this id may have left anything here, a symlink
    // to a host file included: replace it, never write through it.
    if (::unlinkat(to_dir, name.c_str(), 0) != 0 && errno != ENOENT) {
        throw_errno("cannot replace " + to_path);
    }
    UniqueFd out(
        ::openat(to_dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755));
    if (!out.valid()) {
        throw_errno("cannot create " + to_path);
    }
    off_t offset = 0;
    while (offset < st.st_size) {
        ssize_t n =
            ::sendfile(out.get(), in.get(), &offset, static_cast<size_t>(st.st_size - offset));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            throw_errno(fmt::format("cannot copy {} to {}", from, to_path));
        }
        if (n == 0) {
            throw Error(fmt::format("cannot copy {} to {}: it shrank while copied", from, to_path));
        }
    }
    // umask may have taken bits away: the jailed uid needs to run it.
    if (::fchmod(out.get(), 0755) != 0) {
        throw_errno("chmod " + to_path);
    }
}

void setup_jail_folder(const char* path, uint32_t uid, uint32_t gid) {
    make_directory(path, kJailFolderMode);
    if (::chmod(path, kJailFolderMode) != 0) {
        throw_errno(fmt::format("chmod {} (in the jail)", path));
    }
    if (::chown(path, uid, gid) != 0) {
        throw_errno(fmt::format("chown {} (in the jail)", path));
    }
}

}  // namespace

std::vector<DeviceNode> host_device_nodes() {
    std::vector<DeviceNode> nodes;
    for (const char* path : {"/dev/kvm", "/dev/net/tun", "/dev/userfaultfd"}) {
        struct stat st {};
        if (::stat(path, &st) == 0 && S_ISCHR(st.st_mode)) {
            nodes.push_back({path, st.st_rdev});
        }
    }
    return nodes;
}

void build_chroot(const std::string& chroot_dir, const std::string& exec_path,
                  const std::string& exec_name, bool pvm_marker) {
    make_directories(chroot_dir, 0755);
    UniqueFd dir(::open(chroot_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir.valid()) {
        throw_errno("cannot open the chroot folder " + chroot_dir);
    }
    copy_file(exec_path, dir.get(), exec_name, chroot_dir + "/" + exec_name);
    if (pvm_marker) {
        make_directories(chroot_dir + "/sys/module/kvm_pvm", 0755);
    }
}

void enter_chroot(const std::string& chroot_dir) {
    if (::unshare(CLONE_NEWNS) != 0) {
        throw_errno("unshare(CLONE_NEWNS)");
    }
    // Nothing done here may propagate back to the host's mounts.
    if (::mount(nullptr, "/", nullptr, MS_PRIVATE | MS_REC, nullptr) != 0) {
        throw_errno("making the mounts private");
    }
    // pivot_root needs the new root to be a mount point.
    if (::mount(chroot_dir.c_str(), chroot_dir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        throw_errno("bind-mounting " + chroot_dir + " on itself");
    }
    if (::chdir(chroot_dir.c_str()) != 0) {
        throw_errno("chdir " + chroot_dir);
    }
    // pivot_root(".", ".") stacks the old root on the new one: no folder
    // for it is needed inside the jail.
    if (::syscall(SYS_pivot_root, ".", ".") != 0) {
        throw_errno("pivot_root into " + chroot_dir);
    }
    if (::umount2(".", MNT_DETACH) != 0) {
        throw_errno("detaching the host's root");
    }
    if (::chroot(".") != 0 || ::chdir("/") != 0) {
        throw_errno("chroot into " + chroot_dir);
    }
}

void populate_jail(const std::vector<DeviceNode>& devices, uint32_t uid, uint32_t gid) {
    for (const char* folder : {"/", "/dev", "/dev/net", "/run"}) {
        setup_jail_folder(folder, uid, gid);
    }
    for (const auto& node : devices) {
        // Left by an earlier run with this id: make it anew.
        if (::unlink(node.path.c_str()) != 0 && errno != ENOENT) {
            throw_errno("cannot replace " + node.path + " in the jail");
        }
        if (::mknod(node.path.c_str(), S_IFCHR | 0600, node.device) != 0) {
            throw_errno(fmt::format("mknod {} ({}:{}) in the jail", node.path, major(node.device),
                                    minor(node.device)));
        }
        if (::chown(node.path.c_str(), uid, gid) != 0) {
            throw_errno("chown " + node.path + " in the jail");
        }
    }
}

}  // namespace vmm::jailer
