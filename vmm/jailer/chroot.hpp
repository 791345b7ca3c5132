// The jail: <base>/<exec file name>/<id>/root with a copy of the executable,
// entered with pivot_root in a mount namespace of its own, then given the
// device nodes the vmm opens.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vmm::jailer {

// A host character device recreated inside the jail with the same numbers.
struct DeviceNode {
    std::string path;  // absolute, as the vmm opens it ("/dev/kvm")
    dev_t device;
};

// The host's /dev/kvm, /dev/net/tun and /dev/userfaultfd, those that exist.
std::vector<DeviceNode> host_device_nodes();

// Creates the chroot folder (and the folders above it, root-owned) and
// copies `exec_path` into it as `exec_name`: a copy, so the jailed uid owns
// no link to the host's binary. With `pvm_marker`, also the empty folder
// sys/module/kvm_pvm: the vmm tells a PVM host by it (it has no /sys).
void build_chroot(const std::string& chroot_dir, const std::string& exec_path,
                  const std::string& exec_name, bool pvm_marker);

// A new mount namespace, every mount private, the chroot bind-mounted on
// itself and made the root with pivot_root; the old root is detached.
void enter_chroot(const std::string& chroot_dir);

// Inside the jail: /, /dev, /dev/net and /run owned by uid:gid (mode 0700)
// and the device nodes (mode 0600, owned by uid:gid).
void populate_jail(const std::vector<DeviceNode>& devices, uint32_t uid, uint32_t gid);

}  // namespace vmm::jailer
