#include "vmm/core/machine.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/x86_64/acpi.hpp"
#include "arch/x86_64/cpuid.hpp"
#include "arch/x86_64/e820.hpp"
#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/mptable.hpp"
#include "arch/x86_64/regs.hpp"
#include "devices/legacy/acpi_power_off.hpp"
#include "devices/legacy/debug_device.hpp"
#include "devices/legacy/i8042.hpp"
#include "devices/virtio/block/block_device.hpp"
#include "devices/virtio/console/console_device.hpp"
#include "devices/virtio/net/net_device.hpp"
#include "devices/virtio/net/tap.hpp"
#include "devices/virtio/rng/rng_device.hpp"
#include "vmm/base/logger.hpp"
#include "vmm/core/console_input.hpp"
#include "vmm/core/kernel_cmdline.hpp"
#include "vmm/core/terminal.hpp"

namespace vmm {

namespace {

// Writes all of `bytes` to a possibly non-blocking fd (our stdout may be
// shared with a parent that made it so).
void write_all(int fd, std::span<const uint8_t> bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n > 0) {
            done += size_t(n);
        } else if (n < 0 && errno == EAGAIN) {
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, -1);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return;  // stdout closed: console output is dropped, the guest goes on
        }
    }
}

// The terminal's size for virtio-console (80x25 when stdout is no terminal).
std::pair<uint16_t, uint16_t> terminal_size(int fd) {
    winsize size{};
    if (::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 && size.ws_row > 0) {
        return {size.ws_col, size.ws_row};
    }
    return {80, 25};
}

}  // namespace

void Machine::pause() {
    if (paused_) {
        return;
    }
    for (auto& vcpu : vcpus_) {
        vcpu->request_pause();
    }
    for (auto& vcpu : vcpus_) {
        vcpu->wait_paused();
    }
    paused_ = true;
    if (exit_.requested()) {
        return;  // stopping anyway: nothing to save
    }
    // Only now that no vCPU runs: none can still send another an INIT or SIPI.
    if (!saveable_msrs_) {
        saveable_msrs_ = saveable_msrs(vcpus_.front()->fd(), listed_msrs_);
    }
    vcpu_states_.clear();
    for (auto& vcpu : vcpus_) {
        vcpu_states_.push_back(save_vcpu_state(vcpu->fd(), *saveable_msrs_));
    }
    device_state_ = save_vm_devices(*vm_);
}

void Machine::resume(bool write_back) {
    if (!paused_) {
        return;
    }
    if (write_back && device_state_ && vcpu_states_.size() == vcpus_.size()) {
        restore_vm_devices(*vm_, *device_state_);
        for (size_t i = 0; i < vcpus_.size(); ++i) {
            restore_vcpu_state(vcpus_[i]->fd(), vcpu_states_[i]);
        }
    }
    for (auto& vcpu : vcpus_) {
        vcpu->resume();
    }
    paused_ = false;
}

void Machine::follow_pause_signals(boost::asio::signal_set& signals) {
    signals.async_wait([this, &signals](const boost::system::error_code& error, int number) {
        if (error) {
            return;
        }
        try {
            if (number == SIGUSR1 && !paused_) {
                pause();
                size_t msrs = vcpu_states_.empty() ? 0 : vcpu_states_.front().msrs.size();
                log_info("paused: {} vCPU(s) out of KVM_RUN, state saved ({} MSRs each)",
                         vcpus_.size(), msrs);
                if (config_.verbose) {
                    // Where each vCPU stopped: for debugging a stuck guest.
                    for (size_t i = 0; i < vcpu_states_.size(); ++i) {
                        const VcpuState& state = vcpu_states_[i];
                        log_info("  vCPU {}: rip {:#x} rsp {:#x} mp_state {}", i, state.regs.rip,
                                 state.regs.rsp, state.mp_state.mp_state);
                    }
                }
            } else if (number == SIGUSR2 && paused_) {
                resume(true);
                log_info("resumed (state written back)");
            }
        } catch (const Error& e) {
            exit_.request(exit_status::kError, e.what(), true);
            return;
        }
        follow_pause_signals(signals);
    });
}

void Machine::follow_terminal_size(boost::asio::signal_set& resize) {
    resize.async_wait([this, &resize](const boost::system::error_code& error, int) {
        if (error) {
            return;
        }
        auto [cols, rows] = terminal_size(STDOUT_FILENO);
        virtio_console_->set_size(cols, rows);
        follow_terminal_size(resize);
    });
}

