// A built VM (vmm/core/vm_builder.hpp makes it): guest memory, the buses
// with the platform and virtio devices, and the vCPUs. It runs them, pauses
// and resumes them, and says how the VM stopped. Whether it may pause or
// resume now is the lifecycle's decision (vmm/core/vm_lifecycle.hpp), not
// this class's.
#pragma once

#include <chrono>
#include <latch>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "arch/arch.hpp"
#include "devices/legacy/i8042.hpp"
#include "devices/legacy/serial_8250.hpp"
#include "devices/virtio/block/disk_image.hpp"
#include "devices/virtio/console/console_device.hpp"
#include "devices/virtio/net/tap.hpp"
#include "vmm/base/async_writer.hpp"
#include "vmm/base/state_stream.hpp"
#include "vmm/base/unique_fd.hpp"
#include "vmm/config/config.hpp"
#include "vmm/core/boot_trace.hpp"
#include "vmm/core/bus.hpp"
#include "vmm/core/console_input.hpp"
#include "vmm/core/empty_vm.hpp"
#include "vmm/core/event_loop.hpp"
#include "vmm/core/stop_request.hpp"
#include "vmm/core/terminal.hpp"
#include "vmm/core/vcpu.hpp"
#include "vmm/core/virtio_io_dispatcher.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/memory/memory_file.hpp"
#include "vmm/seccomp/thread_filters.hpp"

namespace vmm {

// What the configuration names on the host, opened and checked before KVM is
// touched: a missing kernel, a locked disk or a closed tap fd is reported as
// such even on a host without KVM. The builder takes them over as they are.
struct MachineInputs {
    // Throws Error naming the input and the problem. A snapshot restore
    // needs no kernel: `with_boot_files` false leaves `boot` empty.
    explicit MachineInputs(const VmConfig& config, bool with_boot_files = true);

    std::optional<arch::BootFiles> boot;
    std::vector<std::unique_ptr<DiskImage>> disks;  // one per config.drives, locked
    std::vector<std::unique_ptr<Tap>> taps;         // one per config.nets
    UniqueFd serial_out;                            // serial_out_path, when set
};

class Machine {
  public:
    ~Machine();
    Machine(const Machine&) = delete;
    Machine& operator=(const Machine&) = delete;

    // Takes the console, starts the devices and the vCPU threads. With
    // filters, each vCPU thread installs its own, then this (main) thread its
    // own, and only then does any vCPU enter the guest. When the VM stops
    // (guest, signal, error), the loop is stopped. A machine restored paused
    // (restore_machine()) starts its threads parked until resume().
    void start(const seccomp::ThreadFilters* filters);
    // After the loop returned: joins every vCPU thread and returns the
    // process exit status. A vCPU thread that never leaves KVM_RUN is left
    // behind (vcpus_abandoned()): the process must then end with _exit,
    // since the thread still uses the VM's memory and run area.
    int finish();
    bool vcpus_abandoned() const { return vcpus_abandoned_; }
    // Gives the terminal back (cooked mode) before such an _exit.
    void release_terminal();
    // A stop request from outside the guest (a signal, the API); `error`
    // marks a failure whose reason must reach the user.
    void request_stop(int status, std::string reason, bool error = false);
    const StopRequest& stop_request() const { return stop_; }

    // Every vCPU out of KVM_RUN, parked until resume(). Nothing is read or
    // written back: devices on the main thread may still raise interrupts
    // while paused, and the in-kernel state must keep them. Main thread.
    void pause();
    // Lets every vCPU run again where it stopped.
    void resume();
    // The paused VM's state (vCPUs, in-kernel devices, every device) for a
    // snapshot, read now, in the order restore_machine() reads it; main
    // thread, so no device handler runs between the reads. Guest memory is
    // the caller's to save (memory()). Throws Error unless paused.
    void save_snapshot(StateWriter& out);
    const GuestMemory& memory() const { return *memory_; }
    // With track_dirty_pages, paused: the pages written since the last call
    // (or since the memory slots were made), by the guest (KVM's dirty log)
    // or by the VMM (GuestMemory's bitmaps); clears both.
    DirtyPages take_dirty_pages();
    bool paused() const { return paused_; }
    // Lines saying where each paused vCPU stopped (its registers); empty
    // unless paused.
    std::vector<std::string> describe_paused_vcpus() const;
    size_t vcpu_count() const { return vcpus_.size(); }

