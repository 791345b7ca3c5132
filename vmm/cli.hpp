// The command line (CLI11) into the VM's configuration and how to run it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "vmm/config.hpp"
#include "vmm/logger.hpp"

namespace vmm {

// Everything the command line decides.
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
};

// Returns the options, or an exit status when the process should end now (0
// after --help/--version, 2 after a usage error, already reported).
struct CliResult {
    std::optional<LaunchOptions> options;
    int exit_status = 0;
};

CliResult parse_command_line(int argc, char** argv);

}  // namespace vmm
