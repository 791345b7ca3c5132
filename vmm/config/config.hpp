// The VM's configuration as plain data: built by the command line (and later
// the API and config file), validated once by validate_config().
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "arch/arch.hpp"
#include "vmm/config/drive_config.hpp"
#include "vmm/config/net_config.hpp"

namespace vmm {

using arch::ConsoleKind;
using arch::CpuProfileChoice;
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
    arch::BootEntry boot_entry = arch::BootEntry::Auto;
    std::string kvm_device = "/dev/kvm";
    bool boot_trace = false;
    bool verbose = false;
};

inline constexpr uint64_t kMinMemoryMib = 4;
inline constexpr uint32_t kMaxVcpus = 32;
// Throws Error naming the field and the bad value.
void validate_config(const VmConfig& config);

}  // namespace vmm
