#include "arch/x86_64/regs.hpp"

#include <algorithm>
#include <cstring>

#include "arch/x86_64/gdt.hpp"
#include "arch/x86_64/layout.hpp"

namespace vmm::x86 {

namespace {

constexpr uint64_t kCr0Pe = 1ull << 0;
constexpr uint64_t kCr0Et = 1ull << 4;
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLme = 1ull << 8;
constexpr uint64_t kEferLma = 1ull << 10;
constexpr uint64_t kRflagsReserved = 1ull << 1;

constexpr uint32_t kApicLvtLint0 = 0x350;
constexpr uint32_t kApicLvtLint1 = 0x360;
constexpr uint32_t kApicModeExtInt = 0x7;
constexpr uint32_t kApicModeNmi = 0x4;

uint32_t apic_register(const kvm_lapic_state& lapic, uint32_t offset) {
    uint32_t value;
    std::memcpy(&value, lapic.regs + offset, sizeof(value));
    return value;
}

void set_apic_register(kvm_lapic_state& lapic, uint32_t offset, uint32_t value) {
    std::memcpy(lapic.regs + offset, &value, sizeof(value));
}

uint32_t with_delivery_mode(uint32_t lvt, uint32_t mode) {
    return (lvt & ~0x700u) | (mode << 8);
}

}  // namespace

void setup_boot_registers(const VcpuFd& vcpu, const BootSetup& setup) {
    kvm_sregs sregs = vcpu.get_sregs();
    auto gdt = boot_gdt();
    sregs.gdt.base = kGdtAddress;
    sregs.gdt.limit = static_cast<uint16_t>(sizeof(gdt) - 1);
    sregs.idt.base = kIdtAddress;
    sregs.idt.limit = 0;

    bool pvh = setup.entry == BootEntry::Pvh;
    uint16_t code = pvh ? kCode32Selector : kCode64Selector;
    kvm_segment data = segment_from_gdt_entry(gdt[kDataSelector / 8], kDataSelector);
    sregs.cs = segment_from_gdt_entry(gdt[code / 8], code);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.tr = segment_from_gdt_entry(gdt[kTssSelector / 8], kTssSelector);

    if (pvh) {
        // PVH: 32-bit protected mode, paging off (xen/docs/misc/pvh.pandoc).
        sregs.cr0 = kCr0Pe | kCr0Et;
        sregs.cr4 = 0;
        sregs.efer = 0;
    } else {
        // 64-bit boot protocol: long mode with our identity map.
        sregs.cr0 = kCr0Pe | kCr0Et | kCr0Pg;
        sregs.cr3 = setup.page_table_root;
        sregs.cr4 = kCr4Pae;
        sregs.efer = kEferLme | kEferLma;
    }
    vcpu.set_sregs(sregs);

    kvm_regs regs{};
    regs.rflags = kRflagsReserved;
    regs.rip = setup.instruction_pointer;
    regs.rsp = regs.rbp = kBootStackPointer;
    if (pvh) {
        regs.rbx = setup.boot_info_address;
    } else {
        regs.rsi = setup.boot_info_address;
    }
    vcpu.set_regs(regs);
}

std::vector<std::pair<uint32_t, uint64_t>> initial_msrs(
    const std::vector<uint32_t>& supported_msrs) {
    constexpr uint64_t kMiscEnableFastStrings = 1;
    constexpr uint64_t kMtrrEnableWriteBack = (1ull << 11) | 6;
    const std::pair<uint32_t, uint64_t> wanted[] = {
        {0x174, 0},                       // IA32_SYSENTER_CS
        {0x175, 0},                       // IA32_SYSENTER_ESP
        {0x176, 0},                       // IA32_SYSENTER_EIP
        {0xc0000081, 0},                  // STAR
        {0xc0000082, 0},                  // LSTAR
        {0xc0000083, 0},                  // CSTAR
        {0xc0000084, 0},                  // SYSCALL_MASK
        {0xc0000102, 0},                  // KERNEL_GS_BASE
        {0x1a0, kMiscEnableFastStrings},  // IA32_MISC_ENABLE
        {0x2ff, kMtrrEnableWriteBack},    // MTRRdefType: all memory write-back
    };
    std::vector<std::pair<uint32_t, uint64_t>> msrs;
    for (const auto& msr : wanted) {
        if (std::find(supported_msrs.begin(), supported_msrs.end(), msr.first) !=
            supported_msrs.end()) {
            msrs.push_back(msr);
        }
    }
    return msrs;
}

void setup_fpu(const VcpuFd& vcpu) {
    kvm_fpu fpu{};
    fpu.fcw = 0x37f;     // x87 default control word: all exceptions masked
    fpu.mxcsr = 0x1f80;  // SSE default: all exceptions masked
    vcpu.set_fpu(fpu);
}

void setup_xcr0(const VcpuFd& vcpu, uint64_t xcr0) {
    if (xcr0 == 0) {
        return;
    }
    kvm_xcrs xcrs{};
    xcrs.nr_xcrs = 1;
    xcrs.xcrs[0].xcr = 0;
    xcrs.xcrs[0].value = xcr0;
    vcpu.set_xcrs(xcrs);
}

void setup_lapic(const VcpuFd& vcpu) {
    kvm_lapic_state lapic = vcpu.get_lapic();
    set_apic_register(lapic, kApicLvtLint0,
                      with_delivery_mode(apic_register(lapic, kApicLvtLint0), kApicModeExtInt));
    set_apic_register(lapic, kApicLvtLint1,
                      with_delivery_mode(apic_register(lapic, kApicLvtLint1), kApicModeNmi));
    vcpu.set_lapic(lapic);
}

}  // namespace vmm::x86
