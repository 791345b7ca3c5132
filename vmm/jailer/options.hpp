// The jailer's command line (Firecracker's jailer options) and the rules its
// values follow. Nothing here touches the system: checks of the host (files,
// namespaces, cgroup mounts) are in preflight.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vmm/base/error.hpp"

namespace vmm::jailer {

// A command line the jailer cannot take (exit status 2), as opposed to a host
// that does not fit it (Error, exit status 1).
class UsageError : public Error {
  public:
    explicit UsageError(const std::string& message) : Error(message) {}
};

// --cgroup NAME=VALUE: the value written to the file NAME of the VMM's
// cgroup; the controller is NAME up to its first '.' ("cpu.max" -> "cpu").
struct CgroupSetting {
    std::string file;
    std::string value;
    std::string controller;
};

// --resource-limit: each set as both soft and hard limit.
struct ResourceLimits {
    std::optional<uint64_t> file_size;  // fsize: RLIMIT_FSIZE, bytes
    uint64_t open_files = 2048;         // no-file: RLIMIT_NOFILE (Firecracker's default)
};

struct JailerOptions {
    std::string id;
    std::string exec_file;
    uint32_t uid = 0;
    uint32_t gid = 0;
    std::string chroot_base_dir = "/srv/jailer";
    std::optional<std::string> netns;
    bool daemonize = false;
    bool new_pid_ns = false;
    int cgroup_version = 1;
    std::vector<CgroupSetting> cgroups;
    std::optional<std::string> parent_cgroup;
    ResourceLimits limits;
    std::vector<std::string> vmm_args;  // everything after "--"
};

// The result of parsing: options to run with, or an exit status when the
// process should end now (0 after --help/--version, already printed).
struct ParsedCommandLine {
    std::optional<JailerOptions> options;
    int exit_status = 0;
};

// args without the program name. Throws UsageError with one line.
ParsedCommandLine parse_jailer_command_line(const std::vector<std::string>& args);

// Firecracker's rule: 1 to 64 characters, ASCII letters, digits and '-'.
void check_instance_id(const std::string& id);
// NAME=VALUE with NAME a cgroup file of a controller ("pids.max=10").
CgroupSetting parse_cgroup_setting(const std::string& text);
// fsize=N or no-file=N, N a whole number; sets it in `limits`.
void parse_resource_limit(const std::string& text, ResourceLimits& limits);
// A relative path inside the cgroup hierarchy, without "." or "..".
void check_parent_cgroup(const std::string& path);
// "1" or "2".
int parse_cgroup_version(const std::string& text);
// A uid or gid: a whole number below 2^32 - 1 (which means "unchanged").
uint32_t parse_id_number(const std::string& text, const char* option);

}  // namespace vmm::jailer
