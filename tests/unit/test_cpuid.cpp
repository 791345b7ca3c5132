// guest_cpuid over a synthetic "KVM supported" list: the hypervisor bit, APIC
// IDs and topology, the PVM profile and user masks with their dependencies.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "arch/x86_64/cpuid.hpp"
#include "vmm/base/error.hpp"

using Catch::Contains;
using vmm::CpuidEntry;
using vmm::x86::CpuidConfig;
using vmm::x86::CpuProfile;
using vmm::x86::guest_cpuid;
using vmm::x86::initial_xcr0;
using vmm::x86::parse_cpuid_mask;

namespace {

constexpr uint32_t bit(int n) {
    return 1u << n;
}

constexpr uint32_t kHypervisor = bit(31);
constexpr uint32_t kOsxsave = bit(27);
constexpr uint32_t kHtt = bit(28);

uint32_t vendor_word(const char* four) {
    uint32_t word;
    std::memcpy(&word, four, 4);
    return word;
}

// Everything on, as a generous host would report it.
std::vector<CpuidEntry> supported() {
    return {
        {0, 0, 0, 0x1f, vendor_word("Auth"), vendor_word("cAMD"), vendor_word("enti")},
        {1, 0, 0, 0x000806f8, 0xff010800, 0xfffffffe & ~kHypervisor, 0x078bfbff & ~kHtt},
        {7, 0, 1, 1, 0xffffffff, 0xffffffff, 0xffffffff},
        {7, 1, 1, 0x30, 0xffffffff, 0, 0},
        {0xb, 0, 1, 9, 9, 9, 9},
        {0xb, 1, 1, 9, 9, 9, 9},
        {0xb, 2, 1, 9, 9, 9, 9},
        {0xd, 0, 1, 0x2e7, 0x340, 0xa88, 0},
        {0xd, 1, 1, 0xf, 0x340, 0x1800, 0},
        {0x80000001, 0, 0, 0, 0, 0xffffffff, 0xffffffff},
    };
}

const CpuidEntry& leaf(const std::vector<CpuidEntry>& entries, uint32_t function,
                       uint32_t index = 0) {
    for (const auto& e : entries) {
        if (e.function == function && e.index == index) {
            return e;
        }
    }
    FAIL("no CPUID leaf " << std::hex << function << "." << index);
    throw std::logic_error("unreachable");
}

std::string vendor(const std::vector<CpuidEntry>& entries) {
    const CpuidEntry& e = leaf(entries, 0);
    char name[13] = {};
    std::memcpy(name, &e.ebx, 4);
    std::memcpy(name + 4, &e.edx, 4);
    std::memcpy(name + 8, &e.ecx, 4);
    return name;
}

CpuidConfig masked(const std::string& names) {
    CpuidConfig config;
    config.masked = parse_cpuid_mask(names);
    return config;
}

}  // namespace

TEST_CASE("guest_cpuid sets the hypervisor bit and keeps other features", "[cpuid]") {
    auto entries = guest_cpuid(supported(), CpuidConfig{}, 0, 1);
    const CpuidEntry& l1 = leaf(entries, 1);
    CHECK((l1.ecx & kHypervisor) != 0);
    CHECK((l1.ecx & ~kHypervisor) == (0xfffffffe & ~kHypervisor));
    CHECK(l1.eax == 0x000806f8);
    CHECK(leaf(entries, 7).ebx == 0xffffffff);
    CHECK(leaf(entries, 0xd).eax == 0x2e7);
    CHECK(vendor(entries) == "AuthenticAMD");
    CHECK(entries.size() == supported().size());
}

TEST_CASE("guest_cpuid puts the APIC ID in leaf 1 EBX[31:24]", "[cpuid]") {
    for (uint32_t id : {0u, 1u, 5u, 31u}) {
        INFO("vcpu " << id);
        auto entries = guest_cpuid(supported(), CpuidConfig{}, id, 32);
        const CpuidEntry& l1 = leaf(entries, 1);
        CHECK(l1.ebx >> 24 == id);
        CHECK(((l1.ebx >> 16) & 0xff) == 32);  // logical processors per package
        CHECK((l1.ebx & 0xffff) == 0x0800);    // CLFLUSH line size etc. kept
        CHECK((l1.edx & kHtt) != 0);
    }
    auto single = guest_cpuid(supported(), CpuidConfig{}, 0, 1);
    CHECK((leaf(single, 1).ebx >> 16) == 0x0001);
    CHECK((leaf(single, 1).edx & kHtt) == 0);
}

