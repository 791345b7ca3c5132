// What the API asks of the VMM: the core (vmm/core/instance.*) implements it
// and owns everything behind it: the configuration the API edits before
// InstanceStart, the VM's lifecycle state, the VM. The router only turns
// HTTP requests into these calls and their answers back into HTTP.
#pragma once

#include <string>

#include "vmm/api/firecracker_model.hpp"
#include "vmm/base/logger.hpp"
#include "vmm/config/config.hpp"
#include "vmm/config/snapshot_config.hpp"

namespace vmm::api {

// What GET / reports (Firecracker's InstanceInfo.state).
enum class InstanceState { NotStarted, Running, Paused };

class VmmControl {
  public:
    virtual ~VmmControl() = default;

    virtual InstanceState state() const = 0;
    // The VM's configuration: the one being edited before InstanceStart, the
    // one the VM runs with after.
    virtual const VmConfig& config() const = 0;
    // Replaces it whole (the router validates a body before it gets here).
    // Throws Error once the VM has started.
    virtual void set_config(VmConfig config) = 0;
    // Logger and metrics as configured (for GET /vm/config).
    virtual const ServiceConfig& services() const = 0;

    // Builds the VM from config() and starts its vCPUs; throws Error (and
    // then nothing runs).
    virtual void start() = 0;
    // Pause saves every vCPU's state; resume writes it back, then runs.
    virtual void pause() = 0;
    virtual void resume() = 0;
    virtual void send_ctrl_alt_del() = 0;
    // PUT /snapshot/create: state and memory files of the paused VM.
    // Throws Error (not paused, a file that cannot be written).
    virtual void create_snapshot(const SnapshotCreateParams& params) = 0;
    // PUT /snapshot/load: builds the VM from a snapshot instead of booting;
    // only before InstanceStart and before any boot resource is configured.
    // Throws Error, and then nothing is built (the process stays usable).
    virtual void load_snapshot(const SnapshotLoadParams& params) = 0;
    // Opens the host tap `name` to report a missing one or a permission
    // problem when the interface is configured, not at boot; throws Error.
    virtual void check_tap(const std::string& name) = 0;
    // PATCH of a running drive's path_on_host: the guest sees the new file
    // (and its size) from then on. Throws Error for an unknown id or a file
    // that cannot be used, and then the drive keeps its file.
    virtual void update_drive_path(const std::string& id, const std::string& path) = 0;
    // PATCH of a running drive's or interface's rate limiters: the device
    // uses the new buckets at once, config() shows them. Throws Error for
    // an id the VM does not have.
    virtual void update_drive_rate_limiter(const std::string& id,
                                           const RateLimiterUpdate& update) = 0;
    virtual void update_net_rate_limiters(const std::string& id, const RateLimiterUpdate& rx,
                                          const RateLimiterUpdate& tx) = 0;
    // Throws Error when no metrics path is configured.
    virtual void flush_metrics() = 0;
    // Apply and remember the logger / metrics configuration.
    virtual void configure_logger(const LoggerConfig& config) = 0;
    virtual void configure_metrics(const MetricsConfig& config) = 0;
};

}  // namespace vmm::api
