#include "arch/x86_64/emulation_failure.hpp"

#include <algorithm>
#include <vector>

#include "vmm/base/error.hpp"

namespace vmm::x86 {

namespace {

constexpr uint8_t kInt3Opcode = 0xcc;
constexpr uint8_t kBreakpointVector = 3;
constexpr size_t kMaxInstructionLength = 15;

// The bytes at the faulting RIP: from KVM when it reports them, else read
// through the guest's page tables (only the part inside one guest page that is
// in RAM, so a bad RIP cannot make us read anywhere else).
std::vector<uint8_t> instruction_bytes(const VcpuFd& vcpu, const GuestMemory& memory) {
    const kvm_run* run = vcpu.run_area();
    const auto& failure = run->emulation_failure;
    if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
        (failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) &&
        failure.insn_size > 0) {
        size_t size = std::min<size_t>(failure.insn_size, sizeof(failure.insn_bytes));
        return std::vector<uint8_t>(failure.insn_bytes, failure.insn_bytes + size);
    }
    kvm_sregs sregs = vcpu.get_sregs();
    kvm_regs regs = vcpu.get_regs();
    uint64_t linear = sregs.cs.base + regs.rip;
    kvm_translation tr = vcpu.translate(linear);
    if (!tr.valid) {
        return {};
    }
    uint64_t in_page = 0x1000 - (tr.physical_address & 0xfff);
    size_t length = std::min<uint64_t>(kMaxInstructionLength, in_page);
    if (!memory.check_range(GuestAddress(tr.physical_address), length)) {
        return {};
    }
    std::vector<uint8_t> bytes(length);
    memory.read(GuestAddress(tr.physical_address), bytes);
    return bytes;
}

// Delivers the #BP an int3 raises. #BP is a trap: the pushed RIP is the next
// instruction, which Linux's handler relies on (it subtracts one).
void inject_breakpoint(const VcpuFd& vcpu) {
    kvm_regs regs = vcpu.get_regs();
    regs.rip += 1;
    vcpu.set_regs(regs);
    kvm_vcpu_events events = vcpu.get_vcpu_events();
    events.exception.injected = 1;
    events.exception.nr = kBreakpointVector;
    events.exception.has_error_code = 0;
    events.exception.error_code = 0;
    // Leave the other event fields as KVM reported them.
    events.flags &=
        ~static_cast<uint32_t>(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
                               KVM_VCPUEVENT_VALID_SMM);
    vcpu.set_vcpu_events(events);
}

}  // namespace

std::string describe_vcpu_state(const VcpuFd& vcpu) {
    kvm_regs r = vcpu.get_regs();
    kvm_sregs s = vcpu.get_sregs();
    return fmt::format(
        "  rip={:#018x} rsp={:#018x} rflags={:#x}\n"
        "  rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}\n"
        "  rsi={:#018x} rdi={:#018x} rbp={:#018x}\n"
        "  r8 ={:#018x} r9 ={:#018x} r10={:#018x} r11={:#018x}\n"
        "  r12={:#018x} r13={:#018x} r14={:#018x} r15={:#018x}\n"
        "  cs={:#06x} (base {:#x}, l={} db={}) cr0={:#x} cr3={:#x} cr4={:#x} efer={:#x}",
        r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10,
        r.r11, r.r12, r.r13, r.r14, r.r15, s.cs.selector, s.cs.base, s.cs.l, s.cs.db, s.cr0, s.cr3,
        s.cr4, s.efer);
}

std::optional<std::string> handle_emulation_failure(const VcpuFd& vcpu, const GuestMemory& memory) {
    const kvm_run* run = vcpu.run_area();
    std::vector<uint8_t> bytes;
    try {
        bytes = instruction_bytes(vcpu, memory);
    } catch (const Error&) {
        // No bytes is still a report worth giving.
    }
    if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION && !bytes.empty() &&
        bytes[0] == kInt3Opcode) {
        inject_breakpoint(vcpu);
        return std::nullopt;
    }
    std::string hex;
    for (uint8_t b : bytes) {
        hex += fmt::format("{}{:02x}", hex.empty() ? "" : " ", b);
    }
    const char* kind = run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
                           ? "KVM could not emulate an instruction"
                           : "KVM internal error";
    return fmt::format("vCPU {}: {} (suberror {}); instruction bytes: {}\n{}", vcpu.id(), kind,
                       run->internal.suberror, hex.empty() ? "unavailable" : hex,
                       describe_vcpu_state(vcpu));
}

}  // namespace vmm::x86
