// Seccomp filters: the seccompiler JSON format (what it accepts, each error
// and where it points), and what the built-in filters do once installed
// (in a forked child, which the filter then binds for its life).
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/kvm.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <latch>
#include <thread>
#include <vector>

#include "vmm/base/error.hpp"
#include "vmm/seccomp/builtin_programs.hpp"
#include "vmm/seccomp/default_filters.hpp"
#include "vmm/seccomp/filter_spec.hpp"
#include "vmm/seccomp/thread_filters.hpp"

using Catch::Contains;
using namespace vmm::seccomp;

namespace {

const char* kExample = R"({
  "vmm": {"default_action": "trap", "filter_action": "allow",
          "filter": [{"syscall": "read"},
                     {"syscall": "ioctl", "comment": "KVM_RUN",
                      "args": [{"index": 1, "type": "dword", "op": "eq", "val": 44672}]},
                     {"syscall": "mmap",
                      "args": [{"index": 2, "type": "dword", "op": {"masked_eq": 4}, "val": 0}]}]},
  "vcpu": {"default_action": {"errno": 1}, "filter_action": "allow", "filter": []}
})";

// How the child ended: "exit N" or "signal N".
std::string run_filtered(ThreadKind kind, const std::function<void()>& body) {
    static const ThreadFilters filters = ThreadFilters::built_in(builtin_programs());
    pid_t child = ::fork();
    if (child == 0) {
        // The default action traps: without a handler SIGSYS kills the child.
        filters.install(kind);
        body();
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                               : "exit " + std::to_string(WEXITSTATUS(status));
}

std::string error_of(const std::string& text) {
    try {
        parse_filter_json(text);
    } catch (const vmm::Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("seccompiler JSON: rules, conditions and actions", "[seccomp]") {
    FilterSet filters = parse_filter_json(kExample);
    REQUIRE(filters.size() == 2);
    const ThreadFilter& vmm = filters.at("vmm");
    CHECK(vmm.default_action == Action{Action::Kind::Trap, 0});
    REQUIRE(vmm.rules.size() == 3);
    CHECK(vmm.rules[1].syscall == "ioctl");
    REQUIRE(vmm.rules[1].args.size() == 1);
    CHECK(vmm.rules[1].args[0].index == 1);
    CHECK(vmm.rules[1].args[0].width == ArgCondition::Width::Dword);
    CHECK(vmm.rules[1].args[0].value == KVM_RUN);
    CHECK(vmm.rules[2].args[0].op == ArgCondition::Op::MaskedEq);
    CHECK(vmm.rules[2].args[0].mask == 4);
    CHECK(filters.at("vcpu").default_action == Action{Action::Kind::Errno, 1});
    // What to_json writes reads back the same.
    FilterSet again = parse_filter_json(to_json(filters));
    CHECK(to_json(again) == to_json(filters));
    CHECK(to_json(parse_filter_json(to_json(default_filters()))) == to_json(default_filters()));
}

TEST_CASE("seccompiler JSON: each error names where it is", "[seccomp]") {
    CHECK_THAT(error_of("{"), Contains("not valid JSON"));
    CHECK_THAT(error_of("[]"), Contains("thread kinds"));
    CHECK_THAT(error_of(R"({"io": {}})"), Contains("io: unknown thread kind"));
    CHECK_THAT(error_of(R"({"vmm": {"filter_action": "allow", "filter": []}})"),
               Contains("vmm: \"default_action\" is missing"));
    CHECK_THAT(
        error_of(R"({"vmm": {"default_action": "boom", "filter_action": "allow", "filter": []}})"),
        Contains("vmm.default_action: unknown action \"boom\""));
    CHECK_THAT(error_of(R"({"vmm": {"default_action": {"errno": 5000}, "filter_action": "allow",
                                    "filter": []}})"),
               Contains("vmm.default_action.errno: must be an integer from 0 to 4095"));
    CHECK_THAT(error_of(R"({"vcpu": {"default_action": "trap", "filter_action": "allow",
                                     "filter": [{"syscall": "read"}, {"sycall": "x"}]}})"),
               Contains("vcpu.filter[1]: unknown key \"sycall\""));
    CHECK_THAT(error_of(R"({"vcpu": {"default_action": "trap", "filter_action": "allow",
        "filter": [{"syscall": "ioctl", "args": [{"index": 6, "type": "dword", "op": "eq",
                                                  "val": 1}]}]}})"),
               Contains("vcpu.filter[0].args[0].index: must be an integer from 0 to 5"));
    CHECK_THAT(error_of(R"({"vcpu": {"default_action": "trap", "filter_action": "allow",
        "filter": [{"syscall": "ioctl", "args": [{"index": 1, "type": "dword", "op": "eq",
                                                  "val": 4294967296}]}]}})"),
               Contains("vcpu.filter[0].args[0].val: must be an integer from 0 to 4294967295"));
    CHECK_THAT(error_of(R"({"vcpu": {"default_action": "trap", "filter_action": "allow",
        "filter": [{"syscall": "ioctl", "args": [{"index": 1, "type": "word", "op": "eq",
                                                  "val": 1}]}]}})"),
               Contains("vcpu.filter[0].args[0].type: must be \"dword\" or \"qword\""));
    CHECK_THAT(error_of(R"({"vcpu": {"default_action": "trap", "filter_action": "allow",
        "filter": [{"syscall": "ioctl", "args": [{"index": 1, "type": "qword", "op": "like",
                                                  "val": 1}]}]}})"),
               Contains("vcpu.filter[0].args[0].op: must be"));
}

