// A vCPU thread: runs KVM_RUN and dispatches exits to the port-I/O and MMIO
// buses. Stops when the VM exit is requested; kick() forces it out of KVM_RUN.
#pragma once

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "vmm/boot_trace.hpp"
#include "vmm/bus.hpp"
#include "vmm/kvm/vcpu_fd.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/vm_exit.hpp"
#include "vmm/vm_state.hpp"

namespace vmm {

class Vcpu {
  public:
    struct Context {
        const Bus& pio;
        const Bus& mmio;
        const GuestMemory& memory;
        VmExit& exit;
        BootTrace& trace;
    };

    Vcpu(VcpuFd fd, Context context) : fd_(std::move(fd)), context_(context) {}
    ~Vcpu();
    Vcpu(const Vcpu&) = delete;
    Vcpu& operator=(const Vcpu&) = delete;

    const VcpuFd& fd() const { return fd_; }

    // Installs the (empty) handler of the kick signal; once per process.
    static void install_kick_handler();

    void start();
    // Makes KVM_RUN return now or at its next entry; safe from any thread.
    void kick();
    void join();

    // Pausing, from any thread but this vCPU's: request_pause() kicks the
    // thread out of KVM_RUN; it saves its state (`msrs` say which MSRs) and
    // waits. wait_paused() returns once it has (or the vCPU stopped); the
    // state is then stable. resume() lets it run again, first writing the
    // saved (or an edited) state back when `write_back` is set.
    // The MSRs KVM lists for saving; the ones this vCPU can read are probed
    // at its first pause, so boot does not pay for it.
    void set_listed_msrs(std::vector<uint32_t> msrs) { listed_msrs_ = std::move(msrs); }
    void request_pause();
    void wait_paused();
    void resume(bool write_back);
    // Valid between wait_paused() and resume(); nothing if saving failed.
    const std::optional<VcpuState>& saved_state() const { return saved_; }
    const std::string& pause_error() const { return pause_error_; }

  private:
    void run_loop();
    // Handles one exit; false when the vCPU must stop.
    bool handle_exit();
    void handle_io();
    void handle_mmio();
    // On this vCPU's thread after an interrupted KVM_RUN: parks while paused.
    void park_if_paused();

    VcpuFd fd_;
    Context context_;
    std::thread thread_;
    std::atomic<bool> running_{false};

    std::mutex pause_mutex_;
    std::condition_variable pause_cv_;
    bool pause_requested_ = false;  // guarded by pause_mutex_
    bool paused_ = false;           // guarded by pause_mutex_
    bool write_back_ = false;       // guarded by pause_mutex_
    std::vector<uint32_t> listed_msrs_;
    std::optional<std::vector<uint32_t>> saveable_msrs_;
    std::optional<VcpuState> saved_;
    std::string pause_error_;
};

}  // namespace vmm