TEST_CASE("guest_cpuid leaf 0xB describes the topology per vCPU", "[cpuid]") {
    auto entries = guest_cpuid(supported(), CpuidConfig{}, 3, 4);
    const CpuidEntry& smt = leaf(entries, 0xb, 0);
    CHECK(smt.eax == 0);
    CHECK(smt.ebx == 1);
    CHECK(smt.ecx == 0x100);  // level 0, type SMT
    CHECK(smt.edx == 3);      // x2APIC ID
    const CpuidEntry& core = leaf(entries, 0xb, 1);
    CHECK(core.eax == 2);  // shift: 4 vCPUs need 2 bits
    CHECK(core.ebx == 4);
    CHECK(core.ecx == 0x201);  // level 1, type core
    CHECK(core.edx == 3);
    const CpuidEntry& invalid = leaf(entries, 0xb, 2);
    CHECK(invalid.eax == 0);
    CHECK(invalid.ebx == 0);
    CHECK(invalid.ecx == 2);  // type 0: invalid level
    CHECK(invalid.edx == 3);

    auto five = guest_cpuid(supported(), CpuidConfig{}, 4, 5);
    CHECK(leaf(five, 0xb, 1).eax == 3);
    CHECK(leaf(five, 0xb, 1).ebx == 5);
    CHECK(leaf(five, 0xb, 0).edx == 4);

    auto one = guest_cpuid(supported(), CpuidConfig{}, 0, 1);
    CHECK(leaf(one, 0xb, 1).eax == 0);
    CHECK(leaf(one, 0xb, 1).ebx == 1);
}

TEST_CASE("guest_cpuid PVM profile masks what the emulator cannot run", "[cpuid]") {
    CpuidConfig config;
    config.profile = CpuProfile::Pvm;
    auto entries = guest_cpuid(supported(), config, 0, 1);
    const CpuidEntry& l1 = leaf(entries, 1);
    CHECK((l1.ecx & bit(13)) == 0);  // cx16
    CHECK((l1.ecx & bit(26)) == 0);  // xsave
    CHECK((l1.ecx & kOsxsave) == 0);
    CHECK((l1.ecx & bit(17)) == 0);  // pcid
    CHECK((l1.ecx & bit(23)) == 0);  // popcnt
    CHECK((l1.ecx & bit(30)) == 0);  // rdrand
    CHECK((l1.ecx & bit(28)) == 0);  // avx, via xsave
    CHECK((l1.ecx & bit(12)) == 0);  // fma, via avx
    CHECK((l1.ecx & bit(29)) == 0);  // f16c, via avx
    const CpuidEntry& l7 = leaf(entries, 7);
    CHECK((l7.ebx & bit(20)) == 0);  // smap
    CHECK((l7.ebx & bit(0)) == 0);   // fsgsbase
    CHECK((l7.ebx & bit(10)) == 0);  // invpcid
    CHECK((l7.ebx & bit(18)) == 0);  // rdseed
    CHECK((l7.ebx & bit(5)) == 0);   // avx2, via avx
    CHECK((l7.ebx & bit(16)) == 0);  // avx512f, via avx2
    CHECK((l7.ecx & bit(22)) == 0);  // rdpid
    // Untouched features survive.
    CHECK((l1.ecx & bit(20)) != 0);  // sse4_2
    CHECK((l1.ecx & bit(25)) != 0);  // aes
    CHECK((l7.ebx & bit(3)) != 0);   // bmi1
    CHECK((l7.ebx & bit(7)) != 0);   // smep
    CHECK((l1.ecx & kHypervisor) != 0);
    // Subleaf 1 of leaf 7 is another leaf: not touched by leaf 7.0 masks.
    CHECK(leaf(entries, 7, 1).eax == 0x30);
    CHECK(leaf(entries, 7, 1).ebx == 0xffffffff);

    CHECK(vendor(entries) == "GenuineIntel");
    const CpuidEntry& xsave = leaf(entries, 0xd, 0);
    CHECK((xsave.eax | xsave.ebx | xsave.ecx | xsave.edx) == 0);
}