TEST_CASE("compiling: both thread kinds needed, syscall names checked", "[seccomp]") {
    FilterSet filters = parse_filter_json(kExample);
    FilterSet only_vmm = {{"vmm", filters.at("vmm")}};
    CHECK_THROWS_WITH(ThreadFilters::compile(only_vmm), Contains("no \"vcpu\" filter"));
    filters["api"].rules.push_back(SyscallRule{"read", {}, {}});
    filters["api"].rules.push_back(SyscallRule{"frobnicate", {}, {}});
    CHECK_THROWS_WITH(ThreadFilters::compile(filters),
                      Contains("api.filter[1]: unknown syscall \"frobnicate\""));
}

TEST_CASE("the programs compiled at build time are the built-in filters", "[seccomp]") {
    const BuiltinPrograms& built = builtin_programs();
    FilterSet filters = default_filters();
    auto same = [](std::span<const sock_filter> a, std::span<const sock_filter> b) {
        return a.size() == b.size() &&
               std::equal(a.begin(), a.end(), b.begin(), [](const auto& x, const auto& y) {
                   return x.code == y.code && x.jt == y.jt && x.jf == y.jf && x.k == y.k;
               });
    };
    CHECK(same(built.vmm, BpfProgram::compile(filters.at("vmm")).code()));
    CHECK(same(built.vcpu, BpfProgram::compile(filters.at("vcpu")).code()));
    REQUIRE(built.syscall_names.size() > SYS_ioctl);
    CHECK(std::string(built.syscall_names[SYS_ioctl]) == "ioctl");
}

TEST_CASE("the built-in vcpu filter allows its work and traps the rest", "[seccomp]") {
    CHECK(run_filtered(ThreadKind::Vcpu, [] {
              ::getpid();
              ::ioctl(-1, KVM_RUN, 0);  // EBADF, but allowed
              void* page =
                  ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
              ::munmap(page, 4096);
          }) == "exit 0");
    CHECK(run_filtered(ThreadKind::Vcpu, [] { ::socket(AF_INET, SOCK_STREAM, 0); }) ==
          "signal " + std::to_string(SIGSYS));
    CHECK(run_filtered(ThreadKind::Vcpu, [] { ::ioctl(-1, KVM_CREATE_VCPU, 0); }) ==
          "signal " + std::to_string(SIGSYS));
    CHECK(run_filtered(ThreadKind::Vcpu, [] {
              ::syscall(SYS_openat, AT_FDCWD, "/etc/passwd", 0);
          }) == "signal " + std::to_string(SIGSYS));
}

TEST_CASE("the built-in vmm filter: no executable memory, no new processes", "[seccomp]") {
    CHECK(run_filtered(ThreadKind::Vmm, [] {
              ::syscall(SYS_openat, AT_FDCWD, "/dev/null", 0);
              ::ioctl(-1, KVM_GET_REGS, 0);
          }) == "exit 0");
    CHECK(run_filtered(ThreadKind::Vmm, [] {
              ::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
          }) == "signal " + std::to_string(SIGSYS));
    CHECK(run_filtered(ThreadKind::Vmm, [] { ::syscall(SYS_fork); }) ==
          "signal " + std::to_string(SIGSYS));
    CHECK(run_filtered(ThreadKind::Vmm, [] {
              ::syscall(SYS_execve, "/bin/true", nullptr, nullptr);
          }) == "signal " + std::to_string(SIGSYS));
}

TEST_CASE("vCPU threads may allocate after their filter: arenas are made before it", "[seccomp]") {
    // glibc reads /sys/devices/system/cpu/online when a thread makes the
    // ninth malloc arena; a vCPU thread that made it after its filter died.
    CHECK(run_filtered(ThreadKind::Vmm, [] {}) == "exit 0");  // the harness works
    static const ThreadFilters filters = ThreadFilters::built_in(builtin_programs());
    pid_t child = ::fork();
    if (child == 0) {
        std::vector<std::thread> threads;
        std::latch all_allocated(16);
        for (int i = 0; i < 16; ++i) {
            threads.emplace_back([&all_allocated] {
                filters.install(ThreadKind::Vcpu);
                void* volatile block = std::malloc(1000);
                all_allocated.arrive_and_wait();  // each keeps its own arena
                std::free(block);
            });
        }
        for (std::thread& thread : threads) {
            thread.join();
        }
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
