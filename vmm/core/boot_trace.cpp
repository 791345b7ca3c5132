#include "vmm/core/boot_trace.hpp"

#include <time.h>

#include <iterator>

#include <fmt/format.h>

namespace vmm {

BootTrace::BootTrace() : start_ns_(now_ns()) {
    for (auto& mark : marks_) {
        mark.store(-1);
    }
}

int64_t BootTrace::now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void BootTrace::mark(Event event) {
    auto& slot = marks_[static_cast<size_t>(event)];
    int64_t unset = -1;
    if (slot.load(std::memory_order_relaxed) == -1) {
        slot.compare_exchange_strong(unset, now_ns() - start_ns_);
    }
}

int64_t BootTrace::elapsed_ns(Event event) const {
    return marks_[static_cast<size_t>(event)].load();
}

void BootTrace::record_vcpu_setup(const VcpuSetup& setup) {
    std::lock_guard lock(vcpu_setup_mutex_);
    vcpu_setup_ = setup;
}

std::optional<BootTrace::VcpuSetup> BootTrace::vcpu_setup() const {
    std::lock_guard lock(vcpu_setup_mutex_);
    return vcpu_setup_;
}

std::string BootTrace::describe(const VcpuSetup& setup) {
    int64_t wall_us = (setup.wall_ns + 500) / 1000;
    int64_t busy_us = (setup.busy_ns + 500) / 1000;
    int64_t kvm_us = (setup.kvm_ns + 500) / 1000;
    int64_t own_ns = setup.busy_ns - setup.kvm_ns;
    double own_per_vcpu_us = setup.vcpus > 0 ? double(own_ns) / 1e3 / setup.vcpus : 0.0;
    return fmt::format(
        "vcpu setup: {} vCPUs on {} thread{} in {} us wall: {} us in KVM calls + {} us own code "
        "= {} us thread time; {:.1f} us own code per vCPU",
        setup.vcpus, setup.threads, setup.threads == 1 ? "" : "s", wall_us, kvm_us,
        busy_us - kvm_us, busy_us, own_per_vcpu_us);
}

std::string BootTrace::report() const {
    static constexpr const char* kNames[] = {
        "first KVM_RUN", "first serial byte", "boot timer", "exit", "api ready", "instance start"};
    static_assert(std::size(kNames) == size_t(Event::Count));
    std::string out;
    for (size_t i = 0; i < marks_.size(); ++i) {
        int64_t ns = marks_[i].load();
        bool optional = i >= size_t(Event::ApiReady);
        if (ns < 0 && optional) {
            continue;
        }
        if (ns < 0) {
            out += fmt::format("boot-trace: {:<18} never\n", kNames[i]);
        } else {
            out += fmt::format("boot-trace: {:<18} {:10.3f} ms\n", kNames[i], double(ns) / 1e6);
        }
    }
    if (auto setup = vcpu_setup()) {
        out += fmt::format("boot-trace: {}\n", describe(*setup));
    }
    return out;
}

}  // namespace vmm