TEST_CASE("guest_cpuid masking xsave clears AVX and leaf 0xD", "[cpuid]") {
    auto entries = guest_cpuid(supported(), masked("xsave"), 0, 1);
    const CpuidEntry& l1 = leaf(entries, 1);
    CHECK((l1.ecx & bit(26)) == 0);
    CHECK((l1.ecx & kOsxsave) == 0);
    CHECK((l1.ecx & bit(28)) == 0);               // avx
    CHECK((leaf(entries, 7).ebx & bit(5)) == 0);  // avx2
    for (uint32_t index : {0u, 1u}) {
        const CpuidEntry& e = leaf(entries, 0xd, index);
        CHECK((e.eax | e.ebx | e.ecx | e.edx) == 0);
    }
    // Not the PVM profile: the vendor and the rest stay.
    CHECK(vendor(entries) == "AuthenticAMD");
    CHECK((l1.ecx & bit(13)) != 0);  // cx16
}

TEST_CASE("guest_cpuid masking a dependent feature keeps its base", "[cpuid]") {
    auto entries = guest_cpuid(supported(), masked("avx2"), 0, 1);
    CHECK((leaf(entries, 7).ebx & bit(5)) == 0);   // avx2
    CHECK((leaf(entries, 7).ebx & bit(16)) == 0);  // avx512f needs avx2
    CHECK((leaf(entries, 1).ecx & bit(28)) != 0);  // avx stays
    CHECK((leaf(entries, 1).ecx & bit(26)) != 0);  // xsave stays
    CHECK(leaf(entries, 0xd).eax == 0x2e7);

    auto no_pcid = guest_cpuid(supported(), masked("pcid"), 0, 1);
    CHECK((leaf(no_pcid, 1).ecx & bit(17)) == 0);
    CHECK((leaf(no_pcid, 7).ebx & bit(10)) == 0);  // invpcid needs pcid
}

TEST_CASE("guest_cpuid masks extended leaves", "[cpuid]") {
    auto entries = guest_cpuid(supported(), masked("rdtscp,lahf_lm"), 0, 1);
    const CpuidEntry& ext = leaf(entries, 0x80000001);
    CHECK((ext.edx & bit(27)) == 0);
    CHECK((ext.ecx & bit(0)) == 0);
    CHECK((ext.edx & bit(26)) != 0);  // pdpe1gb stays
}

TEST_CASE("parse_cpuid_mask parses comma-separated names", "[cpuid]") {
    auto features = parse_cpuid_mask("avx,sse4_2");
    REQUIRE(features.size() == 2);
    CHECK(std::string(features[0]->name) == "avx");
    CHECK(features[0]->leaf == 1);
    CHECK(features[0]->reg == 2);
    CHECK(features[0]->bit == 28);
    CHECK(std::string(features[1]->name) == "sse4_2");
    CHECK(parse_cpuid_mask("").empty());
    CHECK(parse_cpuid_mask(",avx,,rdrand,").size() == 2);
}

TEST_CASE("parse_cpuid_mask rejects unknown names and lists the known ones", "[cpuid]") {
    CHECK_THROWS_WITH(parse_cpuid_mask("avx,bogus"), Contains("unknown CPU feature 'bogus'") &&
                                                         Contains("known:") && Contains("xsave") &&
                                                         Contains("avx2") && Contains("rdtscp"));
    CHECK_THROWS_AS(parse_cpuid_mask("AVX"), vmm::Error);
    CHECK_THROWS_AS(parse_cpuid_mask(" avx"), vmm::Error);
}

TEST_CASE("profile_mask lists the PVM features and nothing for host", "[cpuid]") {
    CHECK(vmm::x86::profile_mask(CpuProfile::Host).empty());
    auto pvm = vmm::x86::profile_mask(CpuProfile::Pvm);
    CHECK(pvm.size() == 13);
    std::vector<std::string> names;
    for (const auto* feature : pvm) {
        names.emplace_back(feature->name);
    }
    CHECK_THAT(names, Catch::VectorContains(std::string("cx16")));
    CHECK_THAT(names, Catch::VectorContains(std::string("smap")));
    CHECK_THAT(names, Catch::VectorContains(std::string("kvm_pv_send_ipi")));
    CHECK_THAT(names, Catch::VectorContains(std::string("popcnt")));
}

