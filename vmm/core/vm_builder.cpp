#include "vmm/core/vm_builder.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "devices/legacy/acpi_power_off.hpp"
#include "devices/legacy/debug_device.hpp"
#include "devices/virtio/block/block_device.hpp"
#include "devices/virtio/net/net_device.hpp"
#include "devices/virtio/rng/rng_device.hpp"
#include "vmm/base/logger.hpp"
#include "vmm/core/parallel_for.hpp"
#include "vmm/core/terminal.hpp"
#include "vmm/kvm/ioctl.hpp"

namespace vmm {

namespace {

// Setting up vCPUs on several threads wins only when each thread has a
// CPU of its own: measured on a 2-CPU PVM host (about 100 us of KVM time
// per vCPU), 2 threads took 32 vCPUs from ~3.1 ms to ~2.1 ms when the
// other CPU was free, broke even at about 8 vCPUs per thread, and when the
// other CPU was busy lost a scheduler tick (~4 ms) waiting for it. So: one
// thread per kVcpusPerSetupThread vCPUs (after the boot CPU), and at most
// one per two CPUs this process may run on, leaving the rest of the host
// its share (a 2-CPU host stays serial).
constexpr uint32_t kVcpusPerSetupThread = 8;

// How many threads create and configure vCPUs 1..count-1: the number in
// VMM_VCPU_SETUP_THREADS when set (1: serially, on the builder's thread),
// else as above.
uint32_t vcpu_setup_threads(uint32_t count) {
    if (const char* forced = std::getenv("VMM_VCPU_SETUP_THREADS")) {
        char* end = nullptr;
        unsigned long threads = std::strtoul(forced, &end, 10);
        if (*forced == '\0' || *end != '\0' || threads < 1 || threads > 1024) {
            throw Error(fmt::format(
                "VMM_VCPU_SETUP_THREADS={}: expected a number of threads from 1 to 1024", forced));
        }
        return uint32_t(threads);
    }
    uint32_t wanted = (count - 1) / kVcpusPerSetupThread;
    if (wanted < 2) {
        return 1;
    }
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    if (sched_getaffinity(0, sizeof(cpus), &cpus) != 0) {
        return 1;
    }
    return std::max(1u, std::min(wanted, uint32_t(CPU_COUNT(&cpus)) / 2));
}

// How many virtio devices the configuration asks for, in the order they get
// their slots: drives, network interfaces, console, rng.
size_t virtio_device_count(const VmConfig& config) {
    return config.drives.size() + config.nets.size() +
           (config.console == ConsoleKind::Virtio ? 1 : 0) + (config.rng ? 1 : 0);
}

std::vector<arch::VirtioMmioSlot> virtio_slots(const arch::PlatformLayout& layout, size_t count) {
    size_t available = layout.virtio_last_irq - layout.virtio_first_irq + 1;
    if (count > available) {
        throw Error(fmt::format("too many virtio devices: {} (at most {})", count, available));
    }
    std::vector<arch::VirtioMmioSlot> slots;
    for (size_t i = 0; i < count; ++i) {
        slots.push_back({layout.virtio_base + i * layout.virtio_slot_size, layout.virtio_slot_size,
                         uint32_t(layout.virtio_first_irq + i)});
    }
    return slots;
}

Bus& bus_of(Bus& pio, Bus& mmio, const arch::DevicePlace& place) {
    return place.bus == arch::BusKind::Pio ? pio : mmio;
}

// An edge on an interrupt line of the in-kernel controller.
std::function<void()> pulse(const VmFd& vm, uint32_t irq) {
    return [&vm, irq] {
        vm.set_irq_line(irq, true);
        vm.set_irq_line(irq, false);
    };
}

}  // namespace

// Fills a Machine step by step; a friend of Machine, so the steps below
// read in boot order without a constructor that does everything.
class MachineBuilder {
  public:
    MachineBuilder(const VmConfig& config, BootTrace& trace, EventLoop& loop)
        : config_(config), machine_(new Machine(config, trace, loop)), m_(*machine_) {}

    void kvm(std::unique_ptr<EmptyVm> empty);
    void memory();
    arch::BootSetup boot(const arch::BootFiles& files);
    void devices(MachineInputs& inputs);
    void vcpus(const arch::BootSetup& boot);
    Vcpu::Context vcpu_context(const VcpuFd& first);
    std::unique_ptr<Machine> done() { return std::move(machine_); }

