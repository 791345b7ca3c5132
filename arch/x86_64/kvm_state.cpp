#include "arch/x86_64/kvm_state.hpp"

#include "vmm/base/error.hpp"

namespace vmm::x86 {

VcpuState save_vcpu_state(const VcpuFd& vcpu, const std::vector<uint32_t>& msrs) {
    VcpuState state;
    state.mp_state = vcpu.get_mp_state();
    state.regs = vcpu.get_regs();
    state.sregs = vcpu.get_sregs();
    state.xsave = vcpu.get_xsave();
    state.xcrs = vcpu.get_xcrs();
    state.debugregs = vcpu.get_debugregs();
    state.lapic = vcpu.get_lapic();
    state.msrs = vcpu.get_msrs(msrs);
    state.tsc_khz = vcpu.tsc_khz();
    // Last: reading the others must not leave an event behind unsaved.
    state.events = vcpu.get_vcpu_events();
    return state;
}

void restore_vcpu_state(const VcpuFd& vcpu, const VcpuState& state) {
    vcpu.set_mp_state(state.mp_state);
    vcpu.set_regs(state.regs);
    vcpu.set_sregs(state.sregs);
    vcpu.set_xsave(state.xsave);
    vcpu.set_xcrs(state.xcrs);
    vcpu.set_debugregs(state.debugregs);
    vcpu.set_lapic(state.lapic);
    // After sregs (EFER, CR4 decide which MSRs are valid) and the LAPIC
    // (the TSC deadline is relative to its timer mode).
    vcpu.set_msrs(state.msrs);
    kvm_vcpu_events events = state.events;
    // Restore the NMI and SIPI parts as saved too.
    events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
                    KVM_VCPUEVENT_VALID_SHADOW;
    vcpu.set_vcpu_events(events);
}

std::vector<uint32_t> saveable_msrs(const VcpuFd& vcpu, const std::vector<uint32_t>& listed) {
    std::vector<uint32_t> readable;
    for (uint32_t index : listed) {
        try {
            vcpu.get_msrs({index});
            readable.push_back(index);
        } catch (const Error&) {
            // Listed but refused: nothing to save for this guest.
        }
    }
    return readable;
}

VmDeviceState save_vm_devices(const VmFd& vm) {
    VmDeviceState state;
    state.pic_master = vm.get_irqchip(KVM_IRQCHIP_PIC_MASTER);
    state.pic_slave = vm.get_irqchip(KVM_IRQCHIP_PIC_SLAVE);
    state.ioapic = vm.get_irqchip(KVM_IRQCHIP_IOAPIC);
    state.pit = vm.get_pit2();
    state.clock = vm.get_clock();
    return state;
}

void restore_vm_devices(const VmFd& vm, const VmDeviceState& state) {
    vm.set_pit2(state.pit);
    vm.set_clock(state.clock);
    vm.set_irqchip(state.pic_master);
    vm.set_irqchip(state.pic_slave);
    vm.set_irqchip(state.ioapic);
}

}  // namespace vmm::x86