TEST_CASE("guest_cpuid describes the same topology in leaves 4 and the AMD leaves", "[cpuid]") {
    auto base = supported();
    base.push_back({4, 0, 1, 0x121, 0, 0, 0});  // L1 data cache: type 1, level 1
    base.push_back({4, 3, 1, 0x163, 0, 0, 0});  // L3: type 3, level 3
    base.push_back({4, 4, 1, 0, 0, 0, 0});      // end of the list
    base.push_back({0x80000008, 0, 0, 0x3030, 0, 0x700f, 0});
    base.push_back({0x8000001e, 0, 0, 9, 9, 9, 0});
    auto entries = guest_cpuid(base, {}, 5, 6);
    CHECK((leaf(entries, 4, 0).eax >> 26) == 5);            // 6 cores per package
    CHECK(((leaf(entries, 4, 0).eax >> 14) & 0xfff) == 0);  // L1 per core
    CHECK(((leaf(entries, 4, 3).eax >> 14) & 0xfff) == 5);  // L3 shared by all 6
    CHECK((leaf(entries, 4, 3).eax & 0x3fff) == 0x163);     // cache description kept
    CHECK(leaf(entries, 4, 4).eax == 0);
    CHECK((leaf(entries, 0x80000008).ecx & 0xff) == 5);
    CHECK(((leaf(entries, 0x80000008).ecx >> 12) & 0xf) == 3);  // 6 IDs need 3 bits
    CHECK(leaf(entries, 0x8000001e).eax == 5);
    CHECK(leaf(entries, 0x8000001e).ebx == 5);
    CHECK(leaf(entries, 0x8000001e).ecx == 0);
}

TEST_CASE("guest_cpuid publishes the TSC frequency in the timing leaf", "[cpuid]") {
    auto base = supported();
    base.push_back({0x40000000, 0, 0, 0x40000001, 0, 0, 0});
    CpuidConfig config;
    config.tsc_khz = 2918400;
    auto entries = guest_cpuid(base, config, 0, 1);
    CHECK(leaf(entries, 0x40000000).eax == 0x40000010);
    CHECK(leaf(entries, 0x40000010).eax == 2918400);
    CHECK(leaf(entries, 0x40000010).ebx == 1000000);
    // Without a known frequency the leaf stays out.
    auto plain = guest_cpuid(base, {}, 0, 1);
    CHECK(leaf(plain, 0x40000000).eax == 0x40000001);
    for (const auto& e : plain) {
        CHECK(e.function != 0x40000010);
    }
}

TEST_CASE("guest_cpuid offers the TSC deadline timer when KVM has it, unless masked", "[cpuid]") {
    constexpr uint32_t kTscDeadline = 1u << 24;
    auto base = supported();
    for (auto& e : base) {
        if (e.function == 1) {
            e.ecx &= ~kTscDeadline;  // KVM never lists it (api.rst)
        }
    }
    CHECK((leaf(guest_cpuid(base, CpuidConfig{}, 0, 1), 1).ecx & kTscDeadline) == 0);
    CpuidConfig config;
    config.tsc_deadline = true;
    CHECK((leaf(guest_cpuid(base, config, 0, 1), 1).ecx & kTscDeadline) != 0);
    config.masked = parse_cpuid_mask("tsc_deadline_timer");
    CHECK((leaf(guest_cpuid(base, config, 0, 1), 1).ecx & kTscDeadline) == 0);
}

TEST_CASE("guest_cpuid writes leaf 0xB whole when KVM reports only its first subleaf", "[cpuid]") {
    auto base = supported();
    std::erase_if(base, [](const CpuidEntry& e) { return e.function == 0xb && e.index > 0; });
    auto entries = guest_cpuid(base, {}, 3, 4);
    CHECK(leaf(entries, 0xb, 0).ecx == (1u << 8));
    CHECK(leaf(entries, 0xb, 1).ecx == ((2u << 8) | 1));
    CHECK(leaf(entries, 0xb, 1).ebx == 4);
    CHECK(leaf(entries, 0xb, 1).eax == 2);
    CHECK(leaf(entries, 0xb, 1).edx == 3);          // x2APIC ID in every subleaf
    CHECK(leaf(entries, 0xb, 2).ecx == 2);          // level type 0: the end
    CHECK((leaf(entries, 0xb, 1).flags & 1) == 1);  // the index matters
    int count = 0;
    for (const auto& e : entries) {
        count += e.function == 0xb;
    }
    CHECK(count == 3);
}

