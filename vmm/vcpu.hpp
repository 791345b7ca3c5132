// A vCPU thread: runs KVM_RUN and dispatches exits to the port-I/O and MMIO
// buses. Stops when the VM exit is requested; kick() forces it out of KVM_RUN.
#pragma once

#include <pthread.h>

#include <atomic>
#include <thread>

#include "vmm/boot_trace.hpp"
#include "vmm/bus.hpp"
#include "vmm/kvm/vcpu_fd.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/vm_exit.hpp"

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

  private:
    void run_loop();
    // Handles one exit; false when the vCPU must stop.
    bool handle_exit();
    void handle_io();
    void handle_mmio();

    VcpuFd fd_;
    Context context_;
    std::thread thread_;
    std::atomic<bool> running_{false};
};

}  // namespace vmm
