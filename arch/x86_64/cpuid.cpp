#include "arch/x86_64/cpuid.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <string_view>

#include <fmt/format.h>

#include "vmm/base/error.hpp"

namespace vmm::x86 {

namespace {

enum { EAX, EBX, ECX, EDX };

// The hypervisor timing leaf: TSC and APIC timer frequencies.
constexpr uint32_t kTimingLeaf = 0x40000010;
constexpr uint32_t kSignificantIndex = 1;  // KVM_CPUID_FLAG_SIGNIFCANT_INDEX

constexpr std::array kFeatures{
    CpuFeature{"fma", 1, 0, ECX, 12},
    CpuFeature{"cx16", 1, 0, ECX, 13},
    CpuFeature{"pcid", 1, 0, ECX, 17},
    CpuFeature{"sse4_1", 1, 0, ECX, 19},
    CpuFeature{"sse4_2", 1, 0, ECX, 20},
    CpuFeature{"x2apic", 1, 0, ECX, 21},
    CpuFeature{"movbe", 1, 0, ECX, 22},
    CpuFeature{"popcnt", 1, 0, ECX, 23},
    CpuFeature{"tsc_deadline_timer", 1, 0, ECX, 24},
    CpuFeature{"aes", 1, 0, ECX, 25},
    CpuFeature{"xsave", 1, 0, ECX, 26},
    CpuFeature{"avx", 1, 0, ECX, 28},
    CpuFeature{"f16c", 1, 0, ECX, 29},
    CpuFeature{"rdrand", 1, 0, ECX, 30},
    CpuFeature{"fsgsbase", 7, 0, EBX, 0},
    CpuFeature{"bmi1", 7, 0, EBX, 3},
    CpuFeature{"hle", 7, 0, EBX, 4},
    CpuFeature{"avx2", 7, 0, EBX, 5},
    CpuFeature{"smep", 7, 0, EBX, 7},
    CpuFeature{"bmi2", 7, 0, EBX, 8},
    CpuFeature{"erms", 7, 0, EBX, 9},
    CpuFeature{"invpcid", 7, 0, EBX, 10},
    CpuFeature{"rtm", 7, 0, EBX, 11},
    CpuFeature{"avx512f", 7, 0, EBX, 16},
    CpuFeature{"rdseed", 7, 0, EBX, 18},
    CpuFeature{"adx", 7, 0, EBX, 19},
    CpuFeature{"smap", 7, 0, EBX, 20},
    CpuFeature{"clflushopt", 7, 0, EBX, 23},
    CpuFeature{"sha_ni", 7, 0, EBX, 29},
    CpuFeature{"umip", 7, 0, ECX, 2},
    CpuFeature{"pku", 7, 0, ECX, 3},
    CpuFeature{"la57", 7, 0, ECX, 16},
    CpuFeature{"rdpid", 7, 0, ECX, 22},
    CpuFeature{"md_clear", 7, 0, EDX, 10},
    CpuFeature{"spec_ctrl", 7, 0, EDX, 26},
    CpuFeature{"arch_capabilities", 7, 0, EDX, 29},
    CpuFeature{"lahf_lm", 0x80000001, 0, ECX, 0},
    CpuFeature{"abm", 0x80000001, 0, ECX, 5},
    CpuFeature{"pdpe1gb", 0x80000001, 0, EDX, 26},
    CpuFeature{"rdtscp", 0x80000001, 0, EDX, 27},
    // KVM paravirtual features (leaf 0x40000001 EAX), named as Linux's
    // kvm-guest code calls them.
    CpuFeature{"kvm_pv_tlb_flush", 0x40000001, 0, EAX, 9},
    CpuFeature{"kvm_pv_send_ipi", 0x40000001, 0, EAX, 11},
    CpuFeature{"kvm_pv_sched_yield", 0x40000001, 0, EAX, 13},
};

// A feature's place in kFeatures, looked up while compiling: the tables
// below name features, and the work per VM compares indices, not strings.
consteval size_t feature_index(std::string_view name) {
    for (size_t i = 0; i < kFeatures.size(); ++i) {
        if (name == kFeatures[i].name) {
            return i;
        }
    }
    throw "no such CPU feature";  // in a constant expression: a compile error
}

// Features that make no sense once another is gone (Linux's cpuid_deps).
struct Dependency {
    size_t feature;
    size_t requires_feature;
};
constexpr std::array kDependencies{
    Dependency{feature_index("avx"), feature_index("xsave")},
    Dependency{feature_index("fma"), feature_index("avx")},
    Dependency{feature_index("f16c"), feature_index("avx")},
    Dependency{feature_index("avx2"), feature_index("avx")},
    Dependency{feature_index("avx512f"), feature_index("avx2")},
    Dependency{feature_index("invpcid"), feature_index("pcid")},
};

// What the PVM profile masks. The PV IPI, TLB-flush and yield hypercalls
// (vmcall) hang secondary CPUs under PVM's emulator: an AP that sends its
// first IPI that way never gets past the vmcall, and Linux never finishes
// SMP bring-up.
constexpr std::array kPvmMasked{
    feature_index("cx16"),
    feature_index("xsave"),
    feature_index("smap"),
    feature_index("fsgsbase"),
    feature_index("pcid"),
    feature_index("invpcid"),
    feature_index("rdrand"),
    feature_index("rdseed"),
    feature_index("rdpid"),
    feature_index("popcnt"),
    feature_index("kvm_pv_tlb_flush"),
    feature_index("kvm_pv_send_ipi"),
    feature_index("kvm_pv_sched_yield"),
};
constexpr size_t kXsave = feature_index("xsave");
constexpr size_t kTscDeadline = feature_index("tsc_deadline_timer");

// A feature's index in kFeatures (find_cpu_feature() returns pointers into
// it; anything else is looked up by name).
size_t index_of(const CpuFeature& feature) {
    std::less_equal<const CpuFeature*> at_most;
    if (at_most(kFeatures.data(), &feature) && at_most(&feature, &kFeatures.back())) {
        return size_t(&feature - kFeatures.data());
    }
    return index_of(find_cpu_feature(feature.name));
}

constexpr uint32_t kHypervisorBit = 1u << 31;  // leaf 1 ECX
constexpr uint32_t kOsxsaveBit = 1u << 27;     // leaf 1 ECX
constexpr uint32_t kHttBit = 1u << 28;         // leaf 1 EDX

uint32_t& reg_of(CpuidEntry& entry, int reg) {
    switch (reg) {
        case EAX:
            return entry.eax;
        case EBX:
            return entry.ebx;
        case ECX:
            return entry.ecx;
        default:
            return entry.edx;
    }
}

void set_vendor(std::vector<CpuidEntry>& entries, const char vendor[13]) {
    for (auto& e : entries) {
        if (e.function == 0) {
            std::memcpy(&e.ebx, vendor, 4);
            std::memcpy(&e.edx, vendor + 4, 4);
            std::memcpy(&e.ecx, vendor + 8, 4);
        }
    }
}

// Bits needed to number `count` items (x2APIC ID shift widths).
uint32_t bits_for(uint32_t count) {
    uint32_t bits = 0;
    while ((1u << bits) < count) {
        ++bits;
    }
    return bits;
}

}  // namespace

const CpuFeature& find_cpu_feature(const std::string& name) {
    for (const auto& feature : kFeatures) {
        if (name == feature.name) {
            return feature;
        }
    }
    std::string known;
    for (const auto& feature : kFeatures) {
        known += known.empty() ? "" : ",";
        known += feature.name;
    }
    throw Error(fmt::format("unknown CPU feature '{}' (known: {})", name, known));
}

std::vector<const CpuFeature*> parse_cpuid_mask(const std::string& list) {
    std::vector<const CpuFeature*> features;
    size_t start = 0;
    while (start <= list.size()) {
        size_t comma = list.find(',', start);
        std::string name = list.substr(start, comma == std::string::npos ? comma : comma - start);
        if (!name.empty()) {
            features.push_back(&find_cpu_feature(name));
        }
        if (comma == std::string::npos) {
            break;
        }
        start = comma + 1;
    }
    return features;
}

std::vector<const CpuFeature*> profile_mask(CpuProfile profile) {
    std::vector<const CpuFeature*> features;
    if (profile == CpuProfile::Pvm) {
        for (size_t index : kPvmMasked) {
            features.push_back(&kFeatures[index]);
        }
    }
    return features;
}

std::vector<CpuidEntry> guest_cpuid(const std::vector<CpuidEntry>& supported,
                                    const CpuidConfig& config, uint32_t vcpu_id,
                                    uint32_t vcpu_count) {
    std::vector<CpuidEntry> entries;
    entries.reserve(supported.size() + 7);  // room for leaves 0xB, 0x1F and the timing leaf
    entries.assign(supported.begin(), supported.end());

    std::array<bool, kFeatures.size()> masked{};
    if (config.profile == CpuProfile::Pvm) {
        for (size_t index : kPvmMasked) {
            masked[index] = true;
        }
    }
    for (const CpuFeature* feature : config.masked) {
        masked[index_of(*feature)] = true;
    }
    // Close the mask over dependencies, so no feature survives without its base.
    for (bool changed = true; changed;) {
        changed = false;
        for (const Dependency& dep : kDependencies) {
            if (masked[dep.requires_feature] && !masked[dep.feature]) {
                masked[dep.feature] = true;
                changed = true;
            }
        }
    }
    // The masked bits gathered per register (a handful of them), so each
    // entry is looked at once.
    struct RegisterMask {
        uint32_t leaf, subleaf;
        int reg;
        uint32_t bits;
    };
    std::array<RegisterMask, kFeatures.size()> clear{};
    size_t clear_count = 0;
    for (size_t i = 0; i < kFeatures.size(); ++i) {
        if (!masked[i]) {
            continue;
        }
        const CpuFeature& f = kFeatures[i];
        size_t r = 0;
        while (r < clear_count && (clear[r].leaf != f.leaf || clear[r].subleaf != f.subleaf ||
                                   clear[r].reg != f.reg)) {
            ++r;
        }
        if (r == clear_count) {
            clear[clear_count++] = {f.leaf, f.subleaf, f.reg, 0};
        }
        clear[r].bits |= 1u << f.bit;
    }
    for (CpuidEntry& e : entries) {
        for (size_t r = 0; r < clear_count; ++r) {
            if (e.function == clear[r].leaf && e.index == clear[r].subleaf) {
                reg_of(e, clear[r].reg) &= ~clear[r].bits;
            }
        }
    }
    bool xsave_masked = masked[kXsave];

    if (config.profile == CpuProfile::Pvm) {
        // x87 fnclex is used on AMD-vendor CPUs only, and the emulator lacks it.
        set_vendor(entries, "GenuineIntel");
    }

    uint32_t topology_bits = bits_for(vcpu_count);
    for (auto& e : entries) {
        switch (e.function) {
            case 1:
                e.ecx |= kHypervisorBit;
                // Never in KVM's supported list (it needs the in-kernel
                // LAPIC, api.rst): without it Linux calibrates its APIC
                // timer against the PIT, 100 ms and more of every boot.
                if (config.tsc_deadline && !masked[kTscDeadline]) {
                    e.ecx |= 1u << kFeatures[kTscDeadline].bit;
                }
                if (xsave_masked) {
                    e.ecx &= ~kOsxsaveBit;
                }
                // EBX[31:24] initial APIC ID, [23:16] logical processors per package.
                e.ebx = (e.ebx & 0x0000ffff) | (vcpu_id << 24) | ((vcpu_count & 0xff) << 16);
                if (vcpu_count > 1) {
                    e.edx |= kHttBit;
                }
                break;
            case 4:
                // Deterministic cache parameters: cores per package, and
                // which caches the cores share (only the L3, here).
                if ((e.eax & 0x1f) != 0) {
                    uint32_t level = (e.eax >> 5) & 7;
                    uint32_t sharing = level == 3 ? std::min(vcpu_count, 4096u) - 1 : 0;
                    e.eax = (e.eax & 0x3fff) | (sharing << 14) |
                            ((std::min(vcpu_count, 64u) - 1) << 26);
                }
                break;
            case 0x80000008:
                // AMD: cores per package - 1, and the APIC ID bits they use.
                e.ecx = (e.ecx & ~0xf0ffu) | (topology_bits << 12) | ((vcpu_count - 1) & 0xff);
                break;
            case 0x8000001e:
                // AMD: extended APIC ID, core ID (one thread per core), node 0.
                e.eax = vcpu_id;
                e.ebx = vcpu_id & 0xff;
                e.ecx = 0;
                break;
            case 0x40000000:
                if (config.tsc_khz != 0) {
                    e.eax = std::max(e.eax, kTimingLeaf);
                }
                break;
            case 0xd:
                if (xsave_masked) {
                    e.eax = e.ebx = e.ecx = e.edx = 0;
                }
                break;
            default:
                break;
        }
    }
    // Leaves 0xB and 0x1F are written whole: KVM may report only subleaf 0
    // (as on PVM hosts), and a guest needs the core level and the end marker.
    bool has_1f = std::any_of(entries.begin(), entries.end(),
                              [](const CpuidEntry& e) { return e.function == 0x1f; });
    bool has_b = std::any_of(entries.begin(), entries.end(),
                             [](const CpuidEntry& e) { return e.function == 0xb; });
    std::erase_if(entries,
                  [](const CpuidEntry& e) { return e.function == 0xb || e.function == 0x1f; });
    for (uint32_t function : {0xbu, 0x1fu}) {
        if ((function == 0xb && !has_b) || (function == 0x1f && !has_1f)) {
            continue;
        }
        // One thread per core (level 1, SMT), all cores in one package
        // (level 2, core), then the invalid level that ends the list.
        entries.push_back({function, 0, kSignificantIndex, 0, 1, (1u << 8) | 0, vcpu_id});
        entries.push_back(
            {function, 1, kSignificantIndex, topology_bits, vcpu_count, (2u << 8) | 1, vcpu_id});
        entries.push_back({function, 2, kSignificantIndex, 0, 0, 2, vcpu_id});
    }

    if (config.tsc_khz != 0) {
        // The hypervisor timing leaf (as VMware and QEMU define it): TSC and
        // local APIC timer frequencies in kHz; KVM's APIC timer runs at 1 GHz.
        std::erase_if(entries, [](const CpuidEntry& e) { return e.function == kTimingLeaf; });
        entries.push_back({kTimingLeaf, 0, 0, config.tsc_khz, 1000000, 0, 0});
    }
    return entries;
}

CpuidTemplate::CpuidTemplate(const std::vector<CpuidEntry>& supported, const CpuidConfig& config,
                             uint32_t vcpu_count)
    : entries_(guest_cpuid(supported, config, 0, vcpu_count)), xcr0_(initial_xcr0(entries_)) {}

std::vector<CpuidEntry> CpuidTemplate::for_vcpu(uint32_t vcpu_id) const {
    std::vector<CpuidEntry> entries = entries_;
    for (auto& e : entries) {
        switch (e.function) {
            case 1:
                e.ebx = (e.ebx & 0x00ffffff) | (vcpu_id << 24);
                break;
            case 0xb:
            case 0x1f:
                e.edx = vcpu_id;
                break;
            case 0x8000001e:
                e.eax = vcpu_id;
                e.ebx = vcpu_id & 0xff;
                break;
            default:
                break;
        }
    }
    return entries;
}

uint64_t initial_xcr0(const std::vector<CpuidEntry>& guest_cpuid) {
    constexpr uint32_t kXsaveBit = 1u << 26;  // leaf 1 ECX
    constexpr uint64_t kX87 = 1;              // XCR0 bit 0 must always be set
    auto find = [&](uint32_t function, uint32_t index) -> const CpuidEntry* {
        for (const auto& e : guest_cpuid) {
            if (e.function == function && e.index == index) {
                return &e;
            }
        }
        return nullptr;
    };
    const CpuidEntry* features = find(1, 0);
    const CpuidEntry* xsave = find(0xd, 0);
    if (features == nullptr || (features->ecx & kXsaveBit) == 0 || xsave == nullptr) {
        return 0;
    }
    return (uint64_t{xsave->edx} << 32 | xsave->eax) | kX87;
}

namespace {

const CpuidEntry* find_entry(const std::vector<CpuidEntry>& entries, uint32_t function,
                             uint32_t index) {
    for (const auto& e : entries) {
        if (e.function == function && e.index == index) {
            return &e;
        }
    }
    return nullptr;
}

uint32_t reg_value(const CpuidEntry& entry, int reg) {
    const uint32_t values[] = {entry.eax, entry.ebx, entry.ecx, entry.edx};
    return values[reg];
}

// The feature registers compared for a restore, and the bits in each that
// are not host features.
struct FeatureRegister {
    uint32_t leaf;
    uint32_t subleaf;
    int reg;
    uint32_t not_features;
};

constexpr std::array kFeatureRegisters{
    // OSXSAVE (27) follows CR4, hypervisor (31) and TSC deadline (24) are ours.
    FeatureRegister{1, 0, ECX, kOsxsaveBit | kHypervisorBit | (1u << 24)},
    // APIC (9) follows the APIC base MSR; HTT (28) is our topology.
    FeatureRegister{1, 0, EDX, kHttBit | (1u << 9)},
    FeatureRegister{7, 0, EBX, 0},
    // OSPKE (4) follows CR4.
    FeatureRegister{7, 0, ECX, 1u << 4},
    FeatureRegister{7, 0, EDX, 0},
    FeatureRegister{0xd, 0, EAX, 0},  // XSAVE state components
    FeatureRegister{0xd, 1, EAX, 0},  // XSAVEOPT, XSAVEC, XSAVES
    FeatureRegister{0x80000001, 0, ECX, 0},
    FeatureRegister{0x80000001, 0, EDX, 0},
};

std::string feature_name(const FeatureRegister& where, int bit) {
    for (const auto& feature : kFeatures) {
        if (feature.leaf == where.leaf && feature.subleaf == where.subleaf &&
            feature.reg == where.reg && feature.bit == bit) {
            return feature.name;
        }
    }
    constexpr const char* kRegisters[] = {"eax", "ebx", "ecx", "edx"};
    return fmt::format("cpuid {:#x}.{} {} bit {}", where.leaf, where.subleaf, kRegisters[where.reg],
                       bit);
}

}  // namespace

std::vector<std::string> features_missing(const std::vector<CpuidEntry>& guest,
                                          const std::vector<CpuidEntry>& host) {
    std::vector<std::string> missing;
    for (const FeatureRegister& where : kFeatureRegisters) {
        const CpuidEntry* seen = find_entry(guest, where.leaf, where.subleaf);
        if (seen == nullptr) {
            continue;
        }
        const CpuidEntry* offered = find_entry(host, where.leaf, where.subleaf);
        uint32_t available = offered ? reg_value(*offered, where.reg) : 0;
        uint32_t lacking = reg_value(*seen, where.reg) & ~available & ~where.not_features;
        for (int bit = 0; bit < 32; ++bit) {
            if ((lacking >> bit) & 1) {
                missing.push_back(feature_name(where, bit));
            }
        }
    }
    return missing;
}

std::string cpu_vendor(const std::vector<CpuidEntry>& entries) {
    const CpuidEntry* leaf0 = find_entry(entries, 0, 0);
    if (leaf0 == nullptr) {
        return {};
    }
    char vendor[12];
    std::memcpy(vendor, &leaf0->ebx, 4);
    std::memcpy(vendor + 4, &leaf0->edx, 4);
    std::memcpy(vendor + 8, &leaf0->ecx, 4);
    return std::string(vendor, sizeof(vendor));
}

}  // namespace vmm::x86
