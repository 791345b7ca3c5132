#include "vmm/jailer/options.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

namespace vmm::jailer {

namespace {

constexpr const char* kVersion = "0.1.0";
constexpr size_t kMaxIdLength = 64;

bool is_whole_number(const std::string& text) {
    return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
}

// A whole number that fits in uint64_t, or nullopt.
std::optional<uint64_t> to_u64(const std::string& text) {
    if (!is_whole_number(text)) {
        return std::nullopt;
    }
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

}  // namespace

void check_instance_id(const std::string& id) {
    if (id.empty() || id.size() > kMaxIdLength) {
        throw UsageError(fmt::format("--id '{}': must be 1 to {} characters", id, kMaxIdLength));
    }
    for (char c : id) {
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-') {
            throw UsageError(fmt::format(
                "--id '{}': only letters, digits and '-' are allowed (found '{}')", id, c));
        }
    }
}

CgroupSetting parse_cgroup_setting(const std::string& text) {
    size_t eq = text.find('=');
    if (eq == std::string::npos) {
        throw UsageError(
            fmt::format("--cgroup '{}': expected NAME=VALUE (e.g. pids.max=100)", text));
    }
    CgroupSetting setting;
    setting.file = text.substr(0, eq);
    setting.value = text.substr(eq + 1);
    if (setting.file.empty() || setting.value.empty()) {
        throw UsageError(fmt::format("--cgroup '{}': NAME and VALUE must not be empty", text));
    }
    // The file lives in the VMM's own cgroup folder: a plain name, never a path.
    if (!std::all_of(setting.file.begin(), setting.file.end(), is_name_char) ||
        setting.file.front() == '.') {
        throw UsageError(fmt::format(
            "--cgroup '{}': '{}' is not a cgroup file name (letters, digits, '_', '-', '.')", text,
            setting.file));
    }
    size_t dot = setting.file.find('.');
    if (dot == std::string::npos || dot + 1 == setting.file.size()) {
        throw UsageError(fmt::format(
            "--cgroup '{}': '{}' names no controller (expected CONTROLLER.FILE, e.g. cpu.max)",
            text, setting.file));
    }
    if (setting.value.find('\n') != std::string::npos) {
        throw UsageError(fmt::format("--cgroup {}: the value must be one line", setting.file));
    }
    // The jailer moves the vmm itself; these would move other processes.
    if (setting.file == "cgroup.procs" || setting.file == "cgroup.threads") {
        throw UsageError(fmt::format("--cgroup {}: the jailer moves the vmm into its cgroup itself",
                                     setting.file));
    }
    setting.controller = setting.file.substr(0, dot);
    return setting;
}

void parse_resource_limit(const std::string& text, ResourceLimits& limits) {
    size_t eq = text.find('=');
    if (eq == std::string::npos) {
        throw UsageError(fmt::format(
            "--resource-limit '{}': expected RESOURCE=VALUE (fsize=BYTES or no-file=COUNT)", text));
    }
    std::string name = text.substr(0, eq);
    std::string value = text.substr(eq + 1);
    std::optional<uint64_t> number = to_u64(value);
    if (!number) {
        throw UsageError(
            fmt::format("--resource-limit {}: '{}' is not a whole number", name, value));
    }
    if (name == "fsize") {
        limits.file_size = *number;
    } else if (name == "no-file") {
        // The VMM needs its standard streams and at least a few files.
        if (*number < 8) {
            throw UsageError(
                fmt::format("--resource-limit no-file={}: at least 8 is needed", *number));
        }
        limits.open_files = *number;
    } else {
        throw UsageError(fmt::format(
            "--resource-limit '{}': unknown resource '{}' (fsize or no-file)", text, name));
    }
}

void check_parent_cgroup(const std::string& path) {
    if (path.empty()) {
        throw UsageError("--parent-cgroup: the path is empty");
    }
    if (path.front() == '/') {
        throw UsageError(fmt::format(
            "--parent-cgroup '{}': must be relative to the cgroup hierarchy's root", path));
    }
    size_t start = 0;
    while (start <= path.size()) {
        size_t slash = path.find('/', start);
        std::string part =
            path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        if (part.empty() || part == "." || part == "..") {
            throw UsageError(fmt::format(
                "--parent-cgroup '{}': empty, '.' and '..' components are not allowed", path));
        }
        if (slash == std::string::npos) {
            break;
        }
        start = slash + 1;
    }
}

int parse_cgroup_version(const std::string& text) {
    if (text == "1") {
        return 1;
    }
    if (text == "2") {
        return 2;
    }
    throw UsageError(fmt::format("--cgroup-version '{}': must be 1 or 2", text));
}

uint32_t parse_id_number(const std::string& text, const char* option) {
    std::optional<uint64_t> number = to_u64(text);
    // (uid_t)-1 means "leave unchanged" to setresuid: never a real id.
    if (!number || *number >= 0xffffffffULL) {
        throw UsageError(
            fmt::format("{} '{}': expected a number from 0 to 4294967294", option, text));
    }
    return static_cast<uint32_t>(*number);
}

ParsedCommandLine parse_jailer_command_line(const std::vector<std::string>& args) {
    // Everything after the first "--" goes to the VMM untouched.
    auto split = std::find(args.begin(), args.end(), "--");
    std::vector<std::string> own(args.begin(), split);
    JailerOptions options;
    if (split != args.end()) {
        options.vmm_args.assign(split + 1, args.end());
    }

    CLI::App app{
        "jailer: starts the vmm isolated in a chroot, namespaces and cgroups, as an "
        "unprivileged user (Firecracker's jailer command line)",
        "jailer"};
    app.set_version_flag("--version", kVersion);
    app.footer("Arguments after -- go to the vmm, after --id ID.");
    app.allow_extras();
    std::string uid, gid, cgroup_version = "1", parent_cgroup, netns;
    std::vector<std::string> cgroups, limits;
    app.add_option("--id", options.id, "Unique VM id: letters, digits and '-', at most 64")
        ->required();
    app.add_option("--exec-file", options.exec_file, "The vmm executable (copied into the jail)")
        ->required();
    app.add_option("--uid", uid, "User id the vmm runs as")->required();
    app.add_option("--gid", gid, "Group id the vmm runs as")->required();
    app.add_option("--chroot-base-dir", options.chroot_base_dir,
                   "Where jails are built: <base>/<exec file name>/<id>/root (default "
                   "/srv/jailer; must exist)");
    app.add_option("--netns", netns, "Network namespace to join (e.g. /var/run/netns/NAME)");
    app.add_flag("--daemonize", options.daemonize,
                 "Detach: new session, standard streams on /dev/null");
    app.add_flag("--new-pid-ns", options.new_pid_ns,
                 "Run the vmm as pid 1 of a new PID namespace (its host pid goes to "
                 "<chroot>/<exec file name>.pid)");
    app.add_option("--cgroup-version", cgroup_version, "cgroup hierarchy: 1 (default) or 2");
    app.add_option("--cgroup", cgroups, "NAME=VALUE written to the vmm's cgroup (repeatable)")
        ->allow_extra_args(false);
    app.add_option("--parent-cgroup", parent_cgroup,
                   "cgroup folder for the vmm's cgroup, relative (default: exec file name)");
    app.add_option("--resource-limit", limits,
                   "fsize=BYTES or no-file=COUNT (repeatable; default no-file=2048)")
        ->allow_extra_args(false);

    std::vector<const char*> argv{"jailer"};
    for (const auto& arg : own) {
        argv.push_back(arg.c_str());
    }
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::Success& e) {
        // --help, --version: printed, exit status 0.
        return {std::nullopt, app.exit(e)};
    } catch (const CLI::ParseError& e) {
        throw UsageError(e.what());
    }
    // Reported here, in the order given (CLI11's own message reverses it).
    if (!app.remaining().empty()) {
        std::string extras;
        for (const auto& arg : app.remaining()) {
            extras += (extras.empty() ? "" : " ") + arg;
        }
        throw UsageError(fmt::format("unexpected arguments: {} (the vmm's go after --)", extras));
    }

    check_instance_id(options.id);
    if (options.exec_file.empty()) {
        throw UsageError("--exec-file: the path is empty");
    }
    if (options.chroot_base_dir.empty()) {
        throw UsageError("--chroot-base-dir: the path is empty");
    }
    options.uid = parse_id_number(uid, "--uid");
    options.gid = parse_id_number(gid, "--gid");
    options.cgroup_version = parse_cgroup_version(cgroup_version);
    for (const auto& text : cgroups) {
        options.cgroups.push_back(parse_cgroup_setting(text));
    }
    if (app.count("--parent-cgroup") > 0) {
        check_parent_cgroup(parent_cgroup);
        options.parent_cgroup = parent_cgroup;
    }
    for (const auto& text : limits) {
        parse_resource_limit(text, options.limits);
    }
    if (app.count("--netns") > 0) {
        if (netns.empty()) {
            throw UsageError("--netns: the path is empty");
        }
        options.netns = netns;
    }
    for (const auto& arg : options.vmm_args) {
        if (arg == "--id" || arg.starts_with("--id=")) {
            throw UsageError(
                "the vmm arguments after -- must not set --id: the jailer passes "
                "its own --id");
        }
    }
    return {std::move(options), 0};
}

}  // namespace vmm::jailer
