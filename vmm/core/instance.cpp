#include "vmm/core/instance.hpp"

#include <signal.h>
#include <string.h>

#include <fstream>
#include <sstream>

#include <boost/asio/post.hpp>

#include "devices/virtio/net/tap.hpp"
#include "vmm/api/json_object.hpp"
#include "vmm/base/error.hpp"

namespace vmm {

namespace {

api::ServiceConfig load_config_file(const std::string& path, VmConfig& config) {
    std::ifstream file(path);
    if (!file) {
        throw SystemError(fmt::format("--config-file {}", path), errno);
    }
    std::stringstream text;
    text << file.rdbuf();
    try {
        return api::apply_config_document(api::parse_json_body(text.str()), config);
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
    VmConfig config = options_.config;
    boot_now_ = options_.boot_now;
    if (options_.config_file) {
        api::ServiceConfig file_services = load_config_file(*options_.config_file, config);
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
    router_ = std::make_unique<api::ApiRouter>(*this, config, options_.instance_id);
    if (boot_now_) {
        validate_config(config);
    }
}

Instance::~Instance() = default;

int Instance::run() {
    loop_.on_termination_signal([this](int signal_number) {
        std::string reason = fmt::format("received SIG{}", ::sigabbrev_np(signal_number));
        if (machine_) {
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
        if (!boot_now_) {
            // After the socket listens, so readiness does not wait for KVM.
            boost::asio::post(loop_.context(), [this] {
                try {
                    if (!machine_) {
                        prepared_ = std::make_unique<PreparedVm>(options_.config.kvm_device);
                    }
                } catch (const Error& e) {
                    log_debug("KVM not prepared ahead: {}", e.what());  // InstanceStart says why
                }
            });
        }
    }
    if (boot_now_) {
        VmConfig config = router_->config();
        start(config);
        router_->booted(config, services_);
    }
    loop_.run();

    if (!machine_) {
        if (options_.config.verbose && signal_status_ >= 0) {
            log_info("{} before the VM started", signal_reason_);
        }
        return signal_status_ >= 0 ? signal_status_ : exit_status::kError;
    }
    int status = machine_->finish();
    const VmExit& exit = machine_->exit();
    if (exit.is_error()) {
        // On stderr in any case: the one line a user of the command line reads.
        fmt::print(stderr, "vmm: error: {}\n", exit.reason());
        if (services_.logger && services_.logger->log_path) {
            log_error("error: {}", exit.reason());
        }
    } else if (running_config_->verbose) {
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
    return status;
}

void Instance::start(const VmConfig& config) {
    trace_.mark(BootTrace::Event::InstanceStart);
    log_debug("starting the VM: {} vCPU(s), {} MiB, kernel {}", config.vcpu_count,
              config.memory_mib, config.kernel_path);
    // The user's files and fds before KVM: their errors come first, and an
    // API client that fixes its input keeps the VM prepared ahead.
    MachineInputs inputs(config);
    auto owned = std::make_unique<VmConfig>(config);
    auto machine =
        std::make_unique<Machine>(*owned, std::move(inputs), trace_, loop_, std::move(prepared_));
    machine->start();
    running_config_ = std::move(owned);
    machine_ = std::move(machine);
}

void Instance::pause() {
    machine_->pause();
}

void Instance::resume() {
    machine_->resume(false);
}

void Instance::send_ctrl_alt_del() {
    machine_->send_ctrl_alt_del();
}

void Instance::check_tap(const std::string& name) {
    Tap::open(name);
}

void Instance::flush_metrics() {
    if (!metrics_) {
        throw Error("Cannot flush metrics: the metrics system is not configured (PUT /metrics).");
    }
    metrics_->flush();
}

void Instance::configure_logger(const LoggerConfig& config) {
    Logger::instance().configure(config);
}

void Instance::configure_metrics(const api::MetricsConfig& config) {
    metrics_ = std::make_unique<MetricsWriter>(loop_.context(), config.path,
                                               [this] { return collect_metrics(); });
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
    if (server_) {
        const api::HttpServerCounters& http = server_->counters();
        api["connections"] = http.connections;
        api["requests"] = http.requests;
        api["bad_requests"] = http.bad_requests;
        api["timeouts"] = http.timeouts;
        api["refused_connections"] = http.refused;
        api["open_connections"] = server_->open_connections();
    }
    line["api_server"] = api;
    const char* state = router_->state() == api::InstanceState::NotStarted ? "Not started"
                        : router_->state() == api::InstanceState::Paused   ? "Paused"
                                                                           : "Running";
    line["vmm"] = {
        {"state", state},
        {"vcpus", machine_ ? running_config_->vcpu_count : 0},
        {"uptime_ms", trace_.since_start_ns() / 1000000},
        {"log_lines_written", Logger::instance().lines_written()},
        {"log_lines_dropped", Logger::instance().lines_dropped()},
        {"metrics_lines_dropped", metrics_ ? metrics_->lines_dropped() : 0},
    };
    if (machine_) {
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
