// What the API asks of the running VMM. The router decides what is allowed
// when (pre-boot, post-boot); the implementation (vmm/instance.*) does it.
#pragma once

#include <string>

#include "vmm/api/firecracker_model.hpp"
#include "vmm/base/logger.hpp"
#include "vmm/config/config.hpp"

namespace vmm::api {

class VmmControl {
  public:
    virtual ~VmmControl() = default;

    // Builds the VM from `config` and starts its vCPUs; throws Error (and
    // then nothing runs). `config` stays alive as long as the VMM does.
    virtual void start(const VmConfig& config) = 0;
    virtual void pause() = 0;
    virtual void resume() = 0;
    virtual void send_ctrl_alt_del() = 0;
    // Opens the host tap `name` to report a missing one or a permission
    // problem when the interface is configured, not at boot; throws Error.
    virtual void check_tap(const std::string& name) = 0;
    // Throws Error when no metrics path is configured.
    virtual void flush_metrics() = 0;
    virtual void configure_logger(const LoggerConfig& config) = 0;
    virtual void configure_metrics(const MetricsConfig& config) = 0;
};

}  // namespace vmm::api
