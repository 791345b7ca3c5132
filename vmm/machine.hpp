// Builds a VM from a validated VmConfig (KVM objects, guest memory, boot
// setup, devices on buses, vCPUs) and runs it until it stops.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/signal_set.hpp>

#include "devices/legacy/serial_8250.hpp"
#include "devices/virtio/console/console_device.hpp"
#include "vmm/boot_trace.hpp"
#include "vmm/bus.hpp"
#include "vmm/config.hpp"
#include "vmm/event_loop.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/kvm/vm_fd.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/vcpu.hpp"
#include "vmm/virtio_mmio_devices.hpp"
#include "vmm/vm_exit.hpp"
#include "vmm/vm_state.hpp"

namespace vmm {

class Machine {
  public:
    Machine(const VmConfig& config, BootTrace& trace);
    ~Machine();

    // Starts the vCPUs, runs the event loop on this thread until the VM stops,
    // joins every vCPU thread. Returns the process exit status.
    int run();

    const VmExit& exit() const { return exit_; }

    // Every vCPU out of KVM_RUN with its state saved, and the in-kernel
    // devices' state saved: stable and readable until resume(). Throws Error
    // if some state could not be read (the VM stays paused). Main thread.
    void pause();
    // Runs again; with `write_back`, the saved state is written back first
    // (exactly what a snapshot restore does).
    void resume(bool write_back);
    bool paused() const { return paused_; }
    const std::string& cmdline() const { return cmdline_; }

  private:
    void setup_vm();
    void setup_devices();
    void setup_vcpus(const x86::BootSetup& boot);
    void stop_all();
    // Re-reads the terminal size on each SIGWINCH for virtio-console.
    void follow_terminal_size(boost::asio::signal_set& resize);
    // SIGUSR1 pauses, SIGUSR2 resumes (writing the state back): for
    // debugging and tests; the control API uses pause()/resume() directly.
    void follow_pause_signals(boost::asio::signal_set& signals);

    const VmConfig& config_;
    BootTrace& trace_;
    VmExit exit_;
    Kvm kvm_;
    std::unique_ptr<VmFd> vm_;
    std::unique_ptr<GuestMemory> memory_;
    std::string cmdline_;
    EventLoop loop_;
    Bus pio_bus_;
    Bus mmio_bus_;
    std::shared_ptr<Serial8250> serial_;
    std::unique_ptr<VirtioMmioDevices> virtio_devices_;
    ConsoleDevice* virtio_console_ = nullptr;  // owned by its transport
    std::vector<std::unique_ptr<Vcpu>> vcpus_;
    std::optional<VmDeviceState> device_state_;
    std::vector<VcpuState> vcpu_states_;
    std::optional<std::vector<uint32_t>> saveable_msrs_;  // probed at the first pause
    std::vector<uint32_t> listed_msrs_;
    bool paused_ = false;
    bool pvm_host_ = false;
    bool pvm_profile_ = false;
};

}  // namespace vmm
