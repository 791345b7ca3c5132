#include "vmm/core/prepared_vm.hpp"

#include "arch/x86_64/layout.hpp"

namespace vmm {

PreparedVm::PreparedVm(const std::string& kvm_device) : kvm(kvm_device) {
    kvm.require_extension(KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP");
    kvm.require_extension(KVM_CAP_PIT2, "KVM_CAP_PIT2");
    kvm.require_extension(KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY");
    kvm.require_extension(KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR");
    kvm.require_extension(KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID");
    kvm.require_extension(KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT");
    max_vcpus = kvm.check_extension(KVM_CAP_MAX_VCPUS);
    if (max_vcpus == 0) {
        max_vcpus = kvm.check_extension(KVM_CAP_NR_VCPUS);
    }
    vm = std::make_unique<VmFd>(kvm.create_vm());
    vm->set_tss_address(x86::kTssAddress);
    if (kvm.check_extension(KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
        vm->set_identity_map_address(x86::kIdentityMapAddress);
    }
    supported_cpuid = kvm.supported_cpuid();
    msr_index_list = kvm.msr_index_list();
    vcpu_mmap_size = kvm.vcpu_mmap_size();
}

}  // namespace vmm
