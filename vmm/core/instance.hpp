// One VMM process: the event loop, the API server and router (with
// --api-sock), the logger and metrics, the VM's configuration and its
// lifecycle (vmm/core/vm_lifecycle.hpp), and the Machine once the VM boots,
// from the command line, a --config-file, or the API's InstanceStart. Every
// request to start, pause, resume or stop the VM comes here, whichever path
// it takes (command line, signal, API).
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
#include "vmm/core/vm_lifecycle.hpp"

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
    api::InstanceState state() const override;
    const VmConfig& config() const override { return config_; }
    void set_config(VmConfig config) override;
    const api::ServiceConfig& services() const override { return services_; }
    void start() override;
    void pause() override;
    void resume() override;
    void send_ctrl_alt_del() override;
    void create_snapshot(const SnapshotCreateParams& params) override;
    void load_snapshot(const SnapshotLoadParams& params) override;
    void check_tap(const std::string& name) override;
    void flush_metrics() override;
    void update_drive_path(const std::string& id, const std::string& path) override;
    void update_drive_rate_limiter(const std::string& id, const RateLimiterUpdate& update) override;
    void update_net_rate_limiters(const std::string& id, const RateLimiterUpdate& rx,
                                  const RateLimiterUpdate& tx) override;
    void configure_logger(const LoggerConfig& config) override;
    void configure_metrics(const api::MetricsConfig& config) override;

  private:
    nlohmann::json collect_metrics() const;
    // SIGUSR1 pauses, SIGUSR2 resumes: the same path as the API's PATCH /vm.
    void follow_pause_signals();
    // Once ready: the time since a jailer started us (JailerStart).
    void note_startup_time();

    LaunchOptions options_;
    BootTrace& trace_;
    EventLoop loop_;
    api::ServiceConfig services_;
    bool boot_now_ = false;
    // Edited until the VM starts; the machine is built from it and keeps a
    // reference, so it never changes after.
    VmConfig config_;
    // set_config() was called: a snapshot load is refused after that, as
    // Firecracker refuses it after any boot resource was configured.
    bool configured_ = false;
    // The last snapshot was written whole, so a Diff can follow it (a failed
    // one consumed the dirty page logs).
    bool diff_base_ = true;
    VmLifecycle lifecycle_;
    std::optional<uint64_t> startup_us_, startup_cpu_us_;
    std::unique_ptr<seccomp::ThreadFilters> seccomp_;  // null with --no-seccomp
    std::unique_ptr<Machine> machine_;
    // Made while the API waits for InstanceStart (see EmptyVm).
    std::unique_ptr<EmptyVm> empty_vm_;
    std::unique_ptr<boost::asio::signal_set> pause_signals_;
    std::unique_ptr<api::ApiRouter> router_;
    std::unique_ptr<api::HttpServer> server_;
    std::unique_ptr<MetricsWriter> metrics_;
    int signal_status_ = -1;  // a termination signal before the VM booted
    std::string signal_reason_;
};

}  // namespace vmm
