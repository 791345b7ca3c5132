// The VM's configuration as plain data: built by the command line (and later
// the API and config file), validated once by validate_config().
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "arch/x86_64/boot.hpp"
#include "vmm/config/drive_config.hpp"
#include "vmm/config/net_config.hpp"

namespace vmm {

enum class CpuProfileChoice { Auto, Host, Pvm };
// Where the guest console lives: the 8250 (ttyS0), or virtio-console (hvc0;
// the 8250 then stays for early boot messages only).
enum class ConsoleKind { Serial, Virtio };
// Backing of guest memory: 4 KiB pages, or transparent huge pages (madvise).
enum class HugePages { None, Transparent };

struct VmConfig {
    std::string kernel_path;
    std::optional<std::string> initrd_path;
    // Replaces the default command line when set; device arguments are added.
    std::optional<std::string> cmdline;
    uint64_t memory_mib = 128;
    uint32_t vcpu_count = 1;
    HugePages huge_pages = HugePages::None;
    // Memory slots log dirty pages (KVM_MEM_LOG_DIRTY_PAGES), for snapshots.
    bool track_dirty_pages = false;
    CpuProfileChoice cpu_profile = CpuProfileChoice::Auto;
    std::string cpuid_mask;  // comma-separated feature names
    // Block drives in guest order (vda, vdb, ...); the root drive comes first.
    std::vector<DriveConfig> drives;
    std::vector<NetConfig> nets;  // eth0, eth1, ...
    ConsoleKind console = ConsoleKind::Serial;
    // The 8250's output goes to this file or named pipe instead of stdout.
    std::optional<std::string> serial_out_path;
    bool rng = true;  // virtio-rng, so the guest's RNG is ready at boot
    // ACPI tables (hardware-reduced FADT, MADT, DSDT with the devices) next
    // to the MP table; off by default (see README, "CPUs and tables").
    bool acpi = false;
    x86::BootEntry boot_entry = x86::BootEntry::Auto;
    std::string kvm_device = "/dev/kvm";
    bool boot_trace = false;
    bool verbose = false;
};

inline constexpr uint64_t kMinMemoryMib = 4;
inline constexpr uint32_t kMaxVcpus = 32;
inline constexpr const char* kDefaultCmdline = "console=ttyS0 reboot=k panic=-1";
// With --console virtio: hvc0 is the console, the 8250 an early console
// until hvc0 registers (which then skips replaying what it already printed).
inline constexpr const char* kDefaultVirtioConsoleCmdline =
    "console=hvc0 earlycon=uart8250,io,0x3f8 reboot=k panic=-1";
// What a stock kernel needs on a PVM host besides the CPUID profile: no xsave
// (xrstor), no SMAP (clac/stac), no int3 self-test, no mitigation code paths.
inline constexpr const char* kPvmCmdline =
    "noxsave nosmap no_int3_selftest mitigations=off "
    "clearcpuid=smap,fsgsbase,pcid,invpcid,rdrand,rdseed,rdpid,popcnt";

// Throws Error naming the field and the bad value.
void validate_config(const VmConfig& config);

}  // namespace vmm
