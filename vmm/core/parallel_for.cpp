#include "vmm/core/parallel_for.hpp"

#include <signal.h>

#include <atomic>
#include <exception>
#include <limits>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "vmm/core/boot_trace.hpp"
#include "vmm/kvm/ioctl.hpp"

namespace vmm {

ParallelTimes parallel_for(uint32_t first, uint32_t end, uint32_t threads,
                           const std::function<void(uint32_t)>& work) {
    ParallelTimes times;
    if (threads <= 1 || end - first <= 1) {
        for (uint32_t id = first; id < end; ++id) {
            work(id);
        }
        return times;
    }

    std::atomic<uint32_t> next{first};
    std::atomic<bool> failed{false};
    std::mutex mutex;
    uint32_t error_id = std::numeric_limits<uint32_t>::max();  // guarded by mutex
    std::exception_ptr error;                                  // guarded by mutex
    auto drain = [&] {
        while (!failed.load(std::memory_order_relaxed)) {
            uint32_t id = next.fetch_add(1, std::memory_order_relaxed);
            if (id >= end) {
                return;
            }
            try {
                work(id);
            } catch (...) {
                std::lock_guard lock(mutex);
                if (id < error_id) {
                    error_id = id;
                    error = std::current_exception();
                }
                failed = true;
            }
        }
    };
    auto helper = [&] {
        int64_t start = BootTrace::now_ns();
        int64_t start_kvm = thread_kvm_ns();
        drain();
        int64_t busy = BootTrace::now_ns() - start;
        int64_t kvm = thread_kvm_ns() - start_kvm;
        std::lock_guard lock(mutex);
        times.worker_busy_ns += busy;
        times.worker_kvm_ns += kvm;
    };

    std::vector<std::thread> helpers;
    helpers.reserve(threads - 1);
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    for (uint32_t i = 1; i < threads && i < end - first; ++i) {
        try {
            helpers.emplace_back(helper);
        } catch (const std::system_error&) {
            break;  // out of threads: the ones running (and this one) do it all
        }
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    times.threads = uint32_t(helpers.size()) + 1;

    drain();
    int64_t wait_start = BootTrace::now_ns();
    for (std::thread& thread : helpers) {
        thread.join();
    }
    times.wait_ns = BootTrace::now_ns() - wait_start;
    if (error) {
        std::rethrow_exception(error);
    }
    return times;
}

}  // namespace vmm