    // Ctrl+Alt+Del on the keyboard controller (the API's SendCtrlAltDel).
    void send_ctrl_alt_del();
    // Each virtio device's name and counters, in device order.
    std::vector<std::pair<std::string, VirtioDevice::Metrics>> device_metrics() const;
    // PATCH of a running drive's backing file: `path` opened with the
    // drive's read-only mode (Error: unknown id, a file that cannot be used;
    // the drive then goes on with the old one).
    void update_drive_path(const std::string& id, const std::string& path);
    // PATCH of a running drive's (by its drive id) or interface's (by its
    // iface id) rate limiters; throws Error for an unknown id.
    void update_drive_rate_limiter(const std::string& id, const RateLimiterUpdate& update);
    void update_net_rate_limiters(const std::string& id, const RateLimiterUpdate& rx,
                                  const RateLimiterUpdate& tx);
    // The serial port (its counters: tx_bytes, tx_dropped).
    const Serial8250& serial() const { return *serial_; }

  private:
    // Every vCPU's state, read now; throws Error unless paused.
    std::vector<arch::VcpuState> read_vcpu_states() const;
    friend class MachineBuilder;
    Machine(const VmConfig& config, BootTrace& trace, EventLoop& loop);

    void stop_all();
    // Drains serial_ring_ after `period`, and again and again, the period
    // doubling (to kSerialFlushMax) each time the ring was empty.
    void schedule_serial_flush(std::chrono::milliseconds period);
    static constexpr std::chrono::milliseconds kSerialFlushMin{50};
    static constexpr std::chrono::milliseconds kSerialFlushMax{1000};
    // Lets the output writers drain for a moment, then stops them (what is
    // left is dropped): they write to serial_out_ and stdout, so before
    // serial_out_ closes. Idempotent.
    void close_outputs();
    // Re-reads the terminal size on each SIGWINCH for virtio-console.
    void follow_terminal_size(boost::asio::signal_set& resize);

    const VmConfig& config_;
    BootTrace& trace_;
    EventLoop& loop_;
    StopRequest stop_;
    // In the order the builder makes them (vm_builder.cpp).
    std::unique_ptr<EmptyVm> kvm_;
    std::unique_ptr<arch::Platform> platform_;
    std::unique_ptr<GuestMemory> memory_;
    Bus pio_bus_;
    Bus mmio_bus_;
    std::shared_ptr<Serial8250> serial_;
    // The serial port's THR writes, queued by KVM while they only transmit;
    // the page is vCPU 0's, so this goes after the vCPUs (declared before).
    std::unique_ptr<CoalescedPioRing> serial_ring_;
    // Drains serial_ring_ now and then on the loop, for a guest that writes
    // and then runs on without an exit (declared after: cancelled first).
    std::unique_ptr<boost::asio::steady_timer> serial_flush_;
    UniqueFd serial_out_;  // PUT /serial's serial_out_path; stdout otherwise
    // The console output's writer threads, shared with the devices' sinks:
    // stdout's (when serial or virtio-console write there) and the serial
    // port's (stdout's unless serial_out_path).
    std::shared_ptr<AsyncWriter> stdout_writer_;
    std::shared_ptr<AsyncWriter> serial_writer_;
    std::shared_ptr<I8042> i8042_;  // null where the platform has none
    std::unique_ptr<VirtioIoDispatcher> virtio_;
    ConsoleDevice* virtio_console_ = nullptr;  // owned by its transport
    // Transports of the drives and interfaces by id, for live updates
    // (owned by virtio_).
    std::map<std::string, MmioTransport*> drive_transports_;
    std::map<std::string, MmioTransport*> net_transports_;
    // Opened by start() once every thread is filtered; outlives the vCPUs.
    std::latch guest_entry_{1};
    std::vector<std::unique_ptr<Vcpu>> vcpus_;
    // What start() sets up for the run; torn down by the destructor.
    std::unique_ptr<RawTerminal> terminal_;
    std::unique_ptr<ConsoleInput> console_input_;
    std::unique_ptr<boost::asio::signal_set> resize_signals_;
    bool paused_ = false;
    bool vcpus_abandoned_ = false;
};

}  // namespace vmm
