// The one way the kvm layer calls ioctl(2) on a KVM fd. With accounting on
// (a process-wide switch: the core turns it on for --boot-trace), the time
// spent inside each call is added to the calling thread's total, so a caller
// can split its own elapsed time into KVM's part and ours. Off, it costs one
// relaxed atomic load and a branch per call. errno is what the ioctl left.
#pragma once

#include <sys/ioctl.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

namespace vmm {

namespace ioctl_detail {
extern std::atomic<bool> accounting;
int64_t now_ns();
void add_thread_ns(int64_t ns);
}  // namespace ioctl_detail

template <typename Arg>
inline int kvm_ioctl(int fd, unsigned long request, Arg arg) {
    if (!ioctl_detail::accounting.load(std::memory_order_relaxed)) [[likely]] {
        return ::ioctl(fd, request, arg);
    }
    int64_t start = ioctl_detail::now_ns();
    int result = ::ioctl(fd, request, arg);
    int saved_errno = errno;
    ioctl_detail::add_thread_ns(ioctl_detail::now_ns() - start);
    errno = saved_errno;
    return result;
}

// Turns the accounting on or off for every thread.
void set_ioctl_accounting(bool on);
bool ioctl_accounting();
// Nanoseconds the calling thread has spent inside kvm_ioctl() while the
// accounting was on. Callers take differences.
int64_t thread_ioctl_ns();

}  // namespace vmm