MachineInputs::MachineInputs(const VmConfig& config)
    : boot(config.kernel_path, config.initrd_path) {
    for (const DriveConfig& drive : config.drives) {
        disks.push_back(std::make_unique<DiskImage>(drive.path, drive.read_only));
    }
    for (const NetConfig& net : config.nets) {
        taps.push_back(net.tap_fd >= 0 ? Tap::adopt(net.tap_fd) : Tap::open(net.tap_name));
    }
    if (config.serial_out_path) {
        // A file or a named pipe with a reader, as Firecracker's serial_out_path.
        int fd = ::open(config.serial_out_path->c_str(),
                        O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC, 0600);
        if (fd < 0) {
            throw_errno(fmt::format("serial_out_path {}", *config.serial_out_path));
        }
        serial_out = UniqueFd(fd);
    }
}

Machine::Machine(const VmConfig& config, MachineInputs inputs, BootTrace& trace, EventLoop& loop,
                 std::unique_ptr<PreparedVm> prepared)
    : config_(config),
      trace_(trace),
      loop_(loop),
      prepared_(prepared ? std::move(prepared) : std::make_unique<PreparedVm>(config.kvm_device)) {
    bool pvm_host = Kvm::host_is_pvm();
    pvm_profile_ = config.cpu_profile == CpuProfileChoice::Pvm ||
                   (config.cpu_profile == CpuProfileChoice::Auto && pvm_host);
    pvm_host_ = pvm_host;
    setup_vm();
    setup_devices(inputs);

    KernelCmdline cmdline(config.cmdline.value_or(
        config.console == ConsoleKind::Virtio ? kDefaultVirtioConsoleCmdline : kDefaultCmdline));
    if (pvm_profile_) {
        cmdline.append(kPvmCmdline);
    }
    if (!config.acpi) {
        // With ACPI the DSDT describes the virtio devices instead.
        cmdline.append(virtio_devices_->kernel_cmdline());
    }
    bool has_root_drive = !config.drives.empty() && config.drives.front().is_root;
    if (has_root_drive && !cmdline.has_key("root")) {
        const DriveConfig& root = config.drives.front();
        std::string device = root.partuuid ? "PARTUUID=" + *root.partuuid : "/dev/vda";
        cmdline.append(fmt::format("root={} {}", device, root.read_only ? "ro" : "rw"));
    }
    cmdline_ = cmdline.str();

    x86::BootRequest request{cmdline_, config.boot_entry};
    x86::BootSetup boot = x86::setup_boot(*memory_, inputs.boot, request);
    // The MP table lets every guest (acpi=off included) find all vCPUs.
    x86::write_mp_table(*memory_, config.vcpu_count);
    if (config.acpi) {
        std::vector<x86::AcpiVirtioMmio> devices;
        for (size_t i = 0; i < virtio_devices_->transports().size(); ++i) {
            devices.push_back({VirtioMmioDevices::kBase + i * MmioTransport::kSize,
                               MmioTransport::kSize, uint32_t(VirtioMmioDevices::kFirstIrq + i)});
        }
        x86::write_acpi_tables(*memory_, config.vcpu_count, devices);
    }
    setup_vcpus(boot);
}

Machine::~Machine() {
    for (auto& vcpu : vcpus_) {
        vcpu->kick();
    }
    for (auto& vcpu : vcpus_) {
        vcpu->join();
    }
}

void Machine::setup_vm() {
    int max_vcpus = prepared_->max_vcpus;
    if (max_vcpus > 0 && config_.vcpu_count > uint32_t(max_vcpus)) {
        throw Error(fmt::format("--cpus {}: the host KVM supports at most {} vCPUs",
                                config_.vcpu_count, max_vcpus));
    }
    vm_ = std::move(prepared_->vm);
    // Memory slots go in before the irqchip: once the in-kernel LAPIC exists,
    // each slot change waits for an SRCU grace period (milliseconds).
    memory_ = std::make_unique<GuestMemory>(
        GuestMemory::create(x86::guest_ram_regions(config_.memory_mib << 20)));
    if (config_.huge_pages == HugePages::Transparent) {
        memory_->advise_huge_pages();
    }
    uint32_t flags = config_.track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0;
    uint32_t slot = 0;
    for (const auto& region : memory_->regions()) {
        vm_->set_user_memory_region(slot++, region.start(), region.size(), region.host_address(),
                                    flags);
    }
    vm_->create_irqchip();
    vm_->create_pit2();
}

