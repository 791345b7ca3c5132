// The jailer's command line and value rules (vmm/jailer/options.*) and its
// cgroup planning from /proc/mounts (vmm/jailer/cgroups.*): pure logic,
// nothing touches the host.
#include <catch2/catch.hpp>

#include "vmm/jailer/cgroups.hpp"
#include "vmm/jailer/options.hpp"

using namespace vmm::jailer;
using Catch::Contains;

namespace {

std::vector<std::string> base_args() {
    return {"--id", "vm-1", "--exec-file", "/usr/bin/vmm", "--uid", "123", "--gid", "100"};
}

JailerOptions parse(std::vector<std::string> extra) {
    std::vector<std::string> args = base_args();
    args.insert(args.end(), extra.begin(), extra.end());
    ParsedCommandLine parsed = parse_jailer_command_line(args);
    REQUIRE(parsed.options);
    return *parsed.options;
}

void parse_fails(std::vector<std::string> args, const std::string& message) {
    REQUIRE_THROWS_WITH(parse_jailer_command_line(args), Contains(message));
    REQUIRE_THROWS_AS(parse_jailer_command_line(args), UsageError);
}

std::vector<std::string> with(std::vector<std::string> extra) {
    std::vector<std::string> args = base_args();
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

const char* kHybridMounts =
    "tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n"
    "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0\n"
    "cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0\n"
    "cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0\n"
    "cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0\n"
    "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";

}  // namespace

TEST_CASE("jailer: the defaults are Firecracker's", "[jailer]") {
    JailerOptions options = parse({});
    CHECK(options.id == "vm-1");
    CHECK(options.exec_file == "/usr/bin/vmm");
    CHECK(options.uid == 123);
    CHECK(options.gid == 100);
    CHECK(options.chroot_base_dir == "/srv/jailer");
    CHECK(options.cgroup_version == 1);
    CHECK(options.limits.open_files == 2048);
    CHECK_FALSE(options.limits.file_size);
    CHECK_FALSE(options.netns);
    CHECK_FALSE(options.daemonize);
    CHECK_FALSE(options.new_pid_ns);
    CHECK(options.vmm_args.empty());
}

TEST_CASE("jailer: every option, and the vmm's arguments after --", "[jailer]") {
    JailerOptions options = parse({"--chroot-base-dir",
                                   "/tmp/jails",
                                   "--netns",
                                   "/var/run/netns/x",
                                   "--daemonize",
                                   "--new-pid-ns",
                                   "--cgroup-version",
                                   "2",
                                   "--cgroup",
                                   "pids.max=10",
                                   "--cgroup",
                                   "cpu.max=50000 100000",
                                   "--parent-cgroup",
                                   "vms/external",
                                   "--resource-limit",
                                   "fsize=1048576",
                                   "--resource-limit",
                                   "no-file=1024",
                                   "--",
                                   "--api-sock",
                                   "/run/api.sock",
                                   "--cgroup",
                                   "x"});
    CHECK(options.chroot_base_dir == "/tmp/jails");
    CHECK(options.netns == "/var/run/netns/x");
    CHECK(options.daemonize);
    CHECK(options.new_pid_ns);
    CHECK(options.cgroup_version == 2);
    REQUIRE(options.cgroups.size() == 2);
    CHECK(options.cgroups[0].file == "pids.max");
    CHECK(options.cgroups[0].value == "10");
    CHECK(options.cgroups[0].controller == "pids");
    CHECK(options.cgroups[1].value == "50000 100000");
    CHECK(options.parent_cgroup == "vms/external");
    CHECK(options.limits.file_size == 1048576u);
    CHECK(options.limits.open_files == 1024);
    // After "--" nothing is the jailer's, not even its own option names.
    CHECK(options.vmm_args ==
          std::vector<std::string>{"--api-sock", "/run/api.sock", "--cgroup", "x"});
}

TEST_CASE("jailer: missing required options are usage errors", "[jailer]") {
    parse_fails({"--exec-file", "/x", "--uid", "1", "--gid", "1"}, "--id is required");
    parse_fails({"--id", "a", "--uid", "1", "--gid", "1"}, "--exec-file is required");
    parse_fails({"--id", "a", "--exec-file", "/x", "--gid", "1"}, "--uid is required");
    parse_fails({"--id", "a", "--exec-file", "/x", "--uid", "1"}, "--gid is required");
    parse_fails(with({"--bogus", "1"}), "unexpected arguments: --bogus 1");
    parse_fails(with({"stray"}), "stray");
    parse_fails(with({"--cgroup", "pids.max=1", "stray"}), "stray");
}

TEST_CASE("jailer: the id rule (letters, digits, '-', 1 to 64)", "[jailer]") {
    CHECK_NOTHROW(check_instance_id("a"));
    CHECK_NOTHROW(check_instance_id("551e7604-e35c-42b3-b825-416853441234"));
    CHECK_NOTHROW(check_instance_id(std::string(64, 'x')));
    CHECK_THROWS_WITH(check_instance_id(""), Contains("1 to 64"));
    CHECK_THROWS_WITH(check_instance_id(std::string(65, 'x')), Contains("1 to 64"));
    for (const char* bad : {"a/b", "../x", "a.b", "a_b", "a b", "vm\n1", "caf\xc3\xa9"}) {
        CHECK_THROWS_AS(check_instance_id(bad), UsageError);
    }
    parse_fails({"--id", "../../etc", "--exec-file", "/x", "--uid", "1", "--gid", "1"},
                "only letters, digits and '-'");
}

TEST_CASE("jailer: --cgroup NAME=VALUE", "[jailer]") {
    CgroupSetting s = parse_cgroup_setting("cpuset.cpus=0-1");
    CHECK(s.file == "cpuset.cpus");
    CHECK(s.value == "0-1");
    CHECK(s.controller == "cpuset");
    // Only the first '=' splits: values may hold more.
    CHECK(parse_cgroup_setting("io.max=8:0 rbps=1000").value == "8:0 rbps=1000");
    CHECK(parse_cgroup_setting("cgroup.max.descendants=5").controller == "cgroup");
    CHECK_THROWS_WITH(parse_cgroup_setting("pids.max"), Contains("expected NAME=VALUE"));
    CHECK_THROWS_WITH(parse_cgroup_setting("=5"), Contains("must not be empty"));
    CHECK_THROWS_WITH(parse_cgroup_setting("pids.max="), Contains("must not be empty"));
    CHECK_THROWS_WITH(parse_cgroup_setting("../../tasks=1"), Contains("not a cgroup file name"));
    CHECK_THROWS_WITH(parse_cgroup_setting("a/b.c=1"), Contains("not a cgroup file name"));
    CHECK_THROWS_WITH(parse_cgroup_setting("tasks=1"), Contains("names no controller"));
    CHECK_THROWS_WITH(parse_cgroup_setting("pids.=1"), Contains("names no controller"));
    CHECK_THROWS_WITH(parse_cgroup_setting("cgroup.procs=1"), Contains("moves the vmm"));
    CHECK_THROWS_WITH(parse_cgroup_setting("pids.max=1\n2"), Contains("one line"));
    parse_fails(with({"--cgroup", "nonsense"}), "expected NAME=VALUE");
}

TEST_CASE("jailer: --resource-limit", "[jailer]") {
    ResourceLimits limits;
    parse_resource_limit("fsize=250000000", limits);
    parse_resource_limit("no-file=1024", limits);
    CHECK(limits.file_size == 250000000u);
    CHECK(limits.open_files == 1024);
    parse_resource_limit("fsize=18446744073709551615", limits);
    CHECK(limits.file_size == UINT64_MAX);
    CHECK_THROWS_WITH(parse_resource_limit("fsize", limits), Contains("RESOURCE=VALUE"));
    CHECK_THROWS_WITH(parse_resource_limit("fsize=", limits), Contains("not a whole"));
    CHECK_THROWS_WITH(parse_resource_limit("fsize=-1", limits), Contains("not a whole"));
    CHECK_THROWS_WITH(parse_resource_limit("fsize=1k", limits), Contains("not a whole"));
    CHECK_THROWS_WITH(parse_resource_limit("fsize=18446744073709551616", limits),
                      Contains("not a whole"));
    CHECK_THROWS_WITH(parse_resource_limit("no-file=2", limits), Contains("at least 8"));
    CHECK_THROWS_WITH(parse_resource_limit("nproc=5", limits),
                      Contains("unknown resource 'nproc'"));
    parse_fails(with({"--resource-limit", "cpu=1"}), "unknown resource");
}

TEST_CASE("jailer: uid, gid, cgroup version and parent cgroup", "[jailer]") {
    CHECK(parse_id_number("0", "--uid") == 0);
    CHECK(parse_id_number("4294967294", "--uid") == 4294967294u);
    for (const char* bad : {"", "-1", "4294967295", "99999999999", "root", "1.5"}) {
        CHECK_THROWS_AS(parse_id_number(bad, "--uid"), UsageError);
    }
    CHECK(parse_cgroup_version("1") == 1);
    CHECK(parse_cgroup_version("2") == 2);
    CHECK_THROWS_WITH(parse_cgroup_version("3"), Contains("must be 1 or 2"));
    CHECK_THROWS_AS(parse_cgroup_version("v2"), UsageError);
    CHECK_NOTHROW(check_parent_cgroup("a/b-c/d"));
    for (const char* bad : {"", "/abs", "a/../b", "..", "./a", "a//b", "a/"}) {
        CHECK_THROWS_AS(check_parent_cgroup(bad), UsageError);
    }
    parse_fails(with({"--cgroup-version", "3"}), "must be 1 or 2");
    parse_fails(with({"--parent-cgroup", "../escape"}), "'.' and '..'");
    parse_fails({"--id", "a", "--exec-file", "/x", "--uid", "nobody", "--gid", "1"}, "--uid");
}

TEST_CASE("jailer: the vmm's --id is the jailer's to give", "[jailer]") {
    parse_fails(with({"--", "--id", "other"}), "must not set --id");
    parse_fails(with({"--", "--id=other"}), "must not set --id");
    CHECK(parse({"--", "--identity"}).vmm_args == std::vector<std::string>{"--identity"});
}

TEST_CASE("jailer: /proc/mounts parsing", "[jailer]") {
    std::vector<MountEntry> mounts = parse_mounts(
        "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n"
        "/dev/sda1 /mnt/with\\040space ext4 rw 0 0\n"
        "short line\n");
    REQUIRE(mounts.size() == 2);
    CHECK(mounts[0].mount_point == "/sys/fs/cgroup");
    CHECK(mounts[0].fs_type == "cgroup2");
    CHECK(mounts[1].mount_point == "/mnt/with space");
    CHECK(mounts[1].options == "rw");
}

TEST_CASE("jailer: cgroup v1 plan, one folder per hierarchy", "[jailer]") {
    JailerOptions options =
        parse({"--cgroup", "cpu.shares=512", "--cgroup", "cpuacct.x=1", "--cgroup", "pids.max=64"});
    CgroupPlan plan = plan_cgroups(options, "vmm", parse_mounts(kHybridMounts));
    CHECK(plan.version == 1);
    REQUIRE(plan.dirs.size() == 2);
    // cpu and cpuacct are mounted together: one folder, both settings.
    CHECK(plan.dirs[0].path() == "/sys/fs/cgroup/cpu,cpuacct/vmm/vm-1");
    CHECK(plan.dirs[0].settings.size() == 2);
    CHECK(plan.dirs[1].path() == "/sys/fs/cgroup/pids/vmm/vm-1");
    CHECK(plan.dirs[1].settings.at(0).value == "64");

    options.parent_cgroup = "all/external";
    plan = plan_cgroups(options, "vmm", parse_mounts(kHybridMounts));
    CHECK(plan.dirs[1].path() == "/sys/fs/cgroup/pids/all/external/vm-1");

    JailerOptions missing = parse({"--cgroup", "memory.limit_in_bytes=1"});
    CHECK_THROWS_WITH(plan_cgroups(missing, "vmm", parse_mounts(kHybridMounts)),
                      Contains("no cgroup v1 hierarchy has the 'memory' controller"));
    // No --cgroup, no cgroup: as Firecracker's jailer.
    CHECK(plan_cgroups(parse({}), "vmm", parse_mounts(kHybridMounts)).dirs.empty());
}

TEST_CASE("jailer: cgroup v2 plan, controllers to enable", "[jailer]") {
    JailerOptions options =
        parse({"--cgroup-version", "2", "--cgroup", "pids.max=64", "--cgroup", "pids.x=1",
               "--cgroup", "cgroup.max.descendants=0", "--cgroup", "cpu.weight=50"});
    CgroupPlan plan = plan_cgroups(options, "vmm", parse_mounts(kHybridMounts));
    CHECK(plan.version == 2);
    REQUIRE(plan.dirs.size() == 1);
    CHECK(plan.dirs[0].path() == "/sys/fs/cgroup/unified/vmm/vm-1");
    CHECK(plan.dirs[0].settings.size() == 4);
    // cgroup.* are core files: no controller to enable for them.
    CHECK(plan.dirs[0].controllers == std::vector<std::string>{"pids", "cpu"});
    CHECK_THROWS_WITH(plan_cgroups(options, "vmm", parse_mounts("proc /proc proc rw 0 0\n")),
                      Contains("no cgroup2 hierarchy is mounted"));
}
