// Runs one piece of work per index on a few short-lived threads, for the
// builder's vCPU step (vmm/core/vm_builder.cpp), and says where the time
// went: each thread's time inside, and inside calls into KVM (vmm/kvm/ioctl.hpp).
#pragma once

#include <cstdint>
#include <functional>

namespace vmm {

struct ParallelTimes {
    uint32_t threads = 1;        // threads that ran work, the caller's included
    int64_t worker_busy_ns = 0;  // summed over the helper threads
    int64_t worker_kvm_ns = 0;   // summed over the helper threads
    int64_t wait_ns = 0;         // the caller's wait for the helpers to finish
};

// Calls work(id) once for every id in [first, end): on the calling thread
// alone when `threads` <= 1, else on up to `threads` threads, the caller one
// of them, each taking the next id not taken yet (so ids start in order but
// may finish in any order). The helpers block every signal. A helper that
// cannot be started leaves its share to the others.
//
// When it returns every helper has finished. If work threw, no further id is
// started and the exception of the lowest failing id is rethrown as it was.
ParallelTimes parallel_for(uint32_t first, uint32_t end, uint32_t threads,
                           const std::function<void(uint32_t)>& work);

}  // namespace vmm
