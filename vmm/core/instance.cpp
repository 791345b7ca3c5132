#include "vmm/core/instance.hpp"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include <boost/asio/post.hpp>

#include "devices/virtio/net/tap.hpp"
#include "vmm/api/json_object.hpp"
#include "vmm/base/error.hpp"
#include "vmm/base/input_file.hpp"
#include "vmm/core/vm_builder.hpp"
#include "vmm/kvm/ioctl.hpp"
#include "vmm/seccomp/builtin_programs.hpp"
#include "vmm/seccomp/violation_report.hpp"

namespace vmm {

namespace {

// A real configuration is a few KiB even with many drives (Firecracker caps
// each API body at 51200 bytes by default; a config file holds several of
// those objects): 1 MiB is far above that, and small enough that a huge file
// costs nothing.
constexpr size_t kMaxConfigFileBytes = 1 << 20;

// The file's text, refused when it is no regular file (/dev/zero, a named
// pipe: vmm/base/input_file.hpp) or larger than kMaxConfigFileBytes.
std::string read_config_file(const std::string& path) {
    InputFile file = open_input_file(path, O_RDONLY, "--config-file");
    auto too_large = [&] {
        return Error(fmt::format("--config-file '{}' is larger than the limit of {} bytes", path,
                                 kMaxConfigFileBytes));
    };
    if (uint64_t(file.info.st_size) > kMaxConfigFileBytes) {
        throw too_large();
    }
    // Read to the end, whatever fstat said: the file may have grown since.
    std::string text;
    text.reserve(size_t(file.info.st_size));
    char chunk[16384];
    for (;;) {
        ssize_t n = ::read(file.fd.get(), chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            throw_errno(fmt::format("cannot read --config-file '{}'", path));
        }
        if (n == 0) {
            break;
        }
        text.append(chunk, size_t(n));
        if (text.size() > kMaxConfigFileBytes) {
            throw too_large();
        }
    }
    return text;
}

api::ServiceConfig load_config_file(const std::string& path, VmConfig& config) {
    std::string text = read_config_file(path);
    try {
        return api::apply_config_document(api::parse_json_body(text), config);
    } catch (const Error& e) {
        throw Error(fmt::format("--config-file {}: {}", path, e.what()));
    }
}

// "virtio-blk rootfs" -> "block_rootfs", as Firecracker names its groups.
std::string metrics_group(const std::string& device_name) {
    auto suffix = [&](std::string_view prefix) -> std::optional<std::string> {
        if (device_name.compare(0, prefix.size(), prefix) == 0) {
            return device_name.substr(prefix.size());
        }
        return std::nullopt;
    };
    if (auto id = suffix("virtio-blk ")) {
        return "block_" + *id;
    }
    if (auto id = suffix("virtio-net ")) {
        return "net_" + *id;
    }
    if (device_name == "virtio-rng") {
        return "entropy";
    }
    if (device_name == "virtio-console") {
        return "console";
    }
    return device_name;
}

}  // namespace

Instance::Instance(LaunchOptions options, BootTrace& trace)
    : options_(std::move(options)), trace_(trace) {
    if (options_.logger) {
        configure_logger(*options_.logger);
        services_.logger = options_.logger;
    }
    config_ = options_.config;
    boot_now_ = options_.boot_now;
    if (options_.config.boot_trace) {
        // The vCPU step's line splits its time into KVM's and ours.
        set_kvm_accounting(true);
    }
    if (options_.config_file) {
        api::ServiceConfig file_services = load_config_file(*options_.config_file, config_);
        if (file_services.logger) {
            configure_logger(*file_services.logger);
            services_.logger = file_services.logger;
        }
        if (file_services.metrics) {
            services_.metrics = file_services.metrics;
        }
        boot_now_ = true;
    }
    if (options_.metrics_path && !services_.metrics) {
        services_.metrics = api::MetricsConfig{*options_.metrics_path, false, {}};
    }
    if (services_.metrics) {
        configure_metrics(*services_.metrics);
    }
    if (options_.seccomp) {
        // Compiled now, so a bad filter file is an error before anything runs.
        seccomp_ = std::make_unique<seccomp::ThreadFilters>(
            options_.seccomp_filter
                ? seccomp::ThreadFilters::from_file(*options_.seccomp_filter)
                : seccomp::ThreadFilters::built_in(seccomp::builtin_programs()));
    }
    router_ = std::make_unique<api::ApiRouter>(*this, options_.instance_id);
    if (boot_now_) {
        validate_config(config_);
    }
}

Instance::~Instance() = default;

int Instance::run() {
    // Process-wide, once, before any vCPU exists (not in the builder's
    // vCPU step: nothing in it is per VM).
    Vcpu::install_kick_handler();
    if (seccomp_) {
        seccomp::install_violation_handler(seccomp::builtin_programs().syscall_names);
    }
    loop_.on_termination_signal([this](int signal_number) {
        std::string reason = fmt::format("received SIG{}", ::sigabbrev_np(signal_number));
        if (machine_) {
            lifecycle_.stopping();
            machine_->request_stop(exit_status::kSignalBase + signal_number, reason);
        } else {
            signal_status_ = exit_status::kSignalBase + signal_number;
            signal_reason_ = reason;
            loop_.stop();
        }
    });
    if (options_.api_socket) {
        api::HttpLimits limits;
        limits.max_body_bytes = options_.max_payload_bytes;
        server_ = std::make_unique<api::HttpServer>(
            loop_.context(), *options_.api_socket,
            [this](const api::HttpRequest& request) { return router_->handle(request); }, limits);
        server_->start();
        trace_.mark(BootTrace::Event::ApiReady);
        note_startup_time();
        if (!boot_now_) {
            // After the socket listens, so readiness does not wait for KVM.
            boost::asio::post(loop_.context(), [this] {
                try {
                    if (!machine_) {
                        empty_vm_ = std::make_unique<EmptyVm>(config_.kvm_device);
                    }
                } catch (const Error& e) {
                    log_debug("KVM not prepared ahead: {}", e.what());  // InstanceStart says why
                }
            });
        }
    }
    if (!server_) {
        note_startup_time();
    }
    if (boot_now_) {
        start();
    }
    follow_pause_signals();
    loop_.run();
    lifecycle_.stopping();

    if (!machine_) {
        if (options_.config.verbose && signal_status_ >= 0) {
            log_info("{} before the VM started", signal_reason_);
        }
        return signal_status_ >= 0 ? signal_status_ : exit_status::kError;
    }
    int status = machine_->finish();
    lifecycle_.stopped();
    const StopRequest& exit = machine_->stop_request();
    if (exit.is_error()) {
        // On stderr in any case: the one line a user of the command line reads.
        fmt::print(stderr, "vmm: error: {}\n", exit.reason());
        if (services_.logger && services_.logger->log_path) {
            log_error("error: {}", exit.reason());
        }
    } else if (config_.verbose) {
        log_info("{} (exit status {})", exit.reason(), status);
    } else {
        log_debug("{} (exit status {})", exit.reason(), status);
    }
    if (metrics_) {
        try {
            metrics_->flush();  // the final counters
        } catch (const Error&) {
        }
    }
    if (machine_->vcpus_abandoned()) {
        // A vCPU thread still in KVM_RUN would touch the VM's memory during
        // teardown: end the process, and that thread, here.
        machine_->release_terminal();
        std::fflush(nullptr);
        ::_exit(status);
    }
    return status;
}

void Instance::note_startup_time() {
    auto now_us = [](clockid_t clock) {
        timespec now{};
        ::clock_gettime(clock, &now);
        return static_cast<uint64_t>(now.tv_sec) * 1000000 +
               static_cast<uint64_t>(now.tv_nsec) / 1000;
    };
    const JailerStart& jailer = options_.jailer_start;
    if (jailer.wall_us) {
        startup_us_ = now_us(CLOCK_MONOTONIC) - std::min(*jailer.wall_us, now_us(CLOCK_MONOTONIC));
    }
    if (jailer.cpu_us) {
        // The jailer's CPU clock went on in this process after its exec.
        startup_cpu_us_ = now_us(CLOCK_PROCESS_CPUTIME_ID) -
                          std::min(*jailer.cpu_us, now_us(CLOCK_PROCESS_CPUTIME_ID)) +
                          jailer.parent_cpu_us.value_or(0);
    }
}

api::InstanceState Instance::state() const {
    switch (lifecycle_.state()) {
        case VmLifecycle::State::NotStarted:
            return api::InstanceState::NotStarted;
        case VmLifecycle::State::Paused:
            return api::InstanceState::Paused;
        default:
            // Firecracker's API knows no stopping state: a VM on its way
            // out is still running until the process ends.
            return api::InstanceState::Running;
    }
}

void Instance::set_config(VmConfig config) {
    if (lifecycle_.state() != VmLifecycle::State::NotStarted) {
        throw Error("The requested operation is not supported after starting the microVM.");
    }
    config_ = std::move(config);
    configured_ = true;
}

void Instance::start() {
    if (lifecycle_.state() != VmLifecycle::State::NotStarted) {
        throw Error("The VM is already started.");
    }
    trace_.mark(BootTrace::Event::InstanceStart);
    log_debug("starting the VM: {} vCPU(s), {} MiB, kernel {}", config_.vcpu_count,
              config_.memory_mib, config_.kernel_path);
    // The user's files and fds before KVM: their errors come first, and an
    // API client that fixes its input keeps the empty VM made ahead.
    MachineInputs inputs(config_);
    // A random MAC is chosen once, here, so that GET /vm/config and a
    // snapshot carry the one the guest sees.
    for (NetConfig& net : config_.nets) {
        if (!net.mac) {
            net.mac = MacAddress::random();
        }
    }
    auto machine = build_machine(config_, std::move(inputs), std::move(empty_vm_), trace_, loop_);
    machine->start(seccomp_.get());
    machine_ = std::move(machine);
    lifecycle_.start("InstanceStart");
}

void Instance::pause() {
    lifecycle_.pause("pause");  // throws unless running or paused
    // Throws when some state could not be read: the vCPUs stay parked.
    machine_->pause();
}

void Instance::resume() {
    lifecycle_.resume("resume");
    machine_->resume();
}

void Instance::follow_pause_signals() {
    if (!pause_signals_) {
        pause_signals_ =
            std::make_unique<boost::asio::signal_set>(loop_.context(), SIGUSR1, SIGUSR2);
    }
    pause_signals_->async_wait([this](const boost::system::error_code& error, int number) {
        if (error) {
            return;
        }
        try {
            if (!machine_) {
                log_info("SIG{}: no VM to pause or resume yet", ::sigabbrev_np(number));
            } else if (number == SIGUSR1 && lifecycle_.state() == VmLifecycle::State::Running) {
                pause();
                log_info("paused: {} vCPU(s) out of KVM_RUN", machine_->vcpu_count());
                if (config_.verbose) {
                    for (const std::string& line : machine_->describe_paused_vcpus()) {
                        log_info("  {}", line);
                    }
                }
            } else if (number == SIGUSR2 && lifecycle_.state() == VmLifecycle::State::Paused) {
                resume();
                log_info("resumed");
            }
        } catch (const Error& e) {
            machine_->request_stop(exit_status::kError, e.what(), true);
            return;
        }
        follow_pause_signals();
    });
}

void Instance::send_ctrl_alt_del() {
    machine_->send_ctrl_alt_del();
}

void Instance::check_tap(const std::string& name) {
    Tap::open(name);
}

namespace {

// What GET /vm/config shows after a PATCH: the buckets given replace theirs.
void apply_update(RateLimiterConfig& config, const RateLimiterUpdate& update) {
    if (update.bandwidth) {
        config.bandwidth = *update.bandwidth;
    }
    if (update.ops) {
        config.ops = *update.ops;
    }
}

}  // namespace

// The machine keeps a reference to config_: only fields of existing entries
// change here, never the vectors.
void Instance::update_drive_path(const std::string& id, const std::string& path) {
    machine_->update_drive_path(id, path);
    for (DriveConfig& drive : config_.drives) {
        if (drive.id == id) {
            drive.path = path;  // a snapshot restores onto the new file
        }
    }
}

void Instance::update_drive_rate_limiter(const std::string& id, const RateLimiterUpdate& update) {
    machine_->update_drive_rate_limiter(id, update);
    for (DriveConfig& drive : config_.drives) {
        if (drive.id == id) {
            apply_update(drive.rate_limiter, update);
        }
    }
}

void Instance::update_net_rate_limiters(const std::string& id, const RateLimiterUpdate& rx,
                                        const RateLimiterUpdate& tx) {
    machine_->update_net_rate_limiters(id, rx, tx);
    for (NetConfig& net : config_.nets) {
        if (net.id == id) {
            apply_update(net.rx_rate_limiter, rx);
            apply_update(net.tx_rate_limiter, tx);
        }
    }
}

void Instance::flush_metrics() {
    if (!metrics_) {
        throw Error("Cannot flush metrics: the metrics system is not configured (PUT /metrics).");
    }
    metrics_->flush();
}

void Instance::configure_logger(const LoggerConfig& config) {
    LoggerConfig kept = config;
    Logger::instance().configure(kept);
    services_.logger = std::move(kept);
}

void Instance::configure_metrics(const api::MetricsConfig& config) {
    // Remembered only once the path opened: a failed PUT /metrics can be retried.
    api::MetricsConfig kept = config;
    metrics_ = std::make_unique<MetricsWriter>(loop_.context(), kept.path,
                                               [this] { return collect_metrics(); });
    services_.metrics = std::move(kept);
    metrics_->start_periodic();
}

nlohmann::json Instance::collect_metrics() const {
    nlohmann::json line = nlohmann::json::object();
    if (services_.metrics && services_.metrics->emit_id) {
        line["id"] = options_.instance_id;
    }
    if (services_.metrics && !services_.metrics->properties.empty()) {
        line["properties"] = services_.metrics->properties;
    }
    nlohmann::json api = router_->metrics();
    // Firecracker's names; only when a jailer said when it started.
    if (startup_us_) {
        api["process_startup_time_us"] = *startup_us_;
    }
    if (startup_cpu_us_) {
        api["process_startup_time_cpu_us"] = *startup_cpu_us_;
    }
    if (server_) {
        const api::HttpServerCounters& http = server_->counters();
        api["connections"] = http.connections;
        api["requests"] = http.requests;
        api["bad_requests"] = http.bad_requests;
        api["timeouts"] = http.timeouts;
        api["refused_connections"] = http.refused;
        api["evicted_connections"] = http.evicted;
        api["open_connections"] = server_->open_connections();
    }
    line["api_server"] = api;
    line["vmm"] = {
        {"state", VmLifecycle::name(lifecycle_.state())},
        {"vcpus", machine_ ? config_.vcpu_count : 0},
        {"uptime_ms", trace_.since_start_ns() / 1000000},
        {"log_lines_written", Logger::instance().lines_written()},
        {"log_lines_dropped", Logger::instance().lines_dropped()},
        {"metrics_lines_dropped", metrics_ ? metrics_->lines_dropped() : 0},
    };
    if (machine_) {
        // Firecracker's uart group: bytes the guest wrote, and those dropped
        // because the output queue was full (a reader that stalls).
        line["uart"] = {{"write_count", machine_->serial().tx_bytes()},
                        {"missed_write_count", machine_->serial().tx_dropped()}};
        for (const auto& [name, counters] : machine_->device_metrics()) {
            nlohmann::json group = nlohmann::json::object();
            for (const auto& [counter, value] : counters) {
                group[counter] = value;
            }
            line[metrics_group(name)] = group;
        }
    }
    return line;
}

}  // namespace vmm
