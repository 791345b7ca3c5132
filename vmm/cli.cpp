#include "vmm/cli.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <stdexcept>

#include "vmm/base/error.hpp"
#include "vmm/core/stop_request.hpp"
#include "vmm/seccomp/default_filters.hpp"
#include "vmm/snapshot/snapshot_file.hpp"

namespace vmm {

namespace {

constexpr const char* kVersion = "0.1.0";

// CLI11 would wrap "-5" into a huge unsigned value; accept digits only.
const CLI::Validator kWholeNumber(
    [](std::string& value) -> std::string {
        if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos) {
            return fmt::format("'{}' is not a whole number", value);
        }
        return {};
    },
    "NUMBER");

}  // namespace

CliResult parse_command_line(int argc, char** argv) {
    CLI::App app{"vmm: a small, fast KVM virtual machine monitor", "vmm"};
    app.set_version_flag("--version", kVersion);
    VmConfig config;
    std::string initrd, cmdline;
    std::string profile = "auto";
    std::string entry = "auto";

    LaunchOptions launch;
    app.add_option("--kernel", config.kernel_path,
                   "Guest kernel: ELF vmlinux or bzImage (boots at once; without it, give "
                   "--config-file or --api-sock)");
    std::string config_file, api_socket, log_path, level, module, metrics_path;
    app.add_option("--config-file", config_file,
                   "Boot from a Firecracker-style JSON configuration (boot-source, drives, "
                   "machine-config, network-interfaces, logger, metrics, entropy, serial)");
    app.add_option("--api-sock", api_socket,
                   "Serve the Firecracker-compatible REST API on this Unix socket (mode 0600); "
                   "without --kernel or --config-file the VM waits for InstanceStart");
    bool no_api = false;
    app.add_flag("--no-api", no_api, "Run without an API socket (the default without --api-sock)");
    app.add_option("--id", launch.instance_id, "Instance id reported by GET / and in metrics");
    app.add_option("--http-api-max-payload-size", launch.max_payload_bytes,
                   "Largest API request body in bytes (default 51200)")
        ->check(kWholeNumber);
    app.add_option("--log-path", log_path, "Write the log to this file or named pipe");
    app.add_option("--level", level,
                   "Log level: Error, Warning, Info (default), Debug, Trace, Off");
    bool show_level = false, show_log_origin = false;
    app.add_flag("--show-level", show_level, "Put the level in each log line");
    app.add_flag("--show-log-origin", show_log_origin, "Put the source file:line in each log line");
    app.add_option("--module", module, "Log only lines from source paths containing this");
    app.add_option("--metrics-path", metrics_path,
                   "Write metrics as JSON lines to this file or named pipe (every 60 s and on "
                   "FlushMetrics)");
    app.add_option("--initrd", initrd, "Initial ramdisk (initramfs) to load");
    app.add_option("--cmdline", cmdline,
                   fmt::format("Kernel command line (default: \"{}\")", arch::kDefaultCmdline));
    app.add_option("--mem", config.memory_mib, "Guest memory in MiB")
        ->check(kWholeNumber)
        ->default_val(128);
    app.add_option("--cpus", config.vcpu_count, "Number of vCPUs")
        ->check(kWholeNumber)
        ->default_val(1);
    app.add_option("--cpu-profile", profile,
                   "CPUID profile: host, pvm (what a PVM host's emulator can run), or auto "
                   "(pvm on PVM hosts)")
        ->check(CLI::IsMember({"auto", "host", "pvm"}));
    app.add_option("--cpuid-mask", config.cpuid_mask,
                   "Comma-separated CPU features to hide from the guest (e.g. avx2,rdrand)");
    app.add_option("--boot-entry", entry,
                   "Kernel entry: pvh (ELF note), linux64 (64-bit boot protocol), or auto")
        ->check(CLI::IsMember({"auto", "pvh", "linux64"}));
    std::string rootfs;
    std::vector<std::string> drives;
    app.add_option("--rootfs", rootfs,
                   "Root disk image: virtio-blk /dev/vda, adds root=/dev/vda rw unless the "
                   "command line has root=");
    app.add_option("--drive", drives, "More disks: path=PATH[,ro][,id=NAME][,io=sync|uring]")
        ->take_all();
    std::vector<std::string> nets;
    app.add_option("--net", nets,
                   "Network interface (virtio-net) on a tap: tap=NAME[,mac=MAC] opens the tap, "
                   "fd=N[,mac=MAC] takes an open tap fd")
        ->take_all();
    std::string console = "serial";
    app.add_option("--console", console,
                   "Guest console on stdin/stdout: serial (8250, ttyS0) or virtio "
                   "(virtio-console, hvc0; the 8250 keeps early boot messages)")
        ->check(CLI::IsMember({"serial", "virtio"}));
    app.add_flag("--rng,!--no-rng", config.rng,
                 "virtio-rng, entropy from getrandom(2) so the guest's RNG is ready at boot "
                 "(default on)");
    app.add_flag("--acpi", config.acpi,
                 "Also describe the machine with ACPI tables (hardware-reduced: no PIC/PIT; the "
                 "DSDT lists the serial port and virtio devices instead of the command line)");
    app.add_option("--kvm-device", config.kvm_device, "KVM device node")->default_val("/dev/kvm");
    app.add_flag("--boot-trace", config.boot_trace,
                 "Print the time from VMM start to each boot milestone on exit");
    app.add_flag("-v,--verbose", config.verbose, "Report host details and why the VM stopped");
    // What Firecracker's jailer passes to the binary it starts: when it
    // started (wall and CPU clocks) and the CPU time it used itself.
    app.add_option("--start-time-us", launch.jailer_start.wall_us,
                   "Set by a jailer: its start time (CLOCK_MONOTONIC, us)")
        ->check(kWholeNumber);
    app.add_option("--start-time-cpu-us", launch.jailer_start.cpu_us,
                   "Set by a jailer: its start time (process CPU clock, us)")
        ->check(kWholeNumber);
    app.add_option("--parent-cpu-time-us", launch.jailer_start.parent_cpu_us,
                   "Set by a jailer: the CPU time its parent used (us)")
        ->check(kWholeNumber);
    bool no_seccomp = false, print_seccomp = false;
    std::string seccomp_filter;
    app.add_flag("--no-seccomp", no_seccomp,
                 "Run without seccomp filters (by default each thread gets its own allowlist)");
    app.add_option("--seccomp-filter", seccomp_filter,
                   "Use these seccomp filters instead of the built-in ones: Firecracker's "
                   "seccompiler JSON, with \"vmm\" and \"vcpu\" (and \"api\") thread kinds");
    app.add_flag("--print-seccomp-filter", print_seccomp,
                 "Print the built-in seccomp filters in the --seccomp-filter format and exit");
    std::string describe_snapshot;
    app.add_option("--describe-snapshot", describe_snapshot,
                   "Print the format version of a snapshot state file and exit");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return {std::nullopt, app.exit(e)};
    } catch (const CLI::CallForAllHelp& e) {
        return {std::nullopt, app.exit(e)};
    } catch (const CLI::CallForVersion& e) {
        return {std::nullopt, app.exit(e)};
    } catch (const CLI::ParseError& e) {
        // One line, not CLI11's multi-line banner.
        fmt::print(stderr, "vmm: error: {} (see --help)\n", e.what());
        return {std::nullopt, exit_status::kUsage};
    } catch (const std::logic_error&) {
        // CLI11 reads a flag's "=value" with std::stoll, whose out_of_range
        // and invalid_argument are not ParseErrors (fuzz_config found
        // --no-rng=<30 digits> ending the process with an uncaught exception).
        fmt::print(stderr,
                   "vmm: error: a flag's value must be true, false or a number in range (see "
                   "--help)\n");
        return {std::nullopt, exit_status::kUsage};
    }

    auto usage_error = [](const std::string& message) {
        fmt::print(stderr, "vmm: error: {} (see --help)\n", message);
        return CliResult{std::nullopt, exit_status::kUsage};
    };
    if (print_seccomp) {
        fmt::print("{}", seccomp::to_json(seccomp::default_filters()));
        return {std::nullopt, 0};
    }
    if (app.count("--describe-snapshot") > 0) {
        try {
            SnapshotFileInfo info = describe_snapshot_file(describe_snapshot);
            fmt::print("v{} ({}, {} bytes of state)\n", info.version, snapshot_arch_name(info.arch),
                       info.state_bytes);
            return {std::nullopt, 0};
        } catch (const Error& e) {
            fmt::print(stderr, "vmm: error: {}\n", e.what());
            return {std::nullopt, exit_status::kError};
        }
    }
    if (no_seccomp && app.count("--seccomp-filter") > 0) {
        return usage_error("--no-seccomp and --seccomp-filter contradict each other");
    }
    if (app.count("--seccomp-filter") > 0 && seccomp_filter.empty()) {
        return usage_error("--seccomp-filter: the path is empty");
    }
    launch.seccomp = !no_seccomp;
    if (!seccomp_filter.empty()) {
        launch.seccomp_filter = seccomp_filter;
    }
    if (!config.kernel_path.empty() && !config_file.empty()) {
        return usage_error("--kernel and --config-file both say what to boot: give one");
    }
    if (no_api && !api_socket.empty()) {
        return usage_error("--no-api and --api-sock contradict each other");
    }
    if (config.kernel_path.empty() && config_file.empty() && api_socket.empty()) {
        return usage_error("nothing to boot: give --kernel, --config-file or --api-sock");
    }
    if (app.count("--kernel") > 0 && config.kernel_path.empty()) {
        return usage_error("--kernel: the path is empty");
    }
    if (launch.max_payload_bytes == 0) {
        return usage_error("--http-api-max-payload-size must be at least 1 byte");
    }
    launch.boot_now = !config.kernel_path.empty();
    if (!config_file.empty()) {
        launch.config_file = config_file;
    }
    if (!api_socket.empty()) {
        launch.api_socket = api_socket;
    }
    if (!metrics_path.empty()) {
        launch.metrics_path = metrics_path;
    }
    if (!log_path.empty() || !level.empty() || show_level || show_log_origin || !module.empty()) {
        LoggerConfig logger;
        if (!log_path.empty()) {
            logger.log_path = log_path;
        }
        if (!level.empty()) {
            std::optional<LogLevel> parsed = parse_log_level(level);
            if (!parsed) {
                return usage_error(fmt::format(
                    "--level {}: not one of Error, Warning, Info, Debug, Trace, Off", level));
            }
            logger.level = *parsed;
        }
        logger.show_level = show_level;
        logger.show_log_origin = show_log_origin;
        if (!module.empty()) {
            logger.module = module;
        }
        launch.logger = logger;
    }
    // Firecracker's machines have an entropy device only when configured.
    if (!launch.boot_now && app.count("--rng") == 0) {
        config.rng = false;
    }

    try {
        if (!rootfs.empty()) {
            DriveConfig root;
            root.path = rootfs;
            root.id = "rootfs";
            root.is_root = true;
            config.drives.push_back(root);
        }
        for (const auto& text : drives) {
            config.drives.push_back(parse_drive_option(text));
        }
        for (const auto& text : nets) {
            config.nets.push_back(parse_net_option(text));
            // The API's iface_id, which network_overrides and metrics name.
            config.nets.back().id = fmt::format("net{}", config.nets.size() - 1);
        }
    } catch (const Error& e) {
        fmt::print(stderr, "vmm: error: {}\n", e.what());
        return {std::nullopt, exit_status::kUsage};
    }
    if (!initrd.empty()) {
        config.initrd_path = initrd;
    }
    if (app.count("--cmdline") > 0) {
        config.cmdline = cmdline;
    }
    config.console = console == "virtio" ? ConsoleKind::Virtio : ConsoleKind::Serial;
    config.cpu_profile = profile == "host"  ? CpuProfileChoice::Host
                         : profile == "pvm" ? CpuProfileChoice::Pvm
                                            : CpuProfileChoice::Auto;
    config.boot_entry = entry == "pvh"       ? arch::BootEntry::Pvh
                        : entry == "linux64" ? arch::BootEntry::Linux64
                                             : arch::BootEntry::Auto;
    launch.config = config;
    return {launch, 0};
}

}  // namespace vmm
