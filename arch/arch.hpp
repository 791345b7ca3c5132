// The interface the core builds and runs a VM through, whatever the CPU.
// Each port (arch/x86_64/, later arch/aarch64/) defines, in namespace
// vmm::arch, the types and the Platform class this header names, and CMake
// compiles exactly one port. The concept below is the contract: a port
// that misses a piece fails to compile here, not somewhere in the core.
//
// The core's order of calls, one VM (vmm/core/vm_builder.cpp):
//   probe_host(kvm)                  once per process, before the config
//   prepare_vm(kvm, vm)              the empty VM, before memory slots
//   Platform platform(host, options)
//   platform.ram_regions()           guest RAM, then the memory slots
//   platform.create_interrupt_controller(vm)
//   platform.layout()                where the platform devices and the
//                                    virtio-mmio window go
//   platform.setup_boot(memory, files, request)   kernel, initrd, command
//                                    line, firmware tables
//   platform.configure_vcpu(fd, id, boot)         every vCPU, boot CPU first;
//                                    the others after it, possibly on
//                                    several threads at once
// and while the VM is paused: save/restore of every vCPU and the VM, and
// their bytes in a snapshot. A restore makes the empty VM and the memory
// slots as a boot does, checks check_snapshot_cpu(), then
// restore_new_vcpu() for each vCPU and restore_vm().
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vmm/base/state_stream.hpp"
#include "vmm/kvm/kvm.hpp"
#include "vmm/kvm/vcpu_fd.hpp"
#include "vmm/kvm/vm_fd.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace vmm::arch {

// Which CPU model the guest sees: the host's (what KVM offers), one that a
// PVM host's instruction emulator can run, or that one only on a PVM host.
enum class CpuProfileChoice { Auto, Host, Pvm };
// Where the guest console lives: the platform's UART, or virtio-console.
enum class ConsoleKind { Serial, Virtio };

enum class BusKind { Pio, Mmio };

// One platform device's place: bus, address, size and interrupt line (0:
// none).
struct DevicePlace {
    BusKind bus;
    uint64_t address;
    uint64_t size;
    uint32_t irq = 0;
};

// The VMM's debug device (devices/legacy/debug_device.hpp) at one place:
// which offsets take the exit status and the boot-timer mark.
struct DebugPlace {
    DevicePlace place;
    uint64_t exit_offset;
    uint64_t timer_offset;
};

// Where the platform's own devices go.
struct PlatformLayout {
    DevicePlace serial;                    // the 16550-style UART (console)
    std::optional<DevicePlace> keyboard;   // i8042: reset and Ctrl+Alt+Del
    std::vector<DebugPlace> debug;         // the test guests' exit and timer
    std::optional<DevicePlace> power_off;  // the ACPI sleep register (S5)
    // virtio-mmio devices: slot i at base + i * slot_size, IRQ first_irq + i.
    uint64_t virtio_base;
    uint64_t virtio_slot_size;
    uint32_t virtio_first_irq;
    uint32_t virtio_last_irq;
};

// A virtio-mmio device the guest must be told about.
struct VirtioMmioSlot {
    uint64_t address;
    uint64_t size;
    uint32_t irq;
};

}  // namespace vmm::arch

#if defined(__x86_64__)
#include "arch/x86_64/platform.hpp"
#else
#error "arch/: no port for this CPU architecture yet"
#endif

namespace vmm::arch {

// What the core needs from a port. HostKvm, BootFiles, BootEntry,
// VcpuState and VmState are the port's own types; the core only moves them
// around.
template <typename P>
concept PlatformPort = requires(P platform, const P& const_platform, const Kvm& kvm, const VmFd& vm,
                                const VcpuFd& vcpu, const GuestMemory& memory,
                                const BootFiles& files, const BootRequest& request,
                                const BootSetup& boot, const VcpuState& vcpu_state,
                                const VmState& vm_state, StateWriter& writer, StateReader& reader,
                                uint32_t id) {
    { const_platform.ram_regions() } -> std::same_as<std::vector<GuestRegionSpec>>;
    {const_platform.create_interrupt_controller(vm)};
    { const_platform.layout() } -> std::same_as<PlatformLayout>;
    { const_platform.setup_boot(memory, files, request) } -> std::same_as<BootSetup>;
    {platform.configure_vcpu(vcpu, id, boot)};
    { platform.save_vcpu(vcpu) } -> std::same_as<VcpuState>;
    {const_platform.restore_vcpu(vcpu, vcpu_state)};
    { const_platform.save_vm(vm) } -> std::same_as<VmState>;
    {const_platform.restore_vm(vm, vm_state)};
    {platform.restore_new_vcpu(vcpu, vcpu_state)};
    {const_platform.check_snapshot_cpu(vcpu_state)};
    {write_vcpu_state(writer, vcpu_state)};
    { read_vcpu_state(reader) } -> std::same_as<VcpuState>;
    {write_vm_state(writer, vm_state)};
    { read_vm_state(reader) } -> std::same_as<VmState>;
    { const_platform.host_notes() } -> std::same_as<std::vector<std::string>>;
    { probe_host(kvm) } -> std::same_as<HostKvm>;
    {prepare_vm(kvm, vm)};
    { handle_emulation_failure(vcpu, memory) } -> std::same_as<std::optional<std::string>>;
    { describe_vcpu(vcpu) } -> std::same_as<std::string>;
    {check_cpu_feature_mask(std::string())};
};
static_assert(PlatformPort<Platform>, "the arch port does not implement the platform interface");

}  // namespace vmm::arch
