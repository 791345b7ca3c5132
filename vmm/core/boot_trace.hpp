// Timestamps of the boot milestones, relative to VMM start (entry to main),
// printed by --boot-trace. Each milestone is recorded once, from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace vmm {

class BootTrace {
  public:
    // ApiReady and InstanceStart are reported only when they happened (the
    // API's socket listening; the VM being built, whatever asked for it).
    enum class Event {
        FirstKvmRun,
        FirstSerialByte,
        BootTimer,
        Exit,
        ApiReady,
        InstanceStart,
        Count
    };

    BootTrace();
    // Records `event` unless it has been recorded already.
    void mark(Event event);
    // Nanoseconds since start, or -1 if never recorded.
    int64_t elapsed_ns(Event event) const;
    std::string report() const;
    int64_t since_start_ns() const { return now_ns() - start_ns_; }

    // The builder's vCPU step (create and configure every vCPU): its wall
    // time, and the time of the threads that did it, summed, split into
    // calls into KVM (its ioctls and the run-area mmaps, vmm/kvm/ioctl.hpp)
    // and the rest, our own code. Reported once recorded, as one line (see
    // report()).
    struct VcpuSetup {
        uint32_t vcpus = 0;
        uint32_t threads = 1;
        int64_t wall_ns = 0;
        int64_t busy_ns = 0;  // summed over the threads: KVM calls + own code
        int64_t kvm_ns = 0;   // summed over the threads
    };
    void record_vcpu_setup(const VcpuSetup& setup);
    std::optional<VcpuSetup> vcpu_setup() const;
    // The report's vCPU setup line, without the "boot-trace: " prefix:
    //   vcpu setup: 32 vCPUs on 2 threads in 2100 us wall: 3900 us in KVM
    //   calls + 250 us own code = 4150 us thread time; 7.8 us own code per vCPU
    // (one line). Whole microseconds, own code = thread time - KVM calls.
    static std::string describe(const VcpuSetup& setup);

    static int64_t now_ns();

  private:
    int64_t start_ns_;
    std::array<std::atomic<int64_t>, static_cast<size_t>(Event::Count)> marks_;
    mutable std::mutex vcpu_setup_mutex_;
    std::optional<VcpuSetup> vcpu_setup_;  // guarded by vcpu_setup_mutex_
};

}  // namespace vmm
