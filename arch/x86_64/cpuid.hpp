// The CPUID a vCPU sees: what KVM supports, plus the hypervisor bit, the
// vCPU's APIC ID and topology, minus the features a profile or the user masks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vmm/kvm/kvm.hpp"

namespace vmm::x86 {

// host: whatever KVM supports. pvm: what KVM's instruction emulator on a PVM
// host can run (see docs): no CX16, XSAVE, SMAP, FSGSBASE, PCID, INVPCID,
// RDRAND, RDSEED, RDPID, POPCNT; vendor GenuineIntel.
enum class CpuProfile { Host, Pvm };

struct CpuFeature {
    const char* name;
    uint32_t leaf;
    uint32_t subleaf;
    int reg;  // 0 eax, 1 ebx, 2 ecx, 3 edx
    int bit;
};

// Looks a feature up by its Linux /proc/cpuinfo name; throws listing the
// known names when there is no such feature.
const CpuFeature& find_cpu_feature(const std::string& name);
// Parses a comma-separated list of feature names.
std::vector<const CpuFeature*> parse_cpuid_mask(const std::string& list);
// The features a profile masks.
std::vector<const CpuFeature*> profile_mask(CpuProfile profile);

struct CpuidConfig {
    CpuProfile profile = CpuProfile::Host;
    std::vector<const CpuFeature*> masked;
    // The guest's TSC frequency (KVM_GET_TSC_KHZ), published in leaf
    // 0x40000010 so guests need not calibrate; 0: leave the leaf out.
    uint32_t tsc_khz = 0;
    // KVM_CAP_TSC_DEADLINE_TIMER (with our in-kernel LAPIC): offer the
    // TSC deadline timer (leaf 1 ECX bit 24) unless masked.
    bool tsc_deadline = false;
};

// Topology: one thread per core, `vcpu_count` cores in one package, APIC ID =
// vCPU index; described alike in leaves 1, 4, 0xB, 0x1F, 0x80000008 and
// 0x8000001E, so every way a guest counts CPUs agrees.
std::vector<CpuidEntry> guest_cpuid(const std::vector<CpuidEntry>& supported,
                                    const CpuidConfig& config, uint32_t vcpu_id,
                                    uint32_t vcpu_count);

// One VM's CPUID, built once (the masks, dependencies and topology cost
// tens of microseconds) and patched per vCPU: only the APIC ID fields
// differ between vCPUs (leaves 1, 0xB, 0x1F and 0x8000001E).
// for_vcpu(id) equals guest_cpuid(supported, config, id, vcpu_count).
class CpuidTemplate {
  public:
    CpuidTemplate(const std::vector<CpuidEntry>& supported, const CpuidConfig& config,
                  uint32_t vcpu_count);
    std::vector<CpuidEntry> for_vcpu(uint32_t vcpu_id) const;
    // for_vcpu(0), without the copy.
    const std::vector<CpuidEntry>& boot_cpu() const { return entries_; }
    // initial_xcr0() of the table (the same for every vCPU).
    uint64_t xcr0() const { return xcr0_; }

  private:
    std::vector<CpuidEntry> entries_;  // as for vCPU 0
    uint64_t xcr0_;
};

// The XCR0 a vCPU starts with: every state component the guest's CPUID
// offers (leaf 0xD subleaf 0 EDX:EAX), or 0 when XSAVE is not offered.
//
// KVM recomputes leaf 0xD's EBX (the XSAVE area size for the XCR0 in force)
// only when it sees the guest write XCR0. Starting at reset's XCR0 = 1
// leaves EBX at 576 bytes until then, and where XSETBV does not reach KVM
// (nested under QEMU's TCG, whose SVM apparently does not intercept it) it
// stays there, so Linux, which enables every component it knows, finds 576
// where its own sum says 832 and warns "XSAVE consistency problem". Starting with the full
// mask makes EBX agree with what the guest enables from the first CPUID on;
// a guest that enables less writes XCR0 itself, as on any CPU.
uint64_t initial_xcr0(const std::vector<CpuidEntry>& guest_cpuid);

// The CPU features a guest saw (its CPUID table, from a snapshot) that `host`
// (KVM's supported CPUID) does not offer, by name ("avx512f", or "cpuid
// 0x7.0 ebx bit 17" for one without a name): a guest restored there would
// fault on its first use. Bits that follow the guest's own state (OSXSAVE,
// OSPKE, APIC enabled) or that the VMM adds (hypervisor, HTT, TSC deadline)
// are not features of the host and are not compared.
std::vector<std::string> features_missing(const std::vector<CpuidEntry>& guest,
                                          const std::vector<CpuidEntry>& host);
// The vendor string of leaf 0 ("AuthenticAMD"), empty without one.
std::string cpu_vendor(const std::vector<CpuidEntry>& entries);

}  // namespace vmm::x86
