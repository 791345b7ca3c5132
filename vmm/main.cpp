// vmm: boots a guest kernel under KVM, from the command line, a config file
// or the Firecracker-compatible API. See README.md for the command line and
// the exit statuses.
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include "vmm/base/error.hpp"
#include "vmm/cli.hpp"
#include "vmm/core/boot_trace.hpp"
#include "vmm/core/instance.hpp"

int main(int argc, char** argv) {
    vmm::BootTrace trace;
    // A closed stdout (the reader of a pipe went away) must not kill the VM
    // with SIGPIPE: console writes then fail with EPIPE and are dropped.
    ::signal(SIGPIPE, SIG_IGN);
    vmm::CliResult cli = vmm::parse_command_line(argc, argv);
    if (!cli.options) {
        return cli.exit_status;
    }
    bool boot_trace = cli.options->config.boot_trace;
    int status = vmm::exit_status::kError;
    try {
        vmm::Instance instance(std::move(*cli.options), trace);
        status = instance.run();
    } catch (const vmm::Error& e) {
        fmt::print(stderr, "vmm: error: {}\n", e.what());
        status = vmm::exit_status::kError;
    } catch (const std::exception& e) {
        fmt::print(stderr, "vmm: internal error: {}\n", e.what());
        status = vmm::exit_status::kError;
    }
    if (boot_trace) {
        trace.mark(vmm::BootTrace::Event::Exit);
        fmt::print(stderr, "{}", trace.report());
    }
    return status;
}
