// Everything the command line decides: the VM's configuration and how this
// process runs it (config file, API socket, logger, metrics).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "vmm/base/logger.hpp"
#include "vmm/config/config.hpp"

namespace vmm {

// Firecracker's jailer says when it started, so the process start-up time
// reported in metrics covers the jail's set-up too.
struct JailerStart {
    std::optional<uint64_t> wall_us;        // --start-time-us (CLOCK_MONOTONIC)
    std::optional<uint64_t> cpu_us;         // --start-time-cpu-us
    std::optional<uint64_t> parent_cpu_us;  // --parent-cpu-time-us
};

struct LaunchOptions {
    VmConfig config;
    // Boot at once from `config` (--kernel given).
    bool boot_now = false;
    std::optional<std::string> config_file;  // --config-file: boot from it
    std::optional<std::string> api_socket;   // --api-sock: serve the API there
    std::string instance_id = "anonymous-instance";
    size_t max_payload_bytes = 51200;
    std::optional<LoggerConfig> logger;       // --log-path, --level, ...
    std::optional<std::string> metrics_path;  // --metrics-path
    JailerStart jailer_start;
    bool seccomp = true;                        // off with --no-seccomp
    std::optional<std::string> seccomp_filter;  // --seccomp-filter: not the built-in ones
};

}  // namespace vmm
