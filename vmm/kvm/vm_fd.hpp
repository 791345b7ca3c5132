// A KVM virtual machine fd: memory slots, in-kernel interrupt controllers and
// PIT, interrupt lines, vCPU creation.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "vmm/base/unique_fd.hpp"
#include "vmm/memory/guest_address.hpp"

namespace vmm {

class VcpuFd;

class VmFd {
  public:
    explicit VmFd(UniqueFd fd) : fd_(std::move(fd)) {}

    // `flags`: KVM_MEM_* (KVM_MEM_LOG_DIRTY_PAGES for dirty-page tracking).
    void set_user_memory_region(uint32_t slot, GuestAddress guest, uint64_t size,
                                uint64_t host_address, uint32_t flags = 0) const;
    void set_tss_address(uint64_t address) const;
    void set_identity_map_address(uint64_t address) const;
    void create_irqchip() const;
    void create_pit2() const;
    // Drives an interrupt line of the in-kernel PIC/IOAPIC; safe from any thread.
    void set_irq_line(uint32_t irq, bool level) const;
    VcpuFd create_vcpu(uint32_t id, size_t mmap_size) const;
    // A guest write of `value` (`length` bytes) to MMIO `address` signals
    // `event_fd` inside KVM, without an exit to the vCPU thread.
    void register_ioeventfd(GuestAddress address, uint32_t length, uint64_t value,
                            int event_fd) const;
    // Signalling `event_fd` raises interrupt line `gsi` inside KVM.
    void register_irqfd(int event_fd, uint32_t gsi) const;
    // KVM_(UN)REGISTER_COALESCED_MMIO for ports: writes to [port, port +
    // size) are queued in the coalesced ring instead of exiting.
    void register_coalesced_pio(uint16_t port, uint32_t size) const;
    void unregister_coalesced_pio(uint16_t port, uint32_t size) const;

    // State of the in-kernel devices, for pause/resume and snapshots.
    // `chip`: KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE or KVM_IRQCHIP_IOAPIC.
    kvm_irqchip get_irqchip(uint32_t chip) const;
    void set_irqchip(const kvm_irqchip& state) const;
    kvm_pit_state2 get_pit2() const;
    void set_pit2(const kvm_pit_state2& state) const;
    kvm_clock_data get_clock() const;
    void set_clock(const kvm_clock_data& clock) const;
    // KVM_GET_DIRTY_LOG: the pages of memory slot `slot` (`pages` of them)
    // the guest wrote since the last call, one bit each; clears the log.
    std::vector<uint64_t> get_dirty_log(uint32_t slot, uint64_t pages) const;

    int fd() const { return fd_.get(); }

  private:
    UniqueFd fd_;
};

}  // namespace vmm
