// What a VM needs from KVM before its configuration is known: /dev/kvm with
// the platform's capabilities checked, what KVM offers this host (CPUID, MSR
// lists), and an empty VM prepared for the platform. The API makes one while
// it waits for InstanceStart, so that starting costs only the work that
// depends on the configuration (memory, devices, vCPUs).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "arch/arch.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/kvm/vm_fd.hpp"

namespace vmm {

struct EmptyVm {
    // Throws Error naming the missing capability or the KVM failure.
    explicit EmptyVm(const std::string& kvm_device);

    Kvm kvm;
    arch::HostKvm host;
    std::unique_ptr<VmFd> vm;
    size_t vcpu_mmap_size = 0;
    // The coalesced ring's page in a vCPU's run area (KVM_CAP_COALESCED_MMIO),
    // when KVM can also coalesce port writes (KVM_CAP_COALESCED_PIO); else 0.
    int coalesced_pio_page = 0;
    int max_vcpus = 0;  // 0: KVM did not say
};

}  // namespace vmm
