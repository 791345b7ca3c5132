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
    return out;
}

}  // namespace vmm
