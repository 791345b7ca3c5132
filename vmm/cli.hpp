// The command line (CLI11) into the VM's configuration and how to run it.
#pragma once

#include <optional>

#include "vmm/core/launch_options.hpp"

namespace vmm {

// Returns the options, or an exit status when the process should end now (0
// after --help/--version, 2 after a usage error, already reported).
struct CliResult {
    std::optional<LaunchOptions> options;
    int exit_status = 0;
};

CliResult parse_command_line(int argc, char** argv);

}  // namespace vmm
