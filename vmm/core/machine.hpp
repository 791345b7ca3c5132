// Builds a VM from a validated VmConfig (KVM objects, guest memory, boot
// setup, devices on buses, vCPUs) and runs it until it stops.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/signal_set.hpp>

#include "arch/x86_64/boot.hpp"
#include "arch/x86_64/kvm_state.hpp"
#include "devices/legacy/i8042.hpp"
#include "devices/legacy/serial_8250.hpp"
#include "devices/virtio/block/disk_image.hpp"
#include "devices/virtio/console/console_device.hpp"
#include "devices/virtio/net/tap.hpp"
#include "vmm/base/unique_fd.hpp"
#include "vmm/config/config.hpp"
#include "vmm/core/boot_trace.hpp"
#include "vmm/core/bus.hpp"
#include "vmm/core/console_input.hpp"
#include "vmm/core/event_loop.hpp"
#include "vmm/core/prepared_vm.hpp"
#include "vmm/core/terminal.hpp"
#include "vmm/core/vcpu.hpp"
#include "vmm/core/virtio_mmio_devices.hpp"
#include "vmm/core/vm_exit.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/kvm/vm_fd.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace vmm {

// What the configuration names on the host, opened and checked before KVM is
// touched: a missing kernel, a locked disk or a closed tap fd is reported as
// such even on a host without KVM. The Machine takes them over as they are.
struct MachineInputs {
    // Throws Error naming the input and the problem.
    explicit MachineInputs(const VmConfig& config);

    x86::BootFiles boot;
    std::vector<std::unique_ptr<DiskImage>> disks;  // one per config.drives, locked
    std::vector<std::unique_ptr<Tap>> taps;         // one per config.nets
    UniqueFd serial_out;                            // serial_out_path, when set
};

class Machine {
  public:
    // Builds everything on `loop`, which must outlive the machine; nothing
    // runs until start(). `config` must outlive the machine too; `inputs`
    // are what it names, opened from it.
    // `prepared`: KVM work done ahead (see PreparedVm); made here when null.
    Machine(const VmConfig& config, MachineInputs inputs, BootTrace& trace, EventLoop& loop,
            std::unique_ptr<PreparedVm> prepared = nullptr);
    ~Machine();

    // Takes the console, starts the devices and the vCPU threads. When the VM
    // stops (guest, signal, error), the loop is stopped.
    void start();
    // After the loop returned: joins every vCPU thread and returns the
    // process exit status.
    int finish();
    // A stop request from outside the guest (a signal, the API).
    void request_stop(int status, std::string reason);

    // Ctrl+Alt+Del on the keyboard controller (the API's SendCtrlAltDel).
    void send_ctrl_alt_del();
    // Each virtio device's name and counters, in device order.
    std::vector<std::pair<std::string, VirtioDevice::Metrics>> device_metrics() const;

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
    void setup_devices(MachineInputs& inputs);
    void setup_vcpus(const x86::BootSetup& boot);
    void stop_all();
    // Re-reads the terminal size on each SIGWINCH for virtio-console.
    void follow_terminal_size(boost::asio::signal_set& resize);
    // SIGUSR1 pauses, SIGUSR2 resumes (writing the state back): for
    // debugging and tests; the control API uses pause()/resume() directly.
    void follow_pause_signals(boost::asio::signal_set& signals);

    const VmConfig& config_;
    BootTrace& trace_;
    EventLoop& loop_;
    VmExit exit_;
    std::unique_ptr<PreparedVm> prepared_;
    std::unique_ptr<VmFd> vm_;
    std::unique_ptr<GuestMemory> memory_;
    std::string cmdline_;
    Bus pio_bus_;
    Bus mmio_bus_;
    std::shared_ptr<Serial8250> serial_;
    UniqueFd serial_out_;  // PUT /serial's serial_out_path; stdout otherwise
    std::shared_ptr<I8042> i8042_;
    std::unique_ptr<VirtioMmioDevices> virtio_devices_;
    ConsoleDevice* virtio_console_ = nullptr;  // owned by its transport
    std::vector<std::unique_ptr<Vcpu>> vcpus_;
    std::optional<VmDeviceState> device_state_;
    std::vector<VcpuState> vcpu_states_;
    std::optional<std::vector<uint32_t>> saveable_msrs_;  // probed at the first pause
    std::vector<uint32_t> listed_msrs_;
    // What start() sets up for the run; torn down by the destructor.
    std::unique_ptr<RawTerminal> terminal_;
    std::unique_ptr<ConsoleInput> console_input_;
    std::unique_ptr<boost::asio::signal_set> pause_signals_;
    std::unique_ptr<boost::asio::signal_set> resize_signals_;
    bool started_ = false;
    bool paused_ = false;
    bool pvm_host_ = false;
    bool pvm_profile_ = false;
};

}  // namespace vmm
