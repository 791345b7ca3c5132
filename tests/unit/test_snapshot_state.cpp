// Snapshot pieces below the devices: the x86 vCPU and VM state format, the
// CPU compatibility check, the configuration section, dirty page tracking
// and the memory files (Full and Diff).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "arch/x86_64/cpuid.hpp"
#include "arch/x86_64/saved_state.hpp"
#include "vmm/base/unique_fd.hpp"
#include "vmm/core/snapshot_config_state.hpp"
#include "vmm/memory/memory_file.hpp"
#include "vmm/memory/uffd_memory.hpp"

using namespace vmm;

namespace {

x86::VcpuState sample_vcpu() {
    x86::VcpuState state{};
    state.mp_state.mp_state = KVM_MP_STATE_HALTED;
    state.regs.rip = 0xffffffff81000000;
    state.regs.rsp = 0x12345678;
    state.regs.rflags = 0x246;
    state.sregs.cr0 = 0x80050033;
    state.sregs.efer = 0xd01;
    state.xsave.region[0] = 0x037f;
    state.xsave.region[1023] = 0xabcdef;
    state.xcrs.nr_xcrs = 1;
    state.xcrs.xcrs[0].value = 7;
    state.debugregs.dr7 = 0x400;
    state.lapic.regs[0x20] = 0x01;
    state.events.exception.nr = 14;
    state.msrs = {{0x10, 123456789}, {0x4b564d01, 0x1000001}};
    state.cpuid = {{0, 0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65},
                   {7, 0, 1, 0, 1u << 16, 0, 0}};
    state.tsc_khz = 2100000;
    return state;
}

std::vector<uint8_t> vcpu_bytes(const x86::VcpuState& state) {
    StateWriter out;
    x86::write_vcpu_state(out, state);
    return out.take();
}

// The byte offset of the MSR count in a written vCPU state: after the eight
// KVM structs, each with its u32 size.
size_t msr_count_offset() {
    return 8 * 4 + sizeof(kvm_mp_state) + sizeof(kvm_regs) + sizeof(kvm_sregs) +
           sizeof(kvm_abi::Xsave) + sizeof(kvm_xcrs) + sizeof(kvm_debugregs) +
           sizeof(kvm_lapic_state) + sizeof(kvm_vcpu_events);
}

void put_u32(std::vector<uint8_t>& bytes, size_t offset, uint32_t value) {
    std::memcpy(bytes.data() + offset, &value, 4);
}

std::vector<GuestRegionSpec> two_regions() {
    return {{GuestAddress(0), 64 * 4096}, {GuestAddress(0x100000), 16 * 4096}};
}

std::string temp_path(const char* name) {
    return fmt::format("/tmp/vmm-unit-{}-{}", ::getpid(), name);
}

}  // namespace

TEST_CASE("x86 vCPU state: every part reads back as written", "[snapshot]") {
    x86::VcpuState state = sample_vcpu();
    std::vector<uint8_t> bytes = vcpu_bytes(state);
    StateReader in(bytes, "vCPU 0");
    x86::VcpuState back = x86::read_vcpu_state(in);
    in.expect_end();
    CHECK(back.mp_state.mp_state == KVM_MP_STATE_HALTED);
    CHECK(std::memcmp(&back.regs, &state.regs, sizeof(state.regs)) == 0);
    CHECK(std::memcmp(&back.sregs, &state.sregs, sizeof(state.sregs)) == 0);
    CHECK(back.xsave.region[1023] == 0xabcdef);
    CHECK(back.xcrs.xcrs[0].value == 7);
    CHECK(back.debugregs.dr7 == 0x400);
    CHECK(back.lapic.regs[0x20] == 0x01);
    CHECK(back.events.exception.nr == 14);
    CHECK(back.msrs == state.msrs);
    REQUIRE(back.cpuid.size() == 2);
    CHECK(back.cpuid[1].ebx == (1u << 16));
    CHECK(back.cpuid[0].ecx == 0x444d4163);
    CHECK(back.tsc_khz == 2100000);
}

