// jailer: starts the vmm in a chroot, namespaces and cgroups as an
// unprivileged user, with Firecracker's jailer command line. See README.md,
// "Jailer".
#include <fmt/format.h>

#include <string>
#include <vector>

#include "vmm/jailer/jail.hpp"
#include "vmm/jailer/options.hpp"
#include "vmm/jailer/preflight.hpp"
#include "vmm/jailer/privileges.hpp"

int main(int argc, char** argv) {
    using namespace vmm::jailer;
    ParsedCommandLine parsed;
    try {
        parsed = parse_jailer_command_line(std::vector<std::string>(argv + 1, argv + argc));
    } catch (const UsageError& e) {
        fmt::print(stderr, "jailer: error: {} (see --help)\n", e.what());
        return 2;
    }
    if (!parsed.options) {
        return parsed.exit_status;
    }
    try {
        close_inherited_fds();
        JailPlan plan = preflight(*parsed.options);
        return run_jailer(*parsed.options, std::move(plan));
    } catch (const vmm::Error& e) {
        fmt::print(stderr, "jailer: error: {}\n", e.what());
    } catch (const std::exception& e) {
        fmt::print(stderr, "jailer: internal error: {}\n", e.what());
    }
    return 1;
}
