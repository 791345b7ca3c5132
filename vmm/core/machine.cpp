#include "vmm/core/machine.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include "devices/virtio/block/block_device.hpp"
#include "devices/virtio/net/net_device.hpp"
#include "vmm/base/logger.hpp"

namespace vmm {

namespace {

// How long a stopped VM waits for each vCPU thread to leave KVM_RUN.
constexpr std::chrono::milliseconds kVcpuStopLimit{2000};

}  // namespace

MachineInputs::MachineInputs(const VmConfig& config, bool with_boot_files) {
    if (with_boot_files) {
        boot.emplace(config.kernel_path, config.initrd_path);
    }
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

Machine::Machine(const VmConfig& config, BootTrace& trace, EventLoop& loop)
    : config_(config), trace_(trace), loop_(loop) {}

Machine::~Machine() {
    for (auto& vcpu : vcpus_) {
        vcpu->kick();
    }
    for (auto& vcpu : vcpus_) {
        if (!vcpus_abandoned_) {
            vcpu->join();
        }
    }
    close_outputs();
}

void Machine::close_outputs() {
    if (serial_writer_) {
        serial_writer_->close();
    }
    if (stdout_writer_) {
        stdout_writer_->close();  // a second close() of the same writer does nothing
    }
}

void Machine::release_terminal() {
    console_input_.reset();
    terminal_.reset();
}

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
}

void Machine::resume() {
    if (!paused_) {
        return;
    }
    for (auto& vcpu : vcpus_) {
        vcpu->resume();
    }
    paused_ = false;
}

std::vector<arch::VcpuState> Machine::read_vcpu_states() const {
    if (!paused_) {
        throw Error("vCPU state is read while the VM is paused");
    }
    // Only now that no vCPU runs: none can still send another an INIT or
    // SIPI after it was read.
    std::vector<arch::VcpuState> states;
    for (const auto& vcpu : vcpus_) {
        states.push_back(platform_->save_vcpu(vcpu->fd()));
    }
    return states;
}

std::vector<std::string> Machine::describe_paused_vcpus() const {
    std::vector<std::string> lines;
    if (!paused_) {
        return lines;
    }
    // The registers where each stopped: what a hung guest was doing.
    for (const auto& vcpu : vcpus_) {
        lines.push_back(fmt::format("vCPU {} (mp_state {}):", vcpu->fd().id(),
                                    vcpu->fd().get_mp_state().mp_state));
        std::string registers = arch::describe_vcpu(vcpu->fd());
        size_t start = 0;
        while (start < registers.size()) {
            size_t end = registers.find('\n', start);
            end = end == std::string::npos ? registers.size() : end;
            lines.push_back(registers.substr(start, end - start));
            start = end + 1;
        }
    }
    return lines;
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

void Machine::stop_all() {
    for (auto& vcpu : vcpus_) {
        vcpu->kick();
    }
    loop_.stop();
}

void Machine::schedule_serial_flush(std::chrono::milliseconds period) {
    // Linux's console exits before and after every byte, so this only
    // matters to other guests: 50 ms bounds how late their output shows
    // while they print, and an idle VM's period grows to 1 s (few wake-ups).
    serial_flush_->expires_after(period);
    serial_flush_->async_wait([this, period](const boost::system::error_code& error) {
        if (error) {
            return;  // cancelled: the machine is going away
        }
        bool found = serial_ring_->drain() > 0;
        schedule_serial_flush(found ? kSerialFlushMin : std::min(period * 2, kSerialFlushMax));
    });
}

void Machine::request_stop(int status, std::string reason, bool error) {
    stop_.request(status, std::move(reason), error);
}

void Machine::send_ctrl_alt_del() {
    if (!i8042_) {
        throw Error("SendCtrlAltDel: this platform has no keyboard controller");
    }
    if (!i8042_->send_ctrl_alt_del()) {
        throw Error(
            "SendCtrlAltDel: the guest's keyboard is not taking keys (scanning disabled, or the "
            "previous keys are still unread)");
    }
}

std::vector<std::pair<std::string, VirtioDevice::Metrics>> Machine::device_metrics() const {
    std::vector<std::pair<std::string, VirtioDevice::Metrics>> all;
    for (const auto& transport : virtio_->transports()) {
        all.emplace_back(transport->name(), transport->metrics());
    }
    return all;
}

void Machine::update_drive_path(const std::string& id, const std::string& path) {
    auto found = drive_transports_.find(id);
    if (found == drive_transports_.end()) {
        throw Error(fmt::format("drive {} does not exist", id));
    }
    bool read_only = false;
    found->second->with_device([&](VirtioDevice& device) {
        read_only = static_cast<BlockDevice&>(device).image().read_only();
    });
    // Opened (and locked) before anything changes, and outside the lock the
    // vCPUs take: a refusal leaves the drive as it was.
    DiskImage image(path, read_only);
    found->second->with_device([&](VirtioDevice& device) {
        static_cast<BlockDevice&>(device).replace_image(std::move(image));
    });
}

void Machine::update_drive_rate_limiter(const std::string& id, const RateLimiterUpdate& update) {
    auto found = drive_transports_.find(id);
    if (found == drive_transports_.end()) {
        throw Error(fmt::format("drive {} does not exist", id));
    }
    found->second->with_device([&](VirtioDevice& device) {
        static_cast<BlockDevice&>(device).update_rate_limiter(update);
    });
}

void Machine::update_net_rate_limiters(const std::string& id, const RateLimiterUpdate& rx,
                                       const RateLimiterUpdate& tx) {
    auto found = net_transports_.find(id);
    if (found == net_transports_.end()) {
        throw Error(fmt::format("network interface {} does not exist", id));
    }
    found->second->with_device([&](VirtioDevice& device) {
        static_cast<NetDevice&>(device).update_rate_limiters(rx, tx);
    });
}

void Machine::start(const seccomp::ThreadFilters* filters) {
    // Said once the VM is built, so that bad input still gets a one-line error.
    for (const std::string& note : platform_->host_notes()) {
        log_info("{}", note);
    }
    terminal_ = std::make_unique<RawTerminal>(STDIN_FILENO);
    stop_.set_stop_hook([this] { stop_all(); });
    ConsoleSink& sink = virtio_console_ != nullptr
                            ? static_cast<ConsoleSink&>(*virtio_console_->input())
                            : static_cast<ConsoleSink&>(*serial_);
    console_input_ = std::make_unique<ConsoleInput>(
        loop_.context(), STDIN_FILENO, terminal_->active(), sink, [this] {
            stop_.request(exit_status::kSignalBase + SIGINT, "quit from the console (Ctrl-A x)");
        });
    console_input_->start();
    virtio_->start(loop_.context());
    if (serial_ring_) {
        serial_flush_ = std::make_unique<boost::asio::steady_timer>(loop_.context());
        schedule_serial_flush(kSerialFlushMin);
    }
    resize_signals_ = std::make_unique<boost::asio::signal_set>(loop_.context());
    if (virtio_console_ != nullptr) {
        resize_signals_->add(SIGWINCH);
        follow_terminal_size(*resize_signals_);
    }

    // vCPU threads must not take the process's signals: the loop does.
    sigset_t blocked, previous;
    sigemptyset(&blocked);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1, SIGUSR2}) {
        sigaddset(&blocked, sig);
    }
    if (filters != nullptr) {
        // The output threads, made with the devices, take the vmm filter.
        std::vector<AsyncWriter*> writers{stdout_writer_.get()};
        if (serial_writer_ != stdout_writer_) {
            writers.push_back(serial_writer_.get());
        }
        for (AsyncWriter* writer : writers) {
            if (writer != nullptr) {
                writer->run_on_thread([filters] { filters->install(seccomp::ThreadKind::Vmm); });
            }
        }
    }
    pthread_sigmask(SIG_BLOCK, &blocked, &previous);
    for (auto& vcpu : vcpus_) {
        if (paused_) {
            vcpu->request_pause();  // restored paused: parked before its first KVM_RUN
        }
        vcpu->start(filters, guest_entry_);
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (filters != nullptr) {
        try {
            // After the vCPU threads exist, so they do not inherit it.
            filters->install(seccomp::ThreadKind::Vmm);
        } catch (const Error& e) {
            stop_.request(exit_status::kError, e.what(), true);
        }
    }
    guest_entry_.count_down();
}

int Machine::finish() {
    for (auto& vcpu : vcpus_) {
        if (!vcpu->join_within(kVcpuStopLimit)) {
            log_warning(
                "vCPU {} did not leave KVM_RUN within {} ms of the stop (the host's KVM "
                "ignored every kick); ending without it",
                vcpu->fd().id(), kVcpuStopLimit.count());
            vcpus_abandoned_ = true;
        }
    }
    trace_.mark(BootTrace::Event::Exit);
    // The guest's last words, written out unless the reader stalls.
    close_outputs();
    if (config_.verbose) {
        auto log_metrics = [](const std::string& device, const VirtioDevice::Metrics& metrics) {
            std::string line;
            for (const auto& [name, value] : metrics) {
                line += fmt::format(" {}={}", name, value);
            }
            log_info("{}:{}", device, line);
        };
        log_metrics("serial",
                    {{"tx_bytes", serial_->tx_bytes()}, {"tx_dropped", serial_->tx_dropped()}});
        for (const auto& transport : virtio_->transports()) {
            log_metrics(transport->name(), transport->metrics());
        }
    }
    return stop_.status();
}

}  // namespace vmm
