#include "vmm/kvm/ioctl.hpp"

#include <time.h>

namespace vmm {

namespace kvm_detail {

std::atomic<bool> accounting{false};

namespace {
thread_local int64_t thread_ns = 0;
}  // namespace

int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void add_thread_ns(int64_t ns) {
    thread_ns += ns;
}

}  // namespace kvm_detail

void set_kvm_accounting(bool on) {
    kvm_detail::accounting.store(on, std::memory_order_relaxed);
}

bool kvm_accounting() {
    return kvm_detail::accounting.load(std::memory_order_relaxed);
}

int64_t thread_kvm_ns() {
    return kvm_detail::thread_ns;
}

}  // namespace vmm
