#include "vmm/jailer/namespaces.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>

#include "vmm/base/error.hpp"

namespace vmm::jailer {

UniqueFd open_network_namespace(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
        throw_errno("--netns " + path);
    }
    struct statfs fs {};
    if (::fstatfs(fd.get(), &fs) != 0) {
        throw_errno("--netns " + path);
    }
    if (fs.f_type != NSFS_MAGIC) {
        throw Error(fmt::format(
            "--netns {}: not a namespace handle (expected e.g. /var/run/netns/NAME)", path));
    }
    int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
    if (type < 0) {
        throw_errno("--netns " + path + ": cannot tell the namespace's type");
    }
    if (type != CLONE_NEWNET) {
        throw Error(fmt::format("--netns {}: a namespace, but not a network namespace", path));
    }
    return fd;
}

void join_network_namespace(const UniqueFd& netns, const std::string& path) {
    if (::setns(netns.get(), CLONE_NEWNET) != 0) {
        throw_errno("cannot join the network namespace " + path);
    }
}

}  // namespace vmm::jailer