void Machine::setup_devices(MachineInputs& inputs) {
    const VmFd& vm = *vm_;
    serial_out_ = std::move(inputs.serial_out);
    int serial_fd = serial_out_.get() >= 0 ? serial_out_.get() : STDOUT_FILENO;
    serial_ = std::make_shared<Serial8250>(
        [&vm] {
            vm.set_irq_line(x86::kCom1Irq, true);
            vm.set_irq_line(x86::kCom1Irq, false);
        },
        [this, serial_fd](std::span<const uint8_t> bytes) {
            trace_.mark(BootTrace::Event::FirstSerialByte);
            write_all(serial_fd, bytes);
        });
    pio_bus_.insert(x86::kCom1Port, 8, serial_);

    auto reset = [this] { exit_.request(exit_status::kGuestStopped, "guest reset (i8042)"); };
    i8042_ = std::make_shared<I8042>(reset, [&vm] {
        vm.set_irq_line(x86::kKeyboardIrq, true);
        vm.set_irq_line(x86::kKeyboardIrq, false);
    });
    pio_bus_.insert(x86::kI8042Port, 5, i8042_);

    DebugDevice::Callbacks debug{
        [this](uint8_t status) {
            exit_.request(status, fmt::format("guest wrote exit status {}", status));
        },
        [this] { trace_.mark(BootTrace::Event::BootTimer); },
    };
    pio_bus_.insert(x86::kDebugPort, 2, std::make_shared<DebugDevice>(0, 1, debug));
    mmio_bus_.insert(x86::kDebugMmioAddress, x86::kDebugMmioSize,
                     std::make_shared<DebugDevice>(4, 0, debug));
    if (config_.acpi) {
        // The FADT's sleep register: where the DSDT's \_S5_ sends a poweroff.
        auto power_off = [this] {
            exit_.request(exit_status::kGuestStopped, "guest powered off (ACPI S5)");
        };
        pio_bus_.insert(x86::kAcpiSleepPort, 1, std::make_shared<AcpiPowerOff>(power_off));
    }

    virtio_devices_ = std::make_unique<VirtioMmioDevices>(*vm_, mmio_bus_, *memory_);
    for (size_t i = 0; i < config_.drives.size(); ++i) {
        const DriveConfig& drive = config_.drives[i];
        std::string id = drive.id.empty() ? fmt::format("vmm-drive{}", i) : drive.id;
        virtio_devices_->add(
            std::make_unique<BlockDevice>(std::move(inputs.disks[i]), id, drive.io),
            fmt::format("virtio-blk {}", id));
    }
    for (size_t i = 0; i < config_.nets.size(); ++i) {
        const NetConfig& net = config_.nets[i];
        std::unique_ptr<Tap> tap = std::move(inputs.taps[i]);
        MacAddress mac = net.mac.value_or(MacAddress::random());
        std::string name = net.id.empty() ? fmt::format("net{}", i) : net.id;
        if (config_.verbose) {
            log_info("{}: tap '{}', MAC {}, MTU {}", name, tap->name(), mac.to_string(),
                     tap->mtu());
        }
        virtio_devices_->add(std::make_unique<NetDevice>(std::move(tap), mac, name, net.mtu),
                             fmt::format("virtio-net {}", name));
    }
    if (config_.console == ConsoleKind::Virtio) {
        auto [cols, rows] = terminal_size(STDOUT_FILENO);
        auto console = std::make_unique<ConsoleDevice>(STDOUT_FILENO, cols, rows);
        virtio_console_ = console.get();
        virtio_devices_->add(std::move(console), "virtio-console");
    }
    if (config_.rng) {
        virtio_devices_->add(std::make_unique<RngDevice>(), "virtio-rng");
    }
}

