// The command line (CLI11) into a VmConfig.
#pragma once

#include <optional>

#include "vmm/config.hpp"

namespace vmm {

// Returns the configuration, or an exit status when the process should end
// now (0 after --help/--version, 2 after a usage error, already reported).
struct CliResult {
    std::optional<VmConfig> config;
    int exit_status = 0;
};

CliResult parse_command_line(int argc, char** argv);

}  // namespace vmm
