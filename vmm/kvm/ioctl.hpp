// The one way the kvm layer calls into KVM: ioctl(2) on a KVM fd, and
// mmap(2) of a vCPU fd (its run area, KVM's kvm_vcpu_mmap). With accounting
// on (a process-wide switch: the core turns it on for --boot-trace), the
// time spent inside each call is added to the calling thread's total, so a
// caller can split its own elapsed time into KVM's part and ours. Off, it
// costs one relaxed atomic load and a branch per call. errno is what the
// call left.
#pragma once

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace vmm {

namespace kvm_detail {
extern std::atomic<bool> accounting;
int64_t now_ns();
void add_thread_ns(int64_t ns);

template <typename Call>
inline auto accounted(Call call) {
    if (!accounting.load(std::memory_order_relaxed)) [[likely]] {
        return call();
    }
    int64_t start = now_ns();
    auto result = call();
    int saved_errno = errno;
    add_thread_ns(now_ns() - start);
    errno = saved_errno;
    return result;
}
}  // namespace kvm_detail

template <typename Arg>
inline int kvm_ioctl(int fd, unsigned long request, Arg arg) {
    return kvm_detail::accounted([&] { return ::ioctl(fd, request, arg); });
}

// A shared read-write mapping of `length` bytes of KVM fd `fd` (a vCPU's
// run area); MAP_FAILED and errno on failure, as mmap(2).
inline void* kvm_mmap(int fd, size_t length) {
    return kvm_detail::accounted(
        [&] { return ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0); });
}

// Turns the accounting on or off for every thread.
void set_kvm_accounting(bool on);
bool kvm_accounting();
// Nanoseconds the calling thread has spent inside kvm_ioctl() and
// kvm_mmap() while the accounting was on. Callers take differences.
int64_t thread_kvm_ns();

}  // namespace vmm
