#include "arch/arch.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "arch/kernel_cmdline.hpp"
#include "arch/x86_64/acpi.hpp"
#include "arch/x86_64/e820.hpp"
#include "arch/x86_64/emulation_failure.hpp"
#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/mptable.hpp"
#include "arch/x86_64/regs.hpp"
#include "vmm/base/logger.hpp"

namespace vmm::arch {

namespace {

// virtio-mmio windows from 0xd0000000 (inside the 32-bit MMIO hole, above the
// debug page), 4 KiB each, on IOAPIC pins 5..23.
constexpr uint64_t kVirtioMmioBase = 0xd0000000;
constexpr uint64_t kVirtioMmioSlotSize = 0x1000;
constexpr uint32_t kVirtioFirstIrq = 5;
constexpr uint32_t kVirtioLastIrq = x86::kIoapicPins - 1;

}  // namespace

HostKvm probe_host(const Kvm& kvm) {
    kvm.require_extension(KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP");
    kvm.require_extension(KVM_CAP_PIT2, "KVM_CAP_PIT2");
    kvm.require_extension(KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY");
    kvm.require_extension(KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR");
    kvm.require_extension(KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID");
    kvm.require_extension(KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT");
    HostKvm host;
    host.supported_cpuid = kvm.supported_cpuid();
    host.msr_index_list = kvm.msr_index_list();
    host.initial_msrs = x86::initial_msrs(host.msr_index_list);
    host.pvm = Kvm::host_is_pvm();
    host.tsc_scaling = kvm.check_extension(KVM_CAP_TSC_CONTROL) > 0;
    host.tsc_deadline = kvm.check_extension(KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    return host;
}

void prepare_vm(const Kvm& kvm, const VmFd& vm) {
    vm.set_tss_address(x86::kTssAddress);
    if (kvm.check_extension(KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
        vm.set_identity_map_address(x86::kIdentityMapAddress);
    }
}

void check_cpu_feature_mask(const std::string& mask) {
    x86::parse_cpuid_mask(mask);
}

Platform::Platform(const HostKvm& host, PlatformOptions options)
    : host_(host),
      options_(std::move(options)),
      pvm_profile_(options_.cpu_profile == CpuProfileChoice::Pvm ||
                   (options_.cpu_profile == CpuProfileChoice::Auto && host.pvm)),
      masked_(x86::parse_cpuid_mask(options_.cpuid_mask)) {}

std::vector<GuestRegionSpec> Platform::ram_regions() const {
    return x86::guest_ram_regions(options_.memory_bytes);
}

void Platform::create_interrupt_controller(const VmFd& vm) const {
    vm.create_irqchip();
    vm.create_pit2();
}

PlatformLayout Platform::layout() const {
    PlatformLayout layout{};
    layout.serial = {BusKind::Pio, x86::kCom1Port, 8, x86::kCom1Irq};
    layout.keyboard = DevicePlace{BusKind::Pio, x86::kI8042Port, 5, x86::kKeyboardIrq};
    // Port 0xf4 takes the exit status, 0xf5 the boot-timer mark; the MMIO
    // page the same at 0 and 4, for guests without port I/O.
    layout.debug = {{{BusKind::Pio, x86::kDebugPort, 2}, 0, 1},
                    {{BusKind::Mmio, x86::kDebugMmioAddress, x86::kDebugMmioSize}, 4, 0}};
    if (options_.acpi) {
        // The FADT's sleep register: where the DSDT's \_S5_ sends a poweroff.
        layout.power_off = DevicePlace{BusKind::Pio, x86::kAcpiSleepPort, 1};
    }
    layout.virtio_base = kVirtioMmioBase;
    layout.virtio_slot_size = kVirtioMmioSlotSize;
    layout.virtio_first_irq = kVirtioFirstIrq;
    layout.virtio_last_irq = kVirtioLastIrq;
    return layout;
}

BootSetup Platform::setup_boot(const GuestMemory& memory, const BootFiles& files,
                               const BootRequest& request) const {
    KernelCmdline cmdline(request.cmdline.value_or(
        request.console == ConsoleKind::Virtio ? kDefaultVirtioConsoleCmdline : kDefaultCmdline));
    if (pvm_profile_) {
        cmdline.append(kPvmCmdline);
    }
    if (!options_.acpi) {
        // With ACPI the DSDT describes the virtio devices instead.
        for (const VirtioMmioSlot& slot : request.virtio_devices) {
            cmdline.append(fmt::format("virtio_mmio.device={}K@{:#x}:{}", slot.size >> 10,
                                       slot.address, slot.irq));
        }
    }
    if (request.root && !cmdline.has_key("root")) {
        cmdline.append(*request.root);
    }
    BootSetup boot = x86::setup_boot(memory, files, {cmdline.str(), request.entry});
    // The MP table lets every guest (acpi=off included) find all vCPUs.
    x86::write_mp_table(memory, options_.vcpu_count);
    if (options_.acpi) {
        std::vector<x86::AcpiVirtioMmio> devices;
        for (const VirtioMmioSlot& slot : request.virtio_devices) {
            devices.push_back({slot.address, slot.size, slot.irq});
        }
        x86::write_acpi_tables(memory, options_.vcpu_count, devices);
    }
    return boot;
}

void Platform::configure_vcpu(const VcpuFd& vcpu, uint32_t id, const BootSetup& boot) {
    if (!cpuid_) {
        // The boot CPU's call, before any other (they may then run on
        // several threads): what every vCPU gets alike, built once.
        x86::CpuidConfig config;
        config.profile = pvm_profile_ ? x86::CpuProfile::Pvm : x86::CpuProfile::Host;
        config.masked = masked_;
        config.tsc_khz = vcpu.tsc_khz();
        config.tsc_deadline = host_.tsc_deadline;
        cpuid_.emplace(host_.supported_cpuid, config, options_.vcpu_count);
    }
    if (id == 0) {
        vcpu.set_cpuid(cpuid_->boot_cpu());
    } else {
        vcpu.set_cpuid(cpuid_->for_vcpu(id));
    }
    x86::setup_xcr0(vcpu, cpuid_->xcr0());
    vcpu.set_msrs(host_.initial_msrs);
    // KVM's reset state already has the x87/SSE defaults; the explicit write
    // (about 130 us each here) is kept for the boot CPU only, and the others
    // start from INIT/SIPI with what KVM gives them.
    if (id == 0) {
        x86::setup_fpu(vcpu);
    }
    x86::setup_lapic(vcpu);
    // Only the boot CPU starts at the kernel; the others wait in the
    // in-kernel LAPIC for INIT/SIPI.
    if (id == 0) {
        x86::setup_boot_registers(vcpu, boot);
    }
}

VcpuState Platform::save_vcpu(const VcpuFd& vcpu) {
    if (!saveable_msrs_) {
        saveable_msrs_ = x86::saveable_msrs(vcpu, host_.msr_index_list);
    }
    VcpuState state = x86::save_vcpu_state(vcpu, *saveable_msrs_);
    // The table this VMM gave the vCPU, not KVM_GET_CPUID2's: PVM answers
    // that with more than it runs.
    if (cpuid_) {
        state.cpuid = cpuid_->for_vcpu(vcpu.id());
    } else if (vcpu.id() < restored_cpuid_.size()) {
        state.cpuid = restored_cpuid_[vcpu.id()];
    }
    return state;
}

void Platform::restore_vcpu(const VcpuFd& vcpu, const VcpuState& state) const {
    x86::restore_vcpu_state(vcpu, state);
}

VmState Platform::save_vm(const VmFd& vm) const {
    return x86::save_vm_devices(vm);
}

void Platform::restore_vm(const VmFd& vm, const VmState& state) const {
    x86::restore_vm_devices(vm, state);
}

void Platform::restore_new_vcpu(const VcpuFd& vcpu, const VcpuState& state) {
    vcpu.set_cpuid(state.cpuid);
    if (restored_cpuid_.size() <= vcpu.id()) {
        restored_cpuid_.resize(vcpu.id() + 1);
    }
    restored_cpuid_[vcpu.id()] = state.cpuid;
    uint32_t here = vcpu.tsc_khz();
    // Within 250 ppm the guest cannot tell (NTP's tolerance, Firecracker's too).
    bool differs =
        state.tsc_khz != 0 && here != 0 &&
        uint64_t(state.tsc_khz > here ? state.tsc_khz - here : here - state.tsc_khz) * 4000 > here;
    if (differs) {
        if (host_.tsc_scaling) {
            vcpu.set_tsc_khz(state.tsc_khz);
        } else {
            log_warning(
                "vCPU {}: the snapshot's TSC ran at {} kHz, this host's at {} kHz and KVM cannot "
                "scale it; kvmclock stays right, code reading the TSC directly runs fast or slow",
                vcpu.id(), state.tsc_khz, here);
        }
    }
    x86::restore_vcpu_state(vcpu, state);
}

void Platform::check_snapshot_cpu(const VcpuState& state) const {
    std::string saved = x86::cpu_vendor(state.cpuid), here = x86::cpu_vendor(host_.supported_cpuid);
    // The PVM profile shows every guest one vendor, whatever the host's.
    if (!host_.pvm && saved != here) {
        throw Error(
            fmt::format("the snapshot was taken on a {} CPU; this host's is {}", saved, here));
    }
    std::vector<std::string> missing = x86::features_missing(state.cpuid, host_.supported_cpuid);
    if (!missing.empty()) {
        throw Error(fmt::format(
            "this host's CPU lacks features the snapshot's guest uses: {}; restore on a host "
            "with the same CPU, or boot the VM to snapshot with --cpuid-mask hiding them",
            fmt::join(missing, ", ")));
    }
}

std::vector<std::string> Platform::host_notes() const {
    if (!host_.pvm) {
        return {};
    }
    return {fmt::format(
        "note: host KVM is PVM (no VT-x/AMD-V): guest code runs under KVM's instruction "
        "emulator, far slower than native; CPU profile '{}'",
        pvm_profile_ ? "pvm" : "host")};
}

std::optional<std::string> handle_emulation_failure(const VcpuFd& vcpu, const GuestMemory& memory) {
    return x86::handle_emulation_failure(vcpu, memory);
}

std::string describe_vcpu(const VcpuFd& vcpu) {
    return x86::describe_vcpu_state(vcpu);
}

}  // namespace vmm::arch