TEST_CASE("x86 vCPU state: bad counts and truncation are refused", "[snapshot]") {
    std::vector<uint8_t> good = vcpu_bytes(sample_vcpu());
    auto refuses = [](std::vector<uint8_t> bytes, const std::string& message) {
        StateReader in(bytes, "vCPU 0");
        CHECK_THROWS_WITH(x86::read_vcpu_state(in), Catch::Contains(message));
    };
    auto many_msrs = good;
    put_u32(many_msrs, msr_count_offset(), 100000);
    refuses(many_msrs, "100000 MSRs");
    // The CPUID count follows the two MSRs (12 bytes each).
    size_t cpuid_count = msr_count_offset() + 4 + 2 * 12;
    auto no_cpuid = good;
    put_u32(no_cpuid, cpuid_count, 0);
    refuses(no_cpuid, "0 CPUID entries");
    auto huge_cpuid = good;
    put_u32(huge_cpuid, cpuid_count, 257);
    refuses(huge_cpuid, "257 CPUID entries");
    auto bad_mp_state = good;
    put_u32(bad_mp_state, 4, 77);
    refuses(bad_mp_state, "run state 77");
    auto wrong_size = good;
    put_u32(wrong_size, 0, sizeof(kvm_mp_state) + 4);
    refuses(wrong_size, "structure");
    for (size_t cut : {size_t(0), size_t(3), good.size() / 2, good.size() - 1}) {
        refuses(std::vector<uint8_t>(good.begin(), good.begin() + long(cut)), "vCPU 0");
    }
}

TEST_CASE("x86 VM state: round trip, and a chip in the wrong place is refused", "[snapshot]") {
    x86::VmDeviceState state{};
    state.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
    state.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    state.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
    state.ioapic.chip.ioapic.id = 5;
    state.pit.channels[0].count = 0x1234;
    state.clock.clock = 987654321;
    StateWriter out;
    x86::write_vm_state(out, state);
    std::vector<uint8_t> bytes = out.take();
    StateReader in(bytes, "VM");
    x86::VmDeviceState back = x86::read_vm_state(in);
    in.expect_end();
    CHECK(back.ioapic.chip.ioapic.id == 5);
    CHECK(back.pit.channels[0].count == 0x1234);
    CHECK(back.clock.clock == 987654321);

    state.pic_slave.chip_id = KVM_IRQCHIP_IOAPIC;
    StateWriter bad;
    x86::write_vm_state(bad, state);
    std::vector<uint8_t> bad_bytes = bad.take();
    StateReader bad_in(bad_bytes, "VM");
    CHECK_THROWS_WITH(x86::read_vm_state(bad_in), Catch::Contains("PIC slave state names chip"));
}

TEST_CASE("restore CPU check: names what the host lacks, ignores guest-state bits", "[snapshot]") {
    std::vector<CpuidEntry> host = {{0, 0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65},
                                    {1, 0, 0, 0, 0, 1u << 20, 0},
                                    {7, 0, 1, 0, 1u << 5, 0, 0}};
    std::vector<CpuidEntry> guest = host;
    CHECK(x86::features_missing(guest, host).empty());
    // OSXSAVE and the hypervisor bit follow the guest and the VMM.
    guest[1].ecx |= (1u << 27) | (1u << 31);
    CHECK(x86::features_missing(guest, host).empty());
    guest[2].ebx |= (1u << 16) | (1u << 17);  // avx512f and an unnamed bit
    CHECK(x86::features_missing(guest, host) ==
          std::vector<std::string>{"avx512f", "cpuid 0x7.0 ebx bit 17"});
    CHECK(x86::cpu_vendor(host) == "AuthenticAMD");
}

TEST_CASE("snapshot configuration: round trip, and bad values refused", "[snapshot]") {
    VmConfig config;
    config.kernel_path = "/k";
    config.memory_mib = 256;
    config.vcpu_count = 2;
    config.track_dirty_pages = true;
    config.cpuid_mask = "xsave";
    config.drives.push_back(DriveConfig{});
    config.drives.back().id = "rootfs";
    config.drives.back().path = "/images/root.ext4";
    config.drives.back().read_only = true;
    config.drives.back().rate_limiter.bandwidth = {1 << 20, 4096, 100};
    config.nets.push_back(NetConfig{});
    config.nets.back().id = "eth0";
    config.nets.back().tx_rate_limiter.ops = {100, 0, 1000};
    StateWriter out;
    write_config_state(out, config);
    std::vector<uint8_t> bytes = out.take();
    StateReader in(bytes, "configuration");
    VmConfig back = read_config_state(in);
    in.expect_end();
    CHECK(back.memory_mib == 256);
    CHECK(back.vcpu_count == 2);
    CHECK(back.cpuid_mask == "xsave");
    REQUIRE(back.drives.size() == 1);
    CHECK(back.drives[0].id == "rootfs");
    CHECK(back.drives[0].path == "/images/root.ext4");
    CHECK(back.drives[0].read_only);
    CHECK(back.drives[0].rate_limiter == config.drives[0].rate_limiter);
    REQUIRE(back.nets.size() == 1);
    CHECK(back.nets[0].tx_rate_limiter.ops == TokenBucketConfig{100, 0, 1000});
    CHECK_FALSE(back.nets[0].rx_rate_limiter.limits());
    for (size_t cut = 0; cut < bytes.size(); cut += 7) {
        StateReader truncated(std::span<const uint8_t>(bytes).first(cut), "configuration");
        CHECK_THROWS_AS(read_config_state(truncated), StateError);
    }
}

