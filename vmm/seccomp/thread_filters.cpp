#include "vmm/seccomp/thread_filters.hpp"

#include <fcntl.h>
#include <seccomp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "vmm/base/error.hpp"
#include "vmm/base/unique_fd.hpp"
#include "vmm/seccomp/violation_report.hpp"

namespace vmm::seccomp {

namespace {

constexpr off_t kMaxFilterFileBytes = 1 << 20;

std::string read_filter_file(const std::string& path) {
    // O_NONBLOCK: a FIFO must not hang the start; it is refused below.
    UniqueFd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!file.valid()) {
        throw_errno(path);
    }
    struct stat info {};
    if (::fstat(file.get(), &info) < 0) {
        throw_errno(path);
    }
    if (!S_ISREG(info.st_mode)) {
        throw Error(fmt::format("{}: not a regular file", path));
    }
    if (info.st_size > kMaxFilterFileBytes) {
        throw Error(fmt::format("{}: larger than {} bytes", path, kMaxFilterFileBytes));
    }
    std::string text(static_cast<size_t>(info.st_size), '\0');
    ssize_t got = ::pread(file.get(), text.data(), text.size(), 0);
    if (got < 0) {
        throw_errno(path);
    }
    text.resize(static_cast<size_t>(got));
    return text;
}

}  // namespace

ThreadFilters ThreadFilters::compile(const FilterSet& filters) {
    for (const char* kind : {"vmm", "vcpu"}) {
        if (!filters.contains(kind)) {
            throw Error(
                fmt::format("no \"{}\" filter (each of \"vmm\" and \"vcpu\" is needed)", kind));
        }
    }
    // Names first, each error where the file has it ("api.filter[3]").
    for (const auto& [kind, filter] : filters) {
        for (size_t i = 0; i < filter.rules.size(); ++i) {
            if (seccomp_syscall_resolve_name(filter.rules[i].syscall.c_str()) == __NR_SCMP_ERROR) {
                throw Error(fmt::format("{}.filter[{}]: unknown syscall \"{}\"", kind, i,
                                        filter.rules[i].syscall));
            }
        }
    }
    ThreadFilter vmm = filters.at("vmm");
    if (auto api = filters.find("api"); api != filters.end()) {
        vmm.rules.insert(vmm.rules.end(), api->second.rules.begin(), api->second.rules.end());
    }
    return ThreadFilters(BpfProgram::compile(vmm), BpfProgram::compile(filters.at("vcpu")));
}

ThreadFilters ThreadFilters::built_in(const BuiltinPrograms& programs) {
    return ThreadFilters(BpfProgram::from_code(programs.vmm), BpfProgram::from_code(programs.vcpu));
}

ThreadFilters ThreadFilters::from_file(const std::string& path) {
    try {
        std::string text = read_filter_file(path);
        try {
            return compile(parse_filter_json(text));
        } catch (const Error& e) {
            throw Error(fmt::format("{}: {}", path, e.what()));
        }
    } catch (const Error& e) {
        throw Error(fmt::format("--seccomp-filter {}", e.what()));
    }
}

void ThreadFilters::install(ThreadKind kind) const {
    // glibc gives a thread its malloc arena at its first allocation, and
    // once eight arenas exist, making one reads /sys/devices/system/cpu/online
    // (openat, which the vcpu filter refuses: the ninth of 32 vCPU threads
    // died of SIGSYS at its first allocation). So allocate before the filter.
    void* volatile warm_up = std::malloc(64);
    std::free(warm_up);
    label_this_thread(kind == ThreadKind::Vmm ? "vmm" : "vcpu");
    (kind == ThreadKind::Vmm ? vmm_ : vcpu_).install_on_this_thread();
}

}  // namespace vmm::seccomp