void Machine::setup_vcpus(const x86::BootSetup& boot) {
    x86::CpuidConfig cpuid_config;
    cpuid_config.profile = pvm_profile_ ? x86::CpuProfile::Pvm : x86::CpuProfile::Host;
    cpuid_config.masked = x86::parse_cpuid_mask(config_.cpuid_mask);
    const std::vector<CpuidEntry>& supported = prepared_->supported_cpuid;
    const std::vector<uint32_t>& msrs = prepared_->msr_index_list;
    size_t mmap_size = prepared_->vcpu_mmap_size;

    Vcpu::install_kick_handler();
    listed_msrs_ = msrs;
    Vcpu::Context context{pio_bus_, mmio_bus_, *memory_, exit_, trace_};
    for (uint32_t id = 0; id < config_.vcpu_count; ++id) {
        VcpuFd fd = vm_->create_vcpu(id, mmap_size);
        if (id == 0) {
            cpuid_config.tsc_khz = fd.tsc_khz();
        }
        std::vector<CpuidEntry> cpuid =
            x86::guest_cpuid(supported, cpuid_config, id, config_.vcpu_count);
        fd.set_cpuid(cpuid);
        x86::setup_xcr0(fd, x86::initial_xcr0(cpuid));
        x86::setup_msrs(fd, msrs);
        // KVM's reset state already has the x87/SSE defaults; the explicit
        // write (about 130 us each here) is kept for the boot CPU only, and
        // the others start from INIT/SIPI with what KVM gives them.
        if (id == 0) {
            x86::setup_fpu(fd);
        }
        x86::setup_lapic(fd);
        // Only the boot CPU starts at the kernel; the others wait in the
        // in-kernel LAPIC for INIT/SIPI.
        if (id == 0) {
            x86::setup_boot_registers(fd, boot);
        }
        auto vcpu = std::make_unique<Vcpu>(std::move(fd), context);
        vcpus_.push_back(std::move(vcpu));
    }
}

void Machine::stop_all() {
    for (auto& vcpu : vcpus_) {
        vcpu->kick();
    }
    loop_.stop();
}

void Machine::request_stop(int status, std::string reason) {
    exit_.request(status, std::move(reason));
}

void Machine::send_ctrl_alt_del() {
    if (!i8042_->send_ctrl_alt_del()) {
        throw Error(
            "SendCtrlAltDel: the guest's keyboard is not taking keys (scanning disabled, or the "
            "previous keys are still unread)");
    }
}

std::vector<std::pair<std::string, VirtioDevice::Metrics>> Machine::device_metrics() const {
    std::vector<std::pair<std::string, VirtioDevice::Metrics>> all;
    for (const auto& transport : virtio_devices_->transports()) {
        all.emplace_back(transport->name(), transport->metrics());
    }
    return all;
}

void Machine::start() {
    // Said once the VM is built, so that bad input still gets a one-line error.
    if (pvm_host_) {
        log_info(
            "note: host KVM is PVM (no VT-x/AMD-V): guest code runs under KVM's instruction "
            "emulator, far slower than native; CPU profile '{}'",
            pvm_profile_ ? "pvm" : "host");
    }
    started_ = true;
    terminal_ = std::make_unique<RawTerminal>(STDIN_FILENO);
    exit_.set_stop_hook([this] { stop_all(); });
    ConsoleSink& sink = virtio_console_ != nullptr
                            ? static_cast<ConsoleSink&>(*virtio_console_->input())
                            : static_cast<ConsoleSink&>(*serial_);
    console_input_ = std::make_unique<ConsoleInput>(
        loop_.context(), STDIN_FILENO, terminal_->active(), sink, [this] {
            exit_.request(exit_status::kSignalBase + SIGINT, "quit from the console (Ctrl-A x)");
        });
    console_input_->start();
    virtio_devices_->start(loop_.context());
    pause_signals_ = std::make_unique<boost::asio::signal_set>(loop_.context(), SIGUSR1, SIGUSR2);
    follow_pause_signals(*pause_signals_);
    resize_signals_ = std::make_unique<boost::asio::signal_set>(loop_.context());
    if (virtio_console_ != nullptr) {
        resize_signals_->add(SIGWINCH);
        follow_terminal_size(*resize_signals_);
    }

    // vCPU threads must not take the termination signals: the loop does.
    sigset_t blocked, previous;
    sigemptyset(&blocked);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1, SIGUSR2}) {
        sigaddset(&blocked, sig);
    }
    pthread_sigmask(SIG_BLOCK, &blocked, &previous);
    for (auto& vcpu : vcpus_) {
        vcpu->start();
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

int Machine::finish() {
    for (auto& vcpu : vcpus_) {
        vcpu->join();
    }
    trace_.mark(BootTrace::Event::Exit);
    if (config_.verbose) {
        for (const auto& transport : virtio_devices_->transports()) {
            std::string line;
            for (const auto& [name, value] : transport->metrics()) {
                line += fmt::format(" {}={}", name, value);
            }
            log_info("{}:{}", transport->name(), line);
        }
    }
    return exit_.status();
}

}  // namespace vmm
