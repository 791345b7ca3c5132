#include "vmm/config/config.hpp"

#include <unistd.h>

#include "vmm/base/error.hpp"

namespace vmm {

namespace {

uint64_t host_memory_mib() {
    long pages = ::sysconf(_SC_PHYS_PAGES);
    long page_size = ::sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page_size <= 0) {
        return UINT64_MAX;
    }
    return uint64_t(pages) * uint64_t(page_size) >> 20;
}

}  // namespace

void validate_config(const VmConfig& config) {
    if (config.kernel_path.empty()) {
        throw Error("--kernel is required");
    }
    if (config.memory_mib < kMinMemoryMib) {
        throw Error(fmt::format("--mem {} MiB is too small (minimum {} MiB)", config.memory_mib,
                                kMinMemoryMib));
    }
    uint64_t host = host_memory_mib();
    if (config.memory_mib > host) {
        throw Error(fmt::format("--mem {} MiB exceeds the host's {} MiB of memory",
                                config.memory_mib, host));
    }
    if (config.vcpu_count < 1 || config.vcpu_count > kMaxVcpus) {
        throw Error(
            fmt::format("--cpus {} is out of range (1 to {})", config.vcpu_count, kMaxVcpus));
    }
    arch::check_cpu_feature_mask(config.cpuid_mask);
}

}  // namespace vmm
