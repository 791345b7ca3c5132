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
};

// Topology: one thread per core, `vcpu_count` cores in one package, APIC ID =
// vCPU index; described alike in leaves 1, 4, 0xB, 0x1F, 0x80000008 and
// 0x8000001E, so every way a guest counts CPUs agrees.
std::vector<CpuidEntry> guest_cpuid(const std::vector<CpuidEntry>& supported,
                                    const CpuidConfig& config, uint32_t vcpu_id,
                                    uint32_t vcpu_count);

}  // namespace vmm::x86
