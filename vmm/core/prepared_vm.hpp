// What a VM needs from KVM before its configuration is known: /dev/kvm with
// the required capabilities checked, an empty VM with its TSS and
// identity-map pages, and the host's CPUID and MSR lists. The API builds one
// while it waits for InstanceStart, so that starting costs only the work
// that depends on the configuration (memory, devices, vCPUs).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "vmm/kvm/kvm.hpp"
#include "vmm/kvm/vm_fd.hpp"

namespace vmm {

struct PreparedVm {
    // Throws Error naming the missing capability or the KVM failure.
    explicit PreparedVm(const std::string& kvm_device);

    Kvm kvm;
    std::unique_ptr<VmFd> vm;
    std::vector<CpuidEntry> supported_cpuid;
    std::vector<uint32_t> msr_index_list;
    size_t vcpu_mmap_size = 0;
    int max_vcpus = 0;  // 0: KVM did not say
};

}  // namespace vmm
