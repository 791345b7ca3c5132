#include "vmm/kvm/vm_fd.hpp"

#include <linux/kvm.h>

#include "vmm/base/error.hpp"
#include "vmm/kvm/ioctl.hpp"
#include "vmm/kvm/vcpu_fd.hpp"

namespace vmm {

void VmFd::set_user_memory_region(uint32_t slot, GuestAddress guest, uint64_t size,
                                  uint64_t host_address, uint32_t flags) const {
    kvm_userspace_memory_region region{};
    region.slot = slot;
    region.flags = flags;
    region.guest_phys_addr = guest.value();
    region.memory_size = size;
    region.userspace_addr = host_address;
    if (kvm_ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        throw_errno(fmt::format("KVM_SET_USER_MEMORY_REGION (slot {}, {:#x}+{:#x})", slot,
                                guest.value(), size));
    }
}

std::vector<uint64_t> VmFd::get_dirty_log(uint32_t slot, uint64_t pages) const {
    // KVM writes whole longs: round the bitmap up to 64 pages.
    std::vector<uint64_t> bits((pages + 63) / 64);
    kvm_dirty_log log{};
    log.slot = slot;
    log.dirty_bitmap = bits.data();
    if (kvm_ioctl(fd_.get(), KVM_GET_DIRTY_LOG, &log) < 0) {
        throw_errno(fmt::format("KVM_GET_DIRTY_LOG (slot {})", slot));
    }
    return bits;
}

namespace {

void coalesced_pio_zone(int vm_fd, unsigned long request, uint16_t port, uint32_t size) {
    kvm_coalesced_mmio_zone zone{};
    zone.addr = port;
    zone.size = size;
    zone.pio = 1;
    if (kvm_ioctl(vm_fd, request, &zone) < 0) {
        throw_errno(fmt::format("{} (port {:#x}+{})",
                                request == KVM_REGISTER_COALESCED_MMIO
                                    ? "KVM_REGISTER_COALESCED_MMIO"
                                    : "KVM_UNREGISTER_COALESCED_MMIO",
                                port, size));
    }
}

}  // namespace

void VmFd::register_coalesced_pio(uint16_t port, uint32_t size) const {
    coalesced_pio_zone(fd_.get(), KVM_REGISTER_COALESCED_MMIO, port, size);
}

void VmFd::unregister_coalesced_pio(uint16_t port, uint32_t size) const {
    coalesced_pio_zone(fd_.get(), KVM_UNREGISTER_COALESCED_MMIO, port, size);
}

void VmFd::set_tss_address(uint64_t address) const {
    if (kvm_ioctl(fd_.get(), KVM_SET_TSS_ADDR, address) < 0) {
        throw_errno("KVM_SET_TSS_ADDR");
    }
}

void VmFd::set_identity_map_address(uint64_t address) const {
    if (kvm_ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &address) < 0) {
        throw_errno("KVM_SET_IDENTITY_MAP_ADDR");
    }
}

void VmFd::create_irqchip() const {
    if (kvm_ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) < 0) {
        throw_errno("KVM_CREATE_IRQCHIP");
    }
}

void VmFd::create_pit2() const {
    kvm_pit_config config{};
    // Without this flag the PIT would be a second, speaker-port-less timer source.
    config.flags = KVM_PIT_SPEAKER_DUMMY;
    if (kvm_ioctl(fd_.get(), KVM_CREATE_PIT2, &config) < 0) {
        throw_errno("KVM_CREATE_PIT2");
    }
}

void VmFd::set_irq_line(uint32_t irq, bool level) const {
    kvm_irq_level line{};
    line.irq = irq;
    line.level = level ? 1 : 0;
    if (kvm_ioctl(fd_.get(), KVM_IRQ_LINE, &line) < 0) {
        throw_errno(fmt::format("KVM_IRQ_LINE (irq {})", irq));
    }
}

void VmFd::register_ioeventfd(GuestAddress address, uint32_t length, uint64_t value,
                              int event_fd) const {
    kvm_ioeventfd ioeventfd{};
    ioeventfd.addr = address.value();
    ioeventfd.len = length;
    ioeventfd.datamatch = value;
    ioeventfd.fd = event_fd;
    ioeventfd.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
    if (kvm_ioctl(fd_.get(), KVM_IOEVENTFD, &ioeventfd) < 0) {
        throw_errno(fmt::format("KVM_IOEVENTFD ({:#x} = {})", address.value(), value));
    }
}

void VmFd::register_irqfd(int event_fd, uint32_t gsi) const {
    kvm_irqfd irqfd{};
    irqfd.fd = static_cast<uint32_t>(event_fd);
    irqfd.gsi = gsi;
    if (kvm_ioctl(fd_.get(), KVM_IRQFD, &irqfd) < 0) {
        throw_errno(fmt::format("KVM_IRQFD (gsi {})", gsi));
    }
}

VcpuFd VmFd::create_vcpu(uint32_t id, size_t mmap_size) const {
    int fd = kvm_ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
    if (fd < 0) {
        throw_errno(fmt::format("KVM_CREATE_VCPU {}", id));
    }
    UniqueFd vcpu(fd);
    void* run = kvm_mmap(fd, mmap_size);
    if (run == MAP_FAILED) {
        throw_errno(fmt::format("mmap of vCPU {} run area", id));
    }
    return VcpuFd(id, std::move(vcpu), Mapping(run, mmap_size));
}

}  // namespace vmm

namespace vmm {

kvm_irqchip VmFd::get_irqchip(uint32_t chip) const {
    kvm_irqchip state{};
    state.chip_id = chip;
    if (kvm_ioctl(fd_.get(), KVM_GET_IRQCHIP, &state) < 0) {
        throw_errno(fmt::format("KVM_GET_IRQCHIP {}", chip));
    }
    return state;
}

void VmFd::set_irqchip(const kvm_irqchip& state) const {
    if (kvm_ioctl(fd_.get(), KVM_SET_IRQCHIP, &state) < 0) {
        throw_errno(fmt::format("KVM_SET_IRQCHIP {}", state.chip_id));
    }
}

kvm_pit_state2 VmFd::get_pit2() const {
    kvm_pit_state2 state{};
    if (kvm_ioctl(fd_.get(), KVM_GET_PIT2, &state) < 0) {
        throw_errno("KVM_GET_PIT2");
    }
    return state;
}

void VmFd::set_pit2(const kvm_pit_state2& state) const {
    if (kvm_ioctl(fd_.get(), KVM_SET_PIT2, &state) < 0) {
        throw_errno("KVM_SET_PIT2");
    }
}

kvm_clock_data VmFd::get_clock() const {
    kvm_clock_data clock{};
    if (kvm_ioctl(fd_.get(), KVM_GET_CLOCK, &clock) < 0) {
        throw_errno("KVM_GET_CLOCK");
    }
    return clock;
}

void VmFd::set_clock(const kvm_clock_data& clock) const {
    // Only the clock value is restored; the other fields are outputs.
    kvm_clock_data value{};
    value.clock = clock.clock;
    if (kvm_ioctl(fd_.get(), KVM_SET_CLOCK, &value) < 0) {
        throw_errno("KVM_SET_CLOCK");
    }
}

}  // namespace vmm
