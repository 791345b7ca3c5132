// Machine::save_snapshot: the paused VM's state in the order the builder's
// restore_machine() reads it back (vm_builder.cpp).
#include "vmm/core/machine.hpp"

namespace vmm {

void Machine::save_snapshot(StateWriter& out) {
    if (!paused_) {
        throw Error("a snapshot needs the VM paused");
    }
    std::vector<arch::VcpuState> vcpu_states = read_vcpu_states();
    arch::VmState vm_state = platform_->save_vm(*kvm_->vm);
    StateWriter memory;
    memory.u32(uint32_t(memory_->regions().size()));
    for (const GuestRegion& region : memory_->regions()) {
        memory.u64(region.start().value());
        memory.u64(region.size());
    }
    out.section(memory);

    out.u32(uint32_t(vcpu_states.size()));
    for (const arch::VcpuState& state : vcpu_states) {
        StateWriter vcpu;
        arch::write_vcpu_state(vcpu, state);
        out.section(vcpu);
    }
    StateWriter vm;
    arch::write_vm_state(vm, vm_state);
    out.section(vm);

    StateWriter serial;
    serial_->save_state(serial);
    out.section(serial);
    out.boolean(i8042_ != nullptr);
    if (i8042_) {
        StateWriter keyboard;
        i8042_->save_state(keyboard);
        out.section(keyboard);
    }
    const auto& transports = virtio_->transports();
    out.u32(uint32_t(transports.size()));
    for (const auto& transport : transports) {
        out.string(transport->name());
        StateWriter device;
        transport->save_state(device);
        out.section(device);
    }
}

DirtyPages Machine::take_dirty_pages() {
    if (!paused_) {
        throw Error("dirty pages are read while the VM is paused");
    }
    DirtyPages pages;
    for (size_t slot = 0; slot < memory_->regions().size(); ++slot) {
        const DirtyBitmap* ours = memory_->dirty_bitmap(slot);
        if (ours == nullptr) {
            throw Error("dirty page tracking is off for this VM");
        }
        std::vector<uint64_t> bits = kvm_->vm->get_dirty_log(uint32_t(slot), ours->pages());
        std::vector<uint64_t> written = ours->take();
        for (size_t i = 0; i < bits.size() && i < written.size(); ++i) {
            bits[i] |= written[i];
        }
        pages.push_back(std::move(bits));
    }
    return pages;
}

}  // namespace vmm
