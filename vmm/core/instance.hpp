// One VMM process: the event loop, the API server and router (with
// --api-sock), the logger and metrics, and the Machine once the VM boots,
// from the command line, a --config-file, or the API's InstanceStart.
#pragma once

#include <memory>
#include <string>

#include "vmm/api/api_router.hpp"
#include "vmm/api/http_server.hpp"
#include "vmm/core/boot_trace.hpp"
#include "vmm/core/event_loop.hpp"
#include "vmm/core/launch_options.hpp"
#include "vmm/core/machine.hpp"
#include "vmm/core/metrics_writer.hpp"

namespace vmm {

class Instance final : public api::VmmControl {
  public:
    // Applies the config file, logger and metrics options; throws Error.
    Instance(LaunchOptions options, BootTrace& trace);
    ~Instance() override;

    // Serves the API, boots when the options say so, and runs until the VM
    // stops or a termination signal arrives. Returns the exit status.
    int run();

    // api::VmmControl
    void start(const VmConfig& config) override;
    void pause() override;
    void resume() override;
    void send_ctrl_alt_del() override;
    void check_tap(const std::string& name) override;
    void flush_metrics() override;
    void configure_logger(const LoggerConfig& config) override;
    void configure_metrics(const api::MetricsConfig& config) override;

  private:
    nlohmann::json collect_metrics() const;

    LaunchOptions options_;
    BootTrace& trace_;
    EventLoop loop_;
    api::ServiceConfig services_;
    bool boot_now_ = false;
    // What the machine was built from; lives as long as the machine.
    std::unique_ptr<VmConfig> running_config_;
    std::unique_ptr<Machine> machine_;
    // Made while the API waits for InstanceStart (see PreparedVm).
    std::unique_ptr<PreparedVm> prepared_;
    std::unique_ptr<api::ApiRouter> router_;
    std::unique_ptr<api::HttpServer> server_;
    std::unique_ptr<MetricsWriter> metrics_;
    int signal_status_ = -1;  // a termination signal before the VM booted
    std::string signal_reason_;
};

}  // namespace vmm
