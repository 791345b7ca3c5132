#include "vmm/core/empty_vm.hpp"

namespace vmm {

EmptyVm::EmptyVm(const std::string& kvm_device) : kvm(kvm_device), host(arch::probe_host(kvm)) {
    max_vcpus = kvm.check_extension(KVM_CAP_MAX_VCPUS);
    if (max_vcpus == 0) {
        max_vcpus = kvm.check_extension(KVM_CAP_NR_VCPUS);
    }
    vm = std::make_unique<VmFd>(kvm.create_vm());
    arch::prepare_vm(kvm, *vm);
    vcpu_mmap_size = kvm.vcpu_mmap_size();
    if (kvm.check_extension(KVM_CAP_COALESCED_PIO) > 0) {
        coalesced_pio_page = kvm.check_extension(KVM_CAP_COALESCED_MMIO);
    }
}

}  // namespace vmm