TEST_CASE("dirty pages: VMM writes and slices are marked, reads are not", "[snapshot]") {
    GuestMemory memory = GuestMemory::create(two_regions());
    CHECK(memory.dirty_bitmap(0) == nullptr);
    memory.track_dirty_pages();
    uint8_t byte = 0;
    memory.read(GuestAddress(0x3000), std::span(&byte, 1));
    memory.write_obj(GuestAddress(0x5ffe), uint32_t(7));  // straddles pages 5 and 6
    memory.slice(GuestAddress(0x100000 + 3 * 4096), 10);
    std::vector<uint64_t> low = memory.dirty_bitmap(0)->take();
    std::vector<uint64_t> high = memory.dirty_bitmap(1)->take();
    CHECK(low == std::vector<uint64_t>{(1u << 5) | (1u << 6)});
    CHECK(high == std::vector<uint64_t>{1u << 3});
    CHECK(memory.dirty_bitmap(0)->take() == std::vector<uint64_t>{0});  // taken: cleared
}

TEST_CASE("memory files: Full holds every non-zero page, Diff only the dirty ones", "[snapshot]") {
    GuestMemory memory = GuestMemory::create(two_regions());
    memory.write_obj(GuestAddress(0x2000), uint64_t(0x1111));
    memory.write_obj(GuestAddress(0x100000 + 0x4000), uint64_t(0x2222));
    std::string full = temp_path("full.mem"), diff = temp_path("diff.mem");
    MemoryFileStats stats = save_memory_file(memory, full);
    CHECK(stats.file_bytes == 80 * 4096);
    CHECK(stats.written_bytes == 2 * 4096);

    UniqueFd full_fd(::open(full.c_str(), O_RDONLY | O_CLOEXEC));
    GuestMemory restored = GuestMemory::create_from_file(two_regions(), full_fd.get());
    CHECK(restored.read_obj<uint64_t>(GuestAddress(0x2000)) == 0x1111);
    CHECK(restored.read_obj<uint64_t>(GuestAddress(0x100000 + 0x4000)) == 0x2222);
    CHECK(restored.read_obj<uint64_t>(GuestAddress(0x3000)) == 0);
    CHECK_THROWS_WITH(save_memory_file(restored, full), Catch::Contains("restored from"));

    DirtyPages dirty = {std::vector<uint64_t>{1u << 9}, std::vector<uint64_t>{0}};
    MemoryFileStats diff_stats = save_memory_diff(memory, dirty, diff);
    CHECK(diff_stats.file_bytes == 80 * 4096);
    CHECK(diff_stats.written_bytes == 4096);  // page 9, although it is zero
    CHECK_THROWS_WITH(save_memory_diff(memory, DirtyPages(1), diff), Catch::Contains("bitmaps"));
    CHECK_THROWS_WITH(load_memory_file(two_regions(), "/nonexistent/mem"),
                      Catch::Contains("/nonexistent/mem"));
    REQUIRE(::truncate(diff.c_str(), 4096) == 0);
    CHECK_THROWS_WITH(load_memory_file(two_regions(), diff), Catch::Contains("shorter"));
    ::unlink(full.c_str());
    ::unlink(diff.c_str());
}

TEST_CASE("Uffd backend: the regions message, and no handler is a clear error", "[snapshot]") {
    GuestMemory memory = GuestMemory::create(two_regions());
    std::string json = uffd_region_mappings(memory);
    CHECK(json.find(fmt::format("\"base_host_virt_addr\":{},\"size\":{},\"offset\":0,",
                                memory.regions()[0].host_address(), 64 * 4096)) !=
          std::string::npos);
    CHECK(json.find(fmt::format("\"base_host_virt_addr\":{},\"size\":{},\"offset\":{},",
                                memory.regions()[1].host_address(), 16 * 4096, 64 * 4096)) !=
          std::string::npos);
    CHECK(json.find("\"page_size\":4096") != std::string::npos);
    CHECK_THROWS_WITH(load_uffd_memory(two_regions(), "/nonexistent/uffd.sock"),
                      Catch::Contains("cannot connect to the Uffd page-fault handler"));
    CHECK_THROWS_WITH(load_uffd_memory(two_regions(), std::string(200, 'x')),
                      Catch::Contains("a Unix socket path is 1 to"));
}
