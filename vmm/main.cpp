// vmm: boots a guest kernel under KVM, from the command line, a config file
// or the Firecracker-compatible API. See README.md for the command line and
// the exit statuses.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "vmm/base/error.hpp"
#include "vmm/cli.hpp"
#include "vmm/core/boot_trace.hpp"
#include "vmm/core/instance.hpp"

namespace {

// Every thread we start gets a 1 MiB stack instead of glibc's 8 MiB: less
// than the 2 MiB a transparent huge page needs, so on hosts with THP set to
// "always" the top of a thread's stack is never one huge page (2 MiB of RSS
// for a few KiB used; measured on a vCPU thread). Our threads keep no large
// buffers on the stack. Best effort: without it, the defaults stay.
void small_thread_stacks() {
    pthread_attr_t attributes;
    if (pthread_attr_init(&attributes) != 0) {
        return;
    }
    if (pthread_attr_setstacksize(&attributes, size_t{1} << 20) == 0) {
        pthread_setattr_default_np(&attributes);
    }
    pthread_attr_destroy(&attributes);
}

}  // namespace

int main(int argc, char** argv) {
    vmm::BootTrace trace;
    small_thread_stacks();
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
