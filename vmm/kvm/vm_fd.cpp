#include "vmm/kvm/vm_fd.hpp"

#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vmm/error.hpp"
#include "vmm/kvm/vcpu_fd.hpp"

namespace vmm {

void VmFd::set_user_memory_region(uint32_t slot, GuestAddress guest, uint64_t size,
                                  uint64_t host_address) const {
    kvm_userspace_memory_region region{};
    region.slot = slot;
    region.guest_phys_addr = guest.value();
    region.memory_size = size;
    region.userspace_addr = host_address;
    if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        throw_errno(fmt::format("KVM_SET_USER_MEMORY_REGION (slot {}, {:#x}+{:#x})", slot,
                                guest.value(), size));
    }
}

void VmFd::set_tss_address(uint64_t address) const {
    if (::ioctl(fd_.get(), KVM_SET_TSS_ADDR, address) < 0) {
        throw_errno("KVM_SET_TSS_ADDR");
    }
}

void VmFd::set_identity_map_address(uint64_t address) const {
    if (::ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &address) < 0) {
        throw_errno("KVM_SET_IDENTITY_MAP_ADDR");
    }
}

void VmFd::create_irqchip() const {
    if (::ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) < 0) {
        throw_errno("KVM_CREATE_IRQCHIP");
    }
}

void VmFd::create_pit2() const {
    kvm_pit_config config{};
    // Without this flag the PIT would be a second, speaker-port-less timer source.
    config.flags = KVM_PIT_SPEAKER_DUMMY;
    if (::ioctl(fd_.get(), KVM_CREATE_PIT2, &config) < 0) {
        throw_errno("KVM_CREATE_PIT2");
    }
}

void VmFd::set_irq_line(uint32_t irq, bool level) const {
    kvm_irq_level line{};
    line.irq = irq;
    line.level = level ? 1 : 0;
    if (::ioctl(fd_.get(), KVM_IRQ_LINE, &line) < 0) {
        throw_errno(fmt::format("KVM_IRQ_LINE (irq {})", irq));
    }
}

VcpuFd VmFd::create_vcpu(uint32_t id, size_t mmap_size) const {
    int fd = ::ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
    if (fd < 0) {
        throw_errno(fmt::format("KVM_CREATE_VCPU {}", id));
    }
    UniqueFd vcpu(fd);
    void* run = ::mmap(nullptr, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (run == MAP_FAILED) {
        throw_errno(fmt::format("mmap of vCPU {} run area", id));
    }
    return VcpuFd(id, std::move(vcpu), Mapping(run, mmap_size));
}

}  // namespace vmm
