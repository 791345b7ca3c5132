// vmm: boots a guest kernel under KVM. See README.md for the command line and
// the exit statuses.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include "vmm/boot_trace.hpp"
#include "vmm/cli.hpp"
#include "vmm/error.hpp"
#include "vmm/machine.hpp"

int main(int argc, char** argv) {
    vmm::BootTrace trace;
    // A closed stdout (the reader of a pipe went away) must not kill the VM
    // with SIGPIPE: console writes then fail with EPIPE and are dropped.
    ::signal(SIGPIPE, SIG_IGN);
    vmm::CliResult cli = vmm::parse_command_line(argc, argv);
    if (!cli.config) {
        return cli.exit_status;
    }
    const vmm::VmConfig& config = *cli.config;
    int status = vmm::exit_status::kError;
    try {
        vmm::validate_config(config);
        vmm::Machine machine(config, trace);
        status = machine.run();
        const vmm::VmExit& exit = machine.exit();
        if (exit.is_error()) {
            fmt::print(stderr, "vmm: error: {}\n", exit.reason());
        } else if (config.verbose) {
            fmt::print(stderr, "vmm: {} (exit status {})\n", exit.reason(), status);
        }
    } catch (const vmm::Error& e) {
        fmt::print(stderr, "vmm: error: {}\n", e.what());
        status = vmm::exit_status::kError;
    } catch (const std::exception& e) {
        fmt::print(stderr, "vmm: internal error: {}\n", e.what());
        status = vmm::exit_status::kError;
    }
    if (config.boot_trace) {
        trace.mark(vmm::BootTrace::Event::Exit);
        fmt::print(stderr, "{}", trace.report());
    }
    return status;
}