    // Restoring a snapshot instead of booting (restore_machine()).
    std::vector<GuestRegionSpec> ram_regions() const { return m_.platform_->ram_regions(); }
    void check_cpu(const arch::VcpuState& state) const { m_.platform_->check_snapshot_cpu(state); }
    void restored_memory(GuestMemory memory);
    // Where each virtio device goes (boot() does it for a boot).
    void plan_slots();
    void restored_vcpus(const std::vector<arch::VcpuState>& states);
    void restored_devices(StateReader& state);
    void restored_vm(const arch::VmState& state, bool resume);

  private:
    // The memory slots (dirty logging as configured) and the interrupt
    // controller, for memory() and restored_memory().
    void register_memory();

    const VmConfig& config_;
    std::unique_ptr<Machine> machine_;
    Machine& m_;
    arch::PlatformLayout layout_{};
    std::vector<arch::VirtioMmioSlot> slots_;
};

std::unique_ptr<Machine> build_machine(const VmConfig& config, MachineInputs inputs,
                                       std::unique_ptr<EmptyVm> empty, BootTrace& trace,
                                       EventLoop& loop) {
    MachineBuilder builder(config, trace, loop);
    builder.kvm(std::move(empty));
    builder.memory();
    arch::BootSetup boot = builder.boot(*inputs.boot);
    builder.devices(inputs);
    builder.vcpus(boot);
    return builder.done();
}

// The same steps as build_machine(), with the snapshot's memory, vCPU and
// device state in place of a boot; reads what Machine::save_snapshot()
// wrote (machine_snapshot.cpp), checking it all before any vCPU runs.
std::unique_ptr<Machine> restore_machine(const VmConfig& config, MachineInputs inputs,
                                         std::unique_ptr<EmptyVm> empty, BootTrace& trace,
                                         EventLoop& loop, StateReader& state,
                                         const MemoryLoader& load_memory, bool resume) {
    MachineBuilder builder(config, trace, loop);
    builder.kvm(std::move(empty));

    StateReader memory = state.section("snapshot memory layout");
    std::vector<GuestRegionSpec> expected = builder.ram_regions();
    uint32_t regions = memory.u32();
    if (regions != expected.size()) {
        memory.fail(fmt::format("{} memory regions where this configuration has {}", regions,
                                expected.size()));
    }
    for (const GuestRegionSpec& region : expected) {
        uint64_t start = memory.u64(), size = memory.u64();
        if (start != region.start.value() || size != region.size) {
            memory.fail(
                fmt::format("a memory region {:#x}+{:#x} where this VMM lays out {:#x}+{:#x}",
                            start, size, region.start.value(), region.size));
        }
    }
    memory.expect_end();

    uint32_t count = state.u32();
    if (count != config.vcpu_count) {
        state.fail(fmt::format("{} vCPU states for {} vCPUs", count, config.vcpu_count));
    }
    std::vector<arch::VcpuState> vcpus;
    for (uint32_t i = 0; i < count; ++i) {
        StateReader vcpu = state.section(fmt::format("vCPU {} state", i));
        vcpus.push_back(arch::read_vcpu_state(vcpu));
        vcpu.expect_end();
        builder.check_cpu(vcpus.back());
    }
    StateReader vm_reader = state.section("VM state");
    arch::VmState vm = arch::read_vm_state(vm_reader);
    vm_reader.expect_end();

    builder.restored_memory(load_memory(expected));
    builder.plan_slots();
    builder.devices(inputs);
    builder.restored_vcpus(vcpus);
    builder.restored_vm(vm, resume);
    // Last: a device that finds an interrupt pending raises it on the
    // restored interrupt controller.
    builder.restored_devices(state);
    state.expect_end();
    return builder.done();
}

// KVM: the empty VM and the platform that will fill it.
void MachineBuilder::kvm(std::unique_ptr<EmptyVm> empty) {
    m_.kvm_ = empty ? std::move(empty) : std::make_unique<EmptyVm>(config_.kvm_device);
    int max_vcpus = m_.kvm_->max_vcpus;
    if (max_vcpus > 0 && config_.vcpu_count > uint32_t(max_vcpus)) {
        throw Error(fmt::format("--cpus {}: the host KVM supports at most {} vCPUs",
                                config_.vcpu_count, max_vcpus));
    }
    arch::PlatformOptions options;
    options.memory_bytes = config_.memory_mib << 20;
    options.vcpu_count = config_.vcpu_count;
    options.cpu_profile = config_.cpu_profile;
    options.cpuid_mask = config_.cpuid_mask;
    options.acpi = config_.acpi;
    m_.platform_ = std::make_unique<arch::Platform>(m_.kvm_->host, options);
    layout_ = m_.platform_->layout();
}

// Guest RAM and its memory slots, then the interrupt controller: once the
// in-kernel LAPIC exists, each slot change waits for an SRCU grace period.
void MachineBuilder::memory() {
    m_.memory_ = std::make_unique<GuestMemory>(GuestMemory::create(m_.platform_->ram_regions()));
    register_memory();
}

void MachineBuilder::restored_memory(GuestMemory memory) {
    m_.memory_ = std::make_unique<GuestMemory>(std::move(memory));
    register_memory();
}

void MachineBuilder::register_memory() {
    if (config_.huge_pages == HugePages::Transparent) {
        m_.memory_->advise_huge_pages();
    }
    uint32_t flags = config_.track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0;
    if (config_.track_dirty_pages) {
        m_.memory_->track_dirty_pages();  // what the VMM writes; KVM logs the guest's
    }
    uint32_t slot = 0;
    for (const auto& region : m_.memory_->regions()) {
        m_.kvm_->vm->set_user_memory_region(slot++, region.start(), region.size(),
                                            region.host_address(), flags);
    }
    m_.platform_->create_interrupt_controller(*m_.kvm_->vm);
}

// The kernel, initrd, command line and firmware tables. The virtio devices
// are not made yet, but their slots are known: the command line or the
// tables name them.
void MachineBuilder::plan_slots() {
    slots_ = virtio_slots(layout_, virtio_device_count(config_));
}

arch::BootSetup MachineBuilder::boot(const arch::BootFiles& files) {
    plan_slots();
    arch::BootRequest request;
    request.cmdline = config_.cmdline;
    request.console = config_.console;
    request.entry = config_.boot_entry;
    request.virtio_devices = slots_;
    if (!config_.drives.empty() && config_.drives.front().is_root) {
        const DriveConfig& root = config_.drives.front();
        std::string device = root.partuuid ? "PARTUUID=" + *root.partuuid : "/dev/vda";
        request.root = fmt::format("root={} {}", device, root.read_only ? "ro" : "rw");
    }
    return m_.platform_->setup_boot(*m_.memory_, files, request);
}

// The platform's devices, then the virtio devices in their slots.
void MachineBuilder::devices(MachineInputs& inputs) {
    const VmFd& vm = *m_.kvm_->vm;
    Bus& pio = m_.pio_bus_;
    Bus& mmio = m_.mmio_bus_;
    Machine& m = m_;

    // The guest's console output goes through writer threads, never written
    // on a vCPU or the I/O thread (vmm/base/async_writer.hpp): one for
    // stdout, made when first needed, and one for serial_out_path.
    auto stdout_writer = [&m] {
        if (!m.stdout_writer_) {
            m.stdout_writer_ = std::make_shared<AsyncWriter>(STDOUT_FILENO, "stdout");
        }
        return m.stdout_writer_;
    };
    m.serial_out_ = std::move(inputs.serial_out);
    m.serial_writer_ =
        m.serial_out_.valid()
            ? std::make_shared<AsyncWriter>(
                  m.serial_out_.get(), fmt::format("serial_out_path {}", *config_.serial_out_path))
            : stdout_writer();
    m.serial_ = std::make_shared<Serial8250>(
        pulse(vm, layout_.serial.irq),
        [&m, writer = m.serial_writer_](std::span<const uint8_t> bytes) {
            m.trace_.mark(BootTrace::Event::FirstSerialByte);
            return writer->write(bytes);
        });
    bus_of(pio, mmio, layout_.serial)
        .insert(layout_.serial.address, layout_.serial.size, m.serial_);

    if (layout_.keyboard) {
        auto reset = [&m] { m.stop_.request(exit_status::kGuestStopped, "guest reset (i8042)"); };
        m.i8042_ = std::make_shared<I8042>(reset, pulse(vm, layout_.keyboard->irq));
        bus_of(pio, mmio, *layout_.keyboard)
            .insert(layout_.keyboard->address, layout_.keyboard->size, m.i8042_);
    }
    DebugDevice::Callbacks debug{
        [&m](uint8_t status) {
            m.stop_.request(status, fmt::format("guest wrote exit status {}", status));
        },
        [&m] { m.trace_.mark(BootTrace::Event::BootTimer); },
    };
    for (const arch::DebugPlace& place : layout_.debug) {
        bus_of(pio, mmio, place.place)
            .insert(place.place.address, place.place.size,
                    std::make_shared<DebugDevice>(place.exit_offset, place.timer_offset, debug));
    }
    if (layout_.power_off) {
        auto power_off = [&m] {
            m.stop_.request(exit_status::kGuestStopped, "guest powered off (ACPI S5)");
        };
        bus_of(pio, mmio, *layout_.power_off)
            .insert(layout_.power_off->address, layout_.power_off->size,
                    std::make_shared<AcpiPowerOff>(power_off));
    }

    // In the order virtio_device_count() counts them.
    m.virtio_ = std::make_unique<VirtioIoDispatcher>(vm, mmio, *m.memory_);
    size_t slot = 0;
    for (size_t i = 0; i < config_.drives.size(); ++i) {
        const DriveConfig& drive = config_.drives[i];
        std::string id = drive.id.empty() ? fmt::format("vmm-drive{}", i) : drive.id;
        m.drive_transports_[id] =
            &m.virtio_->add(std::make_unique<BlockDevice>(std::move(inputs.disks[i]), id, drive.io,
                                                          drive.rate_limiter),
                            fmt::format("virtio-blk {}", id), slots_[slot++]);
    }
    for (size_t i = 0; i < config_.nets.size(); ++i) {
        const NetConfig& net = config_.nets[i];
        std::unique_ptr<Tap> tap = std::move(inputs.taps[i]);
        MacAddress mac = net.mac.value_or(MacAddress::random());
        std::string name = net.id.empty() ? fmt::format("net{}", i) : net.id;
        if (config_.verbose) {
            log_info("{}: tap '{}', MAC {}, MTU {}", name, tap->name(), mac.to_string(),
                     tap->mtu());
        }
        m.net_transports_[name] =
            &m.virtio_->add(std::make_unique<NetDevice>(std::move(tap), mac, name, net.mtu,
                                                        net.rx_rate_limiter, net.tx_rate_limiter),
                            fmt::format("virtio-net {}", name), slots_[slot++]);
    }
    if (config_.console == ConsoleKind::Virtio) {
        auto [cols, rows] = terminal_size(STDOUT_FILENO);
        auto console = std::make_unique<ConsoleDevice>(
            [writer = stdout_writer()](std::span<const uint8_t> bytes) {
                return writer->write(bytes);
            },
            cols, rows);
        m.virtio_console_ = console.get();
        m.virtio_->add(std::move(console), "virtio-console", slots_[slot++]);
    }
    if (config_.rng) {
        m.virtio_->add(std::make_unique<RngDevice>(), "virtio-rng", slots_[slot++]);
    }
}

// What every vCPU thread works with. Where KVM can coalesce port writes,
// the serial port's THR writes are queued while they do nothing but
// transmit (Serial8250::set_plain_transmit_listener), so a guest printing to
// its console exits once per byte (its LSR read) instead of twice; the ring
// is in `first`'s run area, and the vCPUs drain it after every KVM_RUN.
Vcpu::Context MachineBuilder::vcpu_context(const VcpuFd& first) {
    Vcpu::Context context{m_.pio_bus_, m_.mmio_bus_, *m_.memory_, m_.stop_, m_.trace_};
    const arch::DevicePlace& serial = layout_.serial;
    void* page = m_.kvm_->coalesced_pio_page > 0
                     ? first.run_area_page(static_cast<size_t>(m_.kvm_->coalesced_pio_page))
                     : nullptr;
    if (page == nullptr || serial.bus != arch::BusKind::Pio || !m_.serial_) {
        return context;
    }
    m_.serial_ring_ = std::make_unique<CoalescedPioRing>(
        page, [&pio = m_.pio_bus_](uint16_t port, std::span<const uint8_t> data) {
            pio.write(port, data);
        });
    context.pio_ring = m_.serial_ring_.get();
    log_debug("serial: THR writes coalesced while plain (KVM ring in run-area page {} of {} bytes)",
              m_.kvm_->coalesced_pio_page, first.run_area_size());
    const VmFd& vm = *m_.kvm_->vm;
    auto port = static_cast<uint16_t>(serial.address);  // THR: the port's first register
    m_.serial_->set_plain_transmit_listener([&vm, port](bool plain) {
        if (plain) {
            vm.register_coalesced_pio(port, 1);
        } else {
            vm.unregister_coalesced_pio(port, 1);
        }
    });
    return context;
}

// Every vCPU, the boot CPU first and alone (its configuration builds what
// the others share), then the others, on several threads where that wins
// (vcpu_setup_threads()). They are kept in id order, and none runs before
// Machine::start(). With --boot-trace, the time it took, split into calls
// into KVM and our own code, summed over the threads.
void MachineBuilder::vcpus(const arch::BootSetup& boot) {
    int64_t start = BootTrace::now_ns();
    int64_t start_kvm = thread_kvm_ns();
    uint32_t count = config_.vcpu_count;

    std::vector<std::unique_ptr<Vcpu>> made(count);
    VcpuFd first = m_.kvm_->vm->create_vcpu(0, m_.kvm_->vcpu_mmap_size);
    Vcpu::Context context = vcpu_context(first);
    auto make = [&](uint32_t id) {
        VcpuFd fd =
            id == 0 ? std::move(first) : m_.kvm_->vm->create_vcpu(id, m_.kvm_->vcpu_mmap_size);
        m_.platform_->configure_vcpu(fd, id, boot);
        made[id] = std::make_unique<Vcpu>(std::move(fd), context);
    };
    make(0);
    // On an error the vCPUs made so far are closed with `made`.
    ParallelTimes times = parallel_for(1, count, vcpu_setup_threads(count), make);
    m_.vcpus_ = std::move(made);

    BootTrace::VcpuSetup setup;
    setup.vcpus = count;
    setup.threads = times.threads;
    setup.wall_ns = BootTrace::now_ns() - start;
    setup.busy_ns = setup.wall_ns - times.wait_ns + times.worker_busy_ns;
    setup.kvm_ns = thread_kvm_ns() - start_kvm + times.worker_kvm_ns;
    m_.trace_.record_vcpu_setup(setup);
}

// Every vCPU made in id order, its CPUID, TSC frequency and registers from
// the snapshot instead of a boot.
void MachineBuilder::restored_vcpus(const std::vector<arch::VcpuState>& states) {
    if (states.empty()) {
        return;
    }
    VcpuFd first = m_.kvm_->vm->create_vcpu(0, m_.kvm_->vcpu_mmap_size);
    Vcpu::Context context = vcpu_context(first);
    for (uint32_t id = 0; id < states.size(); ++id) {
        VcpuFd fd =
            id == 0 ? std::move(first) : m_.kvm_->vm->create_vcpu(id, m_.kvm_->vcpu_mmap_size);
        m_.platform_->restore_new_vcpu(fd, states[id]);
        m_.vcpus_.push_back(std::make_unique<Vcpu>(std::move(fd), context));
    }
}

// The in-kernel PIC, IOAPIC, PIT and clock after the vCPUs. A machine that
// stays paused has its vCPUs parked before their first KVM_RUN (start()).
void MachineBuilder::restored_vm(const arch::VmState& state, bool resume) {
    m_.platform_->restore_vm(*m_.kvm_->vm, state);
    m_.paused_ = !resume;
}

// Serial port, keyboard controller and each virtio device, which must be
// the ones the snapshot names, in its order.
void MachineBuilder::restored_devices(StateReader& state) {
    StateReader serial = state.section("serial port state");
    m_.serial_->restore_state(serial);
    serial.expect_end();
    bool has_keyboard = state.boolean();
    if (has_keyboard != (m_.i8042_ != nullptr)) {
        state.fail("the keyboard controller is not on this platform as in the snapshot");
    }
    if (m_.i8042_) {
        StateReader keyboard = state.section("i8042 state");
        m_.i8042_->restore_state(keyboard);
        keyboard.expect_end();
    }
    const auto& transports = m_.virtio_->transports();
    uint32_t count = state.u32();
    if (count != transports.size()) {
        state.fail(fmt::format("{} virtio devices where the configuration makes {}", count,
                               transports.size()));
    }
    for (const auto& transport : transports) {
        std::string name = state.string(256);
        if (name != transport->name()) {
            state.fail(fmt::format("device '{}' where '{}' was expected", name, transport->name()));
        }
        StateReader device = state.section(fmt::format("{} state", name));
        transport->restore_state(device);
        device.expect_end();
    }
}

}  // namespace vmm