TEST_CASE("guest_cpuid PVM profile hides KVM's PV IPI hypercalls", "[cpuid]") {
    auto base = supported();
    base.push_back({0x40000001, 0, 0, 0x01ffffff, 0, 0, 0});
    CpuidConfig config;
    config.profile = CpuProfile::Pvm;
    auto entries = guest_cpuid(base, config, 0, 2);
    uint32_t eax = leaf(entries, 0x40000001).eax;
    CHECK((eax & (1u << 11)) == 0);  // PV_SEND_IPI
    CHECK((eax & (1u << 9)) == 0);   // PV_TLB_FLUSH
    CHECK((eax & (1u << 3)) != 0);   // kvmclock stays
    CHECK((leaf(guest_cpuid(base, {}, 0, 2), 0x40000001).eax & (1u << 11)) != 0);
}

TEST_CASE("initial_xcr0 is every state component the guest's CPUID offers", "[cpuid]") {
    // supported() offers 0x2e7 in leaf 0xD EAX: the vCPU starts with all of it,
    // so leaf 0xD's EBX agrees with what a guest enables (see cpuid.hpp).
    CHECK(initial_xcr0(guest_cpuid(supported(), CpuidConfig{}, 0, 1)) == 0x2e7);

    auto upper = supported();
    for (auto& e : upper) {
        if (e.function == 0xd && e.index == 0) {
            e.eax = 0x6;  // x87 missing: XCR0 bit 0 is mandatory
            e.edx = 0x1;  // a component above bit 31
        }
    }
    CHECK(initial_xcr0(guest_cpuid(upper, CpuidConfig{}, 0, 1)) == 0x100000007ull);
}

TEST_CASE("initial_xcr0 is 0 without XSAVE", "[cpuid]") {
    CHECK(initial_xcr0(guest_cpuid(supported(), masked("xsave"), 0, 1)) == 0);
    CpuidConfig pvm;
    pvm.profile = CpuProfile::Pvm;
    CHECK(initial_xcr0(guest_cpuid(supported(), pvm, 0, 1)) == 0);
    CHECK(initial_xcr0({}) == 0);
}

TEST_CASE("CpuidTemplate patched per vCPU equals guest_cpuid built for that vCPU", "[cpuid]") {
    std::vector<CpuidEntry> host = supported();
    host.push_back({0x1f, 0, 1, 9, 9, 9, 9});
    host.push_back({0x80000008, 0, 0, 0x3030, 0, 0xffff, 0});
    host.push_back({0x8000001e, 0, 0, 9, 9, 9, 9});
    host.push_back({0x40000000, 0, 0, 0x40000001, 0, 0, 0});
    for (CpuProfile profile : {CpuProfile::Host, CpuProfile::Pvm}) {
        CpuidConfig config = masked("avx2");
        config.profile = profile;
        config.tsc_khz = 2100000;
        const uint32_t count = 9;
        vmm::x86::CpuidTemplate table(host, config, count);
        for (uint32_t id : {0u, 1u, 5u, 8u}) {
            std::vector<CpuidEntry> expected = guest_cpuid(host, config, id, count);
            std::vector<CpuidEntry> patched = table.for_vcpu(id);
            REQUIRE(patched.size() == expected.size());
            for (size_t i = 0; i < expected.size(); ++i) {
                INFO("vCPU " << id << " leaf " << std::hex << expected[i].function << "."
                             << expected[i].index);
                CHECK(std::memcmp(&patched[i], &expected[i], sizeof(CpuidEntry)) == 0);
            }
            CHECK(table.xcr0() == initial_xcr0(expected));
        }
        std::vector<CpuidEntry> boot = guest_cpuid(host, config, 0, count);
        REQUIRE(table.boot_cpu().size() == boot.size());
        CHECK(std::memcmp(table.boot_cpu().data(), boot.data(), boot.size() * sizeof(CpuidEntry)) ==
              0);
    }
}
