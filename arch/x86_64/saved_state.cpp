#include "arch/x86_64/saved_state.hpp"

#include <fmt/format.h>

namespace vmm::x86 {

namespace {

// KVM_MAX_CPUID_ENTRIES; the MSR index list holds a few hundred at most.
constexpr uint32_t kMaxCpuidEntries = 256;
constexpr uint32_t kMaxMsrs = 4096;
constexpr uint32_t kMaxMpState = KVM_MP_STATE_AP_RESET_HOLD;

}  // namespace

void write_vcpu_state(StateWriter& out, const VcpuState& state) {
    out.pod(state.mp_state);
    out.pod(state.regs);
    out.pod(state.sregs);
    out.pod(state.xsave);
    out.pod(state.xcrs);
    out.pod(state.debugregs);
    out.pod(state.lapic);
    out.pod(state.events);
    out.u32(uint32_t(state.msrs.size()));
    for (const auto& [index, value] : state.msrs) {
        out.u32(index);
        out.u64(value);
    }
    out.u32(uint32_t(state.cpuid.size()));
    for (const CpuidEntry& e : state.cpuid) {
        for (uint32_t field : {e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx}) {
            out.u32(field);
        }
    }
    out.u32(state.tsc_khz);
}

VcpuState read_vcpu_state(StateReader& in) {
    VcpuState state;
    state.mp_state = in.pod<kvm_mp_state>();
    if (state.mp_state.mp_state > kMaxMpState) {
        in.fail(fmt::format("run state {} is not one KVM defines", state.mp_state.mp_state));
    }
    state.regs = in.pod<kvm_regs>();
    state.sregs = in.pod<kvm_sregs>();
    state.xsave = in.pod<kvm_abi::Xsave>();
    state.xcrs = in.pod<kvm_xcrs>();
    if (state.xcrs.nr_xcrs > KVM_MAX_XCRS) {
        in.fail(fmt::format("{} XCRs, at most {} exist", state.xcrs.nr_xcrs, KVM_MAX_XCRS));
    }
    state.debugregs = in.pod<kvm_debugregs>();
    state.lapic = in.pod<kvm_lapic_state>();
    state.events = in.pod<kvm_vcpu_events>();
    uint32_t msrs = in.u32();
    if (msrs > kMaxMsrs) {
        in.fail(fmt::format("{} MSRs, at most {} are saved", msrs, kMaxMsrs));
    }
    for (uint32_t i = 0; i < msrs; ++i) {
        uint32_t index = in.u32();
        state.msrs.emplace_back(index, in.u64());
    }
    uint32_t entries = in.u32();
    if (entries == 0 || entries > kMaxCpuidEntries) {
        in.fail(fmt::format("{} CPUID entries, 1 to {} are possible", entries, kMaxCpuidEntries));
    }
    for (uint32_t i = 0; i < entries; ++i) {
        CpuidEntry e;
        for (uint32_t* field : {&e.function, &e.index, &e.flags, &e.eax, &e.ebx, &e.ecx, &e.edx}) {
            *field = in.u32();
        }
        state.cpuid.push_back(e);
    }
    state.tsc_khz = in.u32();
    return state;
}

void write_vm_state(StateWriter& out, const VmDeviceState& state) {
    out.pod(state.pic_master);
    out.pod(state.pic_slave);
    out.pod(state.ioapic);
    out.pod(state.pit);
    out.pod(state.clock);
}

VmDeviceState read_vm_state(StateReader& in) {
    VmDeviceState state;
    state.pic_master = in.pod<kvm_irqchip>();
    state.pic_slave = in.pod<kvm_irqchip>();
    state.ioapic = in.pod<kvm_irqchip>();
    // Which chip each is, not a chip id from the file: KVM_SET_IRQCHIP
    // writes the one the struct names.
    auto expect_chip = [&](const kvm_irqchip& chip, uint32_t id, const char* name) {
        if (chip.chip_id != id) {
            in.fail(fmt::format("the {} state names chip {}", name, chip.chip_id));
        }
    };
    expect_chip(state.pic_master, KVM_IRQCHIP_PIC_MASTER, "PIC master");
    expect_chip(state.pic_slave, KVM_IRQCHIP_PIC_SLAVE, "PIC slave");
    expect_chip(state.ioapic, KVM_IRQCHIP_IOAPIC, "IOAPIC");
    state.pit = in.pod<kvm_pit_state2>();
    state.clock = in.pod<kvm_clock_data>();
    return state;
}

}  // namespace vmm::x86
