// Everything the command line decides: the VM's configuration and how this
// process runs it (config file, API socket, logger, metrics).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "vmm/base/logger.hpp"
#include "vmm/config/config.hpp"

namespace vmm {

struct LaunchOptions {
    VmConfig config;
    // Boot at once from `config` (--kernel given).
    bool boot_now = false;
    std::optional<std::string> config_file;  // --config-file: boot from it
    std::optional<std::string> api_socket;   // --api-sock: serve the API there
    std::string instance_id = "anonymous-instance";
    size_t max_payload_bytes = 51200;
    std::optional<LoggerConfig> logger;         // --log-path, --level, ...
    std::optional<std::string> metrics_path;    // --metrics-path
    bool seccomp = true;                        // off with --no-seccomp
    std::optional<std::string> seccomp_filter;  // --seccomp-filter: not the built-in ones
};

}  // namespace vmm
