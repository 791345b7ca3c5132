// A vCPU thread: runs KVM_RUN and dispatches exits to the port-I/O and MMIO
// buses. Stops when the VM exit is requested; kick() forces it out of KVM_RUN.
#pragma once

#include <condition_variable>
#include <latch>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "vmm/core/boot_trace.hpp"
#include "vmm/core/bus.hpp"
#include "vmm/core/signalable_thread.hpp"
#include "vmm/core/stop_request.hpp"
#include "vmm/kvm/coalesced_pio_ring.hpp"
#include "vmm/kvm/vcpu_fd.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/seccomp/thread_filters.hpp"

namespace vmm {

class Vcpu {
  public:
    struct Context {
        const Bus& pio;
        const Bus& mmio;
        const GuestMemory& memory;
        StopRequest& exit;
        BootTrace& trace;
        // Port writes KVM queued instead of exiting (serial output); drained
        // after every KVM_RUN, before the exit is handled. Null: none.
        CoalescedPioRing* pio_ring = nullptr;
    };

    Vcpu(VcpuFd fd, Context context) : fd_(std::move(fd)), context_(context) {}
    ~Vcpu();
    Vcpu(const Vcpu&) = delete;
    Vcpu& operator=(const Vcpu&) = delete;

    const VcpuFd& fd() const { return fd_; }

    // Installs the (empty) handler of the kick signal; once per process,
    // before the first VM is built (Instance::run()).
    static void install_kick_handler();

    // The thread installs the vCPU filter (when there are filters), then
    // waits for `guest_entry` before its first KVM_RUN.
    void start(const seccomp::ThreadFilters* filters, std::latch& guest_entry);
    // Makes KVM_RUN return now or at its next entry; safe from any thread,
    // at any time: before start(), during it, after the thread ended.
    void kick();
    void join();
    // Joins once the thread left KVM_RUN, kicking it again meanwhile; false
    // (thread left running) if it did not within `limit`.
    bool join_within(std::chrono::milliseconds limit);

    // Pausing, from any thread but this vCPU's: request_pause() kicks the
    // thread out of KVM_RUN, where it waits; wait_paused() returns once it
    // does (or the vCPU stopped). Its state is then stable: the caller reads
    // and writes it through fd() (only once every vCPU is parked, or a vCPU
    // still running could send this one an INIT or SIPI after the read).
    // resume() lets it run again.
    void request_pause();
    void wait_paused();
    void resume();

  private:
    void run_loop(const seccomp::ThreadFilters* filters, std::latch& guest_entry);
    // Handles one exit; false when the vCPU must stop.
    bool handle_exit();
    void handle_io();
    void handle_mmio();
    // On this vCPU's thread after an interrupted KVM_RUN: parks while paused.
    void park_if_paused();

    VcpuFd fd_;
    Context context_;
    SignalableThread thread_;

    std::mutex pause_mutex_;
    std::condition_variable pause_cv_;
    bool pause_requested_ = false;  // guarded by pause_mutex_
    bool paused_ = false;           // guarded by pause_mutex_
};

}  // namespace vmm
