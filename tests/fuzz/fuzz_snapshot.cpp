// libFuzzer target: a corrupt or hostile snapshot state file, the one PUT
// /snapshot/load reads. The file goes through parse_snapshot_bytes() (what
// read_snapshot_file() runs once the file is read), then its state is read
// in the order a load reads it, without KVM: the snapshot configuration
// (read_config_state(), validate_config()) as Instance::load_snapshot()
// does, then as restore_machine() and MachineBuilder::restored_devices() do
// (vm_builder.cpp): the memory layout, each vCPU's state, the VM's, the
// serial port, the i8042, and the virtio transports the configuration
// makes (virtio-blk on scratch images, virtio-net over a socket pair,
// virtio-console, virtio-rng, in the VMM's order and with its names) over
// 64 KiB of guest RAM. Every refusal must be an Error (StateError is one);
// anything else escaping, or a sanitizer report, is a finding. A restored
// machine then runs a little: reads of the serial and keyboard registers
// and of every transport's (config spaces too), a frame from the host
// network on each tap, two turns of the I/O thread over every transport.
// Then each device's state is saved again and must restore into a fresh
// device (a snapshot of a restored VM loads), and a driver reset of each
// transport must take.
//
// Input (little-endian):
//   u8 mode: bit 0 set: the payload is the state, wrapped here in a valid
//            header and CRC (so that mutations get past the CRC); clear:
//            the payload is a whole snapshot file, parsed as it is
//            bit 1 set: the platform has no i8042 (a port without one);
//            x86's has one
//            bit 2 set (with bit 0 clear): the file's last 8 bytes are
//            replaced by the CRC-64 of what precedes them, so that its
//            header (magic, version, architecture, size) is judged too
//   u32 payload length (clamped to what the input holds), the payload
//   guest RAM: the rest, at guest address 0 (64 KiB of RAM)
//
// Seeds: FUZZ_SNAPSHOT_WRITE_SEEDS=<dir> fuzz_snapshot writes them to <dir>
// (tests/fuzz/corpus/snapshot/) and exits. They are saved by the VMM's own
// writers (write_config_state(), write_vcpu_state(), the devices'
// save_state()) from devices a driver brought up here, with requests
// processed and others still pending in their queues.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "arch/x86_64/cpuid.hpp"
#include "arch/x86_64/e820.hpp"
#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/saved_state.hpp"
#include "devices/legacy/i8042.hpp"
#include "devices/legacy/serial_8250.hpp"
#include "devices/virtio/block/block_device.hpp"
#include "devices/virtio/block/block_request.hpp"
#include "devices/virtio/console/console_device.hpp"
#include "devices/virtio/mmio_transport.hpp"
#include "devices/virtio/net/net_device.hpp"
#include "devices/virtio/rng/rng_device.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "fuzz_support.hpp"
#include "tests/unit/net_test_backend.hpp"
#include "vmm/base/logger.hpp"
#include "vmm/config/config.hpp"
#include "vmm/core/snapshot_config_state.hpp"
#include "vmm/snapshot/crc64.hpp"
#include "vmm/snapshot/snapshot_file.hpp"

// validate_config() checks the mask through the arch port; the port's
// Platform needs KVM, so the fuzzer gives it the parser directly, as
// platform.cpp does (and fuzz_config.cpp).
namespace vmm::arch {
void check_cpu_feature_mask(const std::string& mask) {
    x86::parse_cpuid_mask(mask);
}
}  // namespace vmm::arch

namespace {

using vmm::GuestAddress;

constexpr uint8_t kModeWrapped = 1;
constexpr uint8_t kModeNoKeyboard = 2;
constexpr uint8_t kModeFixCrc = 4;
constexpr uint64_t kRamSize = 64 << 10;
constexpr uint64_t kImageSectors = 64;
// The x86 platform's virtio-mmio slots: one per IOAPIC pin from 5 on
// (platform.cpp, kVirtioFirstIrq..kVirtioLastIrq); more devices are refused
// (virtio_slots() in vm_builder.cpp).
constexpr size_t kMaxVirtioDevices = vmm::x86::kIoapicPins - 5;
const std::string kFileName = "fuzz";
// A MAC for an interface the configuration gives none: the VMM picks a
// random one, which no snapshot's device state matches.
constexpr std::array<uint8_t, 6> kDefaultMac = {0x06, 0, 0, 0, 0, 0x01};

// What the fake host's KVM offers and the seeds' vCPUs saw: an Intel CPU
// with a few leaf 1 features.
std::vector<vmm::CpuidEntry> host_cpuid() {
    return {
        {0, 0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69},  // "GenuineIntel"
        {1, 0, 0, 0x000806c1, 0x00010800, 0x80202001, 0x0f8bfbff},
        {7, 0, 1, 0, 0x00000029, 0, 0},
    };
}

// One scratch image per drive: a read-write DiskImage locks its file.
fuzz::ScratchImage& scratch(size_t index) {
    static std::vector<std::unique_ptr<fuzz::ScratchImage>> images;
    while (images.size() <= index) {
        images.push_back(std::make_unique<fuzz::ScratchImage>("snapshot", kImageSectors));
    }
    return *images[index];
}

// One virtio device of the configuration, as MachineBuilder::devices()
// makes it: enough to make it again for the round trip.
struct DeviceSpec {
    enum Kind { Block, Net, Console, Rng };
    DeviceSpec(Kind kind, std::string name) : kind(kind), name(std::move(name)) {}

    Kind kind;
    std::string name;  // the transport's
    std::string id;    // the device's (block id, net name)
    size_t index = 0;  // drive or interface number
    bool read_only = false;
    vmm::MacAddress mac;
    std::optional<uint16_t> mtu;
};

// In the order virtio_device_count() and MachineBuilder::devices() take
// them: drives, network interfaces, console, rng.
std::vector<DeviceSpec> device_specs(const vmm::VmConfig& config) {
    std::vector<DeviceSpec> specs;
    for (size_t i = 0; i < config.drives.size(); ++i) {
        const vmm::DriveConfig& drive = config.drives[i];
        std::string id = drive.id.empty() ? fmt::format("vmm-drive{}", i) : drive.id;
        DeviceSpec spec(DeviceSpec::Block, fmt::format("virtio-blk {}", id));
        spec.id = id;
        spec.index = i;
        spec.read_only = drive.read_only;
        specs.push_back(spec);
    }
    for (size_t i = 0; i < config.nets.size(); ++i) {
        const vmm::NetConfig& net = config.nets[i];
        std::string id = net.id.empty() ? fmt::format("net{}", i) : net.id;
        DeviceSpec spec(DeviceSpec::Net, fmt::format("virtio-net {}", id));
        spec.id = id;
        spec.index = i;
        spec.mac = net.mac.value_or(vmm::MacAddress{kDefaultMac});
        spec.mtu = net.mtu;
        specs.push_back(spec);
    }
    if (config.console == vmm::ConsoleKind::Virtio) {
        specs.emplace_back(DeviceSpec::Console, "virtio-console");
    }
    if (config.rng) {
        specs.emplace_back(DeviceSpec::Rng, "virtio-rng");
    }
    return specs;
}

// What the devices called back.
struct Events {
    unsigned serial_irqs = 0;
    unsigned keyboard_irqs = 0;
    unsigned resets = 0;
    size_t serial_bytes = 0;
    size_t console_bytes = 0;
};

// The restored machine's devices, over its own guest RAM. Members are
// destroyed last first: the transports before the taps and the memory they
// use, the devices before the events they count.
struct Devices {
    explicit Devices(bool keyboard)
        : memory(vmm::GuestMemory::create({{GuestAddress(0), kRamSize}})),
          serial(make_serial()),
          i8042(keyboard ? make_i8042() : nullptr) {}

    std::unique_ptr<vmm::Serial8250> make_serial() {
        return std::make_unique<vmm::Serial8250>([this] { ++events.serial_irqs; },
                                                 [this](std::span<const uint8_t> bytes) {
                                                     events.serial_bytes += bytes.size();
                                                     return bytes.size();
                                                 });
    }
    std::unique_ptr<vmm::I8042> make_i8042() {
        return std::make_unique<vmm::I8042>([this] { ++events.resets; },
                                            [this] { ++events.keyboard_irqs; });
    }
    // The device of `spec`, new, on the scratch image as it is (the
    // caller renews it).
    std::unique_ptr<vmm::MmioTransport> make_transport(const DeviceSpec& spec) {
        std::unique_ptr<vmm::VirtioDevice> device;
        switch (spec.kind) {
            case DeviceSpec::Block: {
                // The engine is the configuration's in the VMM; the synchronous
                // one finishes every request in the turn that takes it.
                auto image =
                    std::make_unique<vmm::DiskImage>(scratch(spec.index).path(), spec.read_only);
                device = std::make_unique<vmm::BlockDevice>(std::move(image), spec.id,
                                                            vmm::BlockDevice::Engine::Sync);
                break;
            }
            case DeviceSpec::Net: {
                while (taps.size() <= spec.index) {
                    taps.emplace_back();
                }
                device = std::make_unique<vmm::NetDevice>(
                    std::make_unique<test::SocketNetBackend>(taps[spec.index]), spec.mac, spec.id,
                    spec.mtu);
                break;
            }
            case DeviceSpec::Console: {
                auto made = std::make_unique<vmm::ConsoleDevice>(
                    [this](std::span<const uint8_t> bytes) {
                        events.console_bytes += bytes.size();
                        return bytes.size();
                    },
                    80, 25);
                console = made.get();
                device = std::move(made);
                break;
            }
            case DeviceSpec::Rng:
                device = std::make_unique<vmm::RngDevice>();
                break;
        }
        return std::make_unique<vmm::MmioTransport>(memory, std::move(device), spec.name);
    }
    void make_transports(const std::vector<DeviceSpec>& device_specs) {
        specs = device_specs;
        for (const DeviceSpec& spec : specs) {
            if (spec.kind == DeviceSpec::Block) {
                scratch(spec.index).renew();
            }
            transports.push_back(make_transport(spec));
        }
    }

    Events events;
    vmm::GuestMemory memory;
    std::unique_ptr<vmm::Serial8250> serial;
    std::unique_ptr<vmm::I8042> i8042;
    std::deque<test::SocketNetBackend::Shared> taps;
    vmm::ConsoleDevice* console = nullptr;  // the virtio-console's device, if any
    std::vector<DeviceSpec> specs;
    std::vector<std::unique_ptr<vmm::MmioTransport>> transports;
};

// One turn of the I/O thread: what VirtioIoDispatcher runs when a queue's
// eventfd or a backend's fd is ready.
void io_thread_turn(vmm::MmioTransport& transport) {
    for (size_t i = 0; i < transport.queue_count(); ++i) {
        if (fuzz::readable(transport.queue_event(i).fd())) {
            transport.process_queue_event(i);
        }
    }
    for (size_t i = 0; i < transport.backend_count(); ++i) {
        auto interest = transport.backend_interest(i);
        int fd = transport.backend_fd(i);
        if (fd >= 0 && interest.readable && fuzz::readable(fd)) {
            transport.process_backend_event(i);
        }
    }
}

void write_register(vmm::MmioTransport& transport, uint64_t offset, uint32_t value) {
    transport.write(offset, std::span(reinterpret_cast<const uint8_t*>(&value), 4));
}

uint32_t read_register(vmm::MmioTransport& transport, uint64_t offset) {
    uint32_t value = 0;
    transport.read(offset, std::span(reinterpret_cast<uint8_t*>(&value), 4));
    return value;
}

// A saved part read back into a fresh device must be taken whole: an Error
// here is a snapshot of a restored VM that does not load.
template <typename Device>
void round_trip(const Device& saved, Device& fresh, const char* what) {
    vmm::StateWriter out;
    saved.save_state(out);
    vmm::StateReader in(out.data(), what);
    try {
        fresh.restore_state(in);
        in.expect_end();
    } catch (const vmm::Error& e) {
        std::fprintf(stderr, "%s: saved state refused: %s\n", what, e.what());
        std::abort();
    }
}

// Runs the restored machine a little (a frame from the host network on
// every tap, the registers read, two turns of the I/O thread), then saves
// each device and restores it into a new one.
void exercise(Devices& devices) {
    uint8_t byte;
    for (uint64_t offset = 0; offset < 8; ++offset) {
        devices.serial->read(offset, std::span(&byte, 1));
    }
    if (devices.i8042) {
        devices.i8042->read(4, std::span(&byte, 1));
        devices.i8042->read(0, std::span(&byte, 1));
    }
    // The host network sends a frame to every interface.
    static const std::vector<uint8_t> frame(64, 0xa5);
    for (const auto& tap : devices.taps) {
        [[maybe_unused]] ssize_t n = ::write(tap.peer, frame.data(), frame.size());
    }
    for (auto& transport : devices.transports) {
        fuzz::check_status(transport->status());
        // The driver reads the registers and the device's config space
        // (restored MAC, link, console size).
        for (uint64_t offset = 0; offset < 0x140; offset += 4) {
            (void)read_register(*transport, offset);
        }
        io_thread_turn(*transport);
        io_thread_turn(*transport);
        fuzz::check_status(transport->status());
        (void)transport->metrics();
    }

    auto serial = devices.make_serial();
    round_trip(*devices.serial, *serial, "serial round trip");
    if (devices.i8042) {
        auto i8042 = devices.make_i8042();
        round_trip(*devices.i8042, *i8042, "i8042 round trip");
    }
    for (size_t i = 0; i < devices.transports.size(); ++i) {
        auto& transport = devices.transports[i];
        vmm::StateWriter out;
        transport->save_state(out);
        // The device goes first: a new disk image would not get the lock
        // the old one holds, a new tap replaces the old.
        transport.reset();
        transport = devices.make_transport(devices.specs[i]);
        vmm::StateReader in(out.data(), "transport round trip");
        try {
            transport->restore_state(in);
            in.expect_end();
        } catch (const vmm::Error& e) {
            std::fprintf(stderr, "%s: saved state refused: %s\n", devices.specs[i].name.c_str(),
                         e.what());
            std::abort();
        }
        fuzz::check_status(transport->status());
        io_thread_turn(*transport);
        // A driver reset takes whatever the device was doing.
        write_register(*transport, 0x70, 0);
        FUZZ_CHECK(transport->status() == 0);
        FUZZ_CHECK(read_register(*transport, 0x060) == 0);
    }
}

// Reads the state as Instance::load_snapshot() and restore_machine() do;
// throws Error where they refuse it.
void restore(std::span<const uint8_t> bytes, Devices& devices) {
    vmm::StateReader state(bytes, fmt::format("snapshot '{}'", kFileName));

    // Instance::load_snapshot().
    vmm::StateReader config_reader = state.section("snapshot configuration");
    vmm::VmConfig config = vmm::read_config_state(config_reader);
    vmm::validate_config(config);

    // restore_machine(): the memory layout the configuration makes.
    vmm::StateReader memory = state.section("snapshot memory layout");
    std::vector<vmm::GuestRegionSpec> expected =
        vmm::x86::guest_ram_regions(config.memory_mib << 20);
    uint32_t regions = memory.u32();
    if (regions != expected.size()) {
        memory.fail(fmt::format("{} memory regions where this configuration has {}", regions,
                                expected.size()));
    }
    for (const vmm::GuestRegionSpec& region : expected) {
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
    static const std::vector<vmm::CpuidEntry> host = host_cpuid();
    for (uint32_t i = 0; i < count; ++i) {
        vmm::StateReader vcpu = state.section(fmt::format("vCPU {} state", i));
        vmm::x86::VcpuState saved = vmm::x86::read_vcpu_state(vcpu);
        vcpu.expect_end();
        // Platform::check_snapshot_cpu() compares with the host's KVM: this
        // fake host's verdict is nobody's, only the reading counts.
        (void)vmm::x86::cpu_vendor(saved.cpuid);
        (void)vmm::x86::features_missing(saved.cpuid, host);
    }
    vmm::StateReader vm_reader = state.section("VM state");
    (void)vmm::x86::read_vm_state(vm_reader);
    vm_reader.expect_end();

    // plan_slots(), devices().
    std::vector<DeviceSpec> specs = device_specs(config);
    if (specs.size() > kMaxVirtioDevices) {
        throw vmm::Error(fmt::format("too many virtio devices: {} (at most {})", specs.size(),
                                     kMaxVirtioDevices));
    }
    devices.make_transports(specs);

    // MachineBuilder::restored_devices().
    vmm::StateReader serial = state.section("serial port state");
    devices.serial->restore_state(serial);
    serial.expect_end();
    bool has_keyboard = state.boolean();
    if (has_keyboard != (devices.i8042 != nullptr)) {
        state.fail("the keyboard controller is not on this platform as in the snapshot");
    }
    if (devices.i8042) {
        vmm::StateReader keyboard = state.section("i8042 state");
        devices.i8042->restore_state(keyboard);
        keyboard.expect_end();
    }
    uint32_t transports = state.u32();
    if (transports != devices.transports.size()) {
        state.fail(fmt::format("{} virtio devices where the configuration makes {}", transports,
                               devices.transports.size()));
    }
    for (const auto& transport : devices.transports) {
        std::string name = state.string(256);
        if (name != transport->name()) {
            state.fail(fmt::format("device '{}' where '{}' was expected", name, transport->name()));
        }
        vmm::StateReader device = state.section(fmt::format("{} state", name));
        transport->restore_state(device);
        device.expect_end();
    }
    state.expect_end();
}

// Replaces a file's last 8 bytes by the CRC-64 of the rest.
void set_crc(std::vector<uint8_t>& file) {
    uint64_t crc = vmm::crc64(std::span(file).first(file.size() - 8));
    std::memcpy(file.data() + file.size() - 8, &crc, 8);
}

// A snapshot file around `state`, as write_snapshot_file() lays it out.
std::vector<uint8_t> wrap(std::span<const uint8_t> state,
                          uint32_t version = vmm::kSnapshotFormatVersion) {
    std::vector<uint8_t> file = {'V', 'M', 'M', 'S', 'N', 'A', 'P', 0x1a};
    auto put = [&file](auto value) {
        const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
        file.insert(file.end(), bytes, bytes + sizeof(value));
    };
    put(version);
    put(uint32_t(vmm::host_snapshot_arch()));
    put(uint64_t(state.size()));
    file.insert(file.end(), state.begin(), state.end());
    put(uint64_t(0));
    set_crc(file);
    return file;
}

// ---- Seeds: small VMs saved by the VMM's writers. ----

// The driver side of one split virtqueue in the seed's guest RAM.
struct Ring {
    uint16_t size;
    uint64_t desc, avail, used;
    uint64_t data;  // where the next buffer goes
    uint16_t next_desc = 0;
    uint16_t avail_idx = 0;
};

struct Buffer {
    uint32_t length;
    bool writable;
    std::vector<uint8_t> bytes = {};  // the start of a readable buffer
};

// Makes a chain of new buffers available.
void post(const vmm::GuestMemory& memory, Ring& ring, const std::vector<Buffer>& buffers) {
    uint16_t head = ring.next_desc;
    for (size_t i = 0; i < buffers.size(); ++i) {
        const Buffer& buffer = buffers[i];
        uint16_t index = ring.next_desc++;
        bool last = i + 1 == buffers.size();
        uint16_t flags = uint16_t((last ? 0 : 1) | (buffer.writable ? 2 : 0));
        uint64_t address = ring.data;
        ring.data += (buffer.length + 15) & ~15u;
        if (!buffer.bytes.empty()) {
            memory.write(GuestAddress(address), buffer.bytes);
        }
        uint64_t entry = ring.desc + 16 * index;
        memory.write_obj(GuestAddress(entry), address);
        memory.write_obj(GuestAddress(entry + 8), buffer.length);
        memory.write_obj(GuestAddress(entry + 12), flags);
        memory.write_obj(GuestAddress(entry + 14), uint16_t(last ? 0 : ring.next_desc));
    }
    memory.write_obj(GuestAddress(ring.avail + 4 + 2 * (ring.avail_idx % ring.size)), head);
    ++ring.avail_idx;
    memory.write_obj(GuestAddress(ring.avail + 2), ring.avail_idx);
}

// Device `slot`'s queues of 8 entries: 4 KiB of RAM from 0x1000 + slot *
// 0x1000, 0x200 bytes of rings per queue (up to 2) first, then the buffers
// (0x600 bytes per queue, 0xc00 for a single one).
std::vector<Ring> rings(size_t slot, size_t count, uint64_t misalign = 0) {
    std::vector<Ring> result;
    uint64_t base = 0x1000 + slot * 0x1000;
    for (size_t q = 0; q < count; ++q) {
        uint64_t at = base + q * 0x200;
        result.push_back({8, at + misalign, at + 0x80, at + 0x100, base + 0x400 + q * 0x600});
    }
    return result;
}

// A driver's initialisation up to `last` (a status bit), with `features`.
void bring_up(vmm::MmioTransport& transport, const std::vector<Ring>& queues, uint64_t features,
              uint32_t last = vmm::VIRTIO_STATUS_DRIVER_OK) {
    using namespace vmm;
    uint32_t status = 0;
    for (uint32_t bit : {VIRTIO_STATUS_ACKNOWLEDGE, VIRTIO_STATUS_DRIVER}) {
        write_register(transport, 0x70, status |= bit);
    }
    for (uint32_t half = 0; half < 2; ++half) {
        write_register(transport, 0x24, half);
        write_register(transport, 0x20, uint32_t(features >> (32 * half)));
    }
    if (last == VIRTIO_STATUS_DRIVER) {
        return;
    }
    write_register(transport, 0x70, status |= VIRTIO_STATUS_FEATURES_OK);
    for (uint32_t q = 0; q < queues.size(); ++q) {
        const Ring& ring = queues[q];
        write_register(transport, 0x30, q);
        write_register(transport, 0x38, ring.size);
        for (auto [reg, address] : {std::pair{0x80, ring.desc}, std::pair{0x90, ring.avail},
                                    std::pair{0xa0, ring.used}}) {
            write_register(transport, reg, uint32_t(address));
            write_register(transport, reg + 4, uint32_t(address >> 32));
        }
        write_register(transport, 0x44, 1);
    }
    if (last == VIRTIO_STATUS_DRIVER_OK) {
        write_register(transport, 0x70, status | VIRTIO_STATUS_DRIVER_OK);
    }
}

uint64_t bits(std::initializer_list<unsigned> list) {
    uint64_t result = 0;
    for (unsigned bit : list) {
        result |= 1ull << bit;
    }
    return result;
}

vmm::x86::VcpuState seed_vcpu() {
    vmm::x86::VcpuState vcpu;
    std::memset(&vcpu.mp_state, 0, sizeof(vcpu.mp_state));
    std::memset(&vcpu.regs, 0, sizeof(vcpu.regs));
    std::memset(&vcpu.sregs, 0, sizeof(vcpu.sregs));
    std::memset(&vcpu.xsave, 0, sizeof(vcpu.xsave));
    std::memset(&vcpu.xcrs, 0, sizeof(vcpu.xcrs));
    std::memset(&vcpu.debugregs, 0, sizeof(vcpu.debugregs));
    std::memset(&vcpu.lapic, 0, sizeof(vcpu.lapic));
    std::memset(&vcpu.events, 0, sizeof(vcpu.events));
    vcpu.regs.rip = 0x100000;
    vcpu.xcrs.nr_xcrs = 1;
    vcpu.xcrs.xcrs[0].value = 1;
    vcpu.msrs = {{0x10, 12345}, {0xc0000080, 0x500}};
    vcpu.cpuid = host_cpuid();
    vcpu.tsc_khz = 2000000;
    return vcpu;
}

vmm::x86::VmDeviceState seed_vm() {
    vmm::x86::VmDeviceState vm;
    std::memset(&vm, 0, sizeof(vm));
    vm.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
    vm.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    vm.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
    return vm;
}

// One seed: a machine built from `config`, its devices brought up by
// `drive`, saved as Machine::save_snapshot() saves it.
struct Seed {
    const char* name;
    uint8_t mode;
    vmm::VmConfig config;
    void (*drive)(Devices&);
    uint32_t version = vmm::kSnapshotFormatVersion;  // of a whole file
};

std::vector<uint8_t> save_seed(const Seed& seed) {
    Devices devices((seed.mode & kModeNoKeyboard) == 0);
    devices.make_transports(device_specs(seed.config));
    seed.drive(devices);

    vmm::StateWriter state;
    vmm::StateWriter config;
    vmm::write_config_state(config, seed.config);
    state.section(config);
    vmm::StateWriter memory;
    auto regions = vmm::x86::guest_ram_regions(seed.config.memory_mib << 20);
    memory.u32(uint32_t(regions.size()));
    for (const auto& region : regions) {
        memory.u64(region.start.value());
        memory.u64(region.size);
    }
    state.section(memory);
    state.u32(seed.config.vcpu_count);
    for (uint32_t i = 0; i < seed.config.vcpu_count; ++i) {
        vmm::StateWriter vcpu;
        vmm::x86::write_vcpu_state(vcpu, seed_vcpu());
        state.section(vcpu);
    }
    vmm::StateWriter vm;
    vmm::x86::write_vm_state(vm, seed_vm());
    state.section(vm);
    vmm::StateWriter serial;
    devices.serial->save_state(serial);
    state.section(serial);
    state.boolean(devices.i8042 != nullptr);
    if (devices.i8042) {
        vmm::StateWriter keyboard;
        devices.i8042->save_state(keyboard);
        state.section(keyboard);
    }
    state.u32(uint32_t(devices.transports.size()));
    for (const auto& transport : devices.transports) {
        state.string(transport->name());
        vmm::StateWriter device;
        transport->save_state(device);
        state.section(device);
    }

    std::vector<uint8_t> payload =
        seed.mode & kModeWrapped ? state.take() : wrap(state.data(), seed.version);
    std::vector<uint8_t> ram(kRamSize);
    devices.memory.read(GuestAddress(0), ram);
    while (!ram.empty() && ram.back() == 0) {
        ram.pop_back();
    }
    std::vector<uint8_t> input = {seed.mode};
    uint32_t length = uint32_t(payload.size());
    input.insert(input.end(), reinterpret_cast<uint8_t*>(&length),
                 reinterpret_cast<uint8_t*>(&length) + 4);
    input.insert(input.end(), payload.begin(), payload.end());
    input.insert(input.end(), ram.begin(), ram.end());
    return input;
}

vmm::VmConfig base_config() {
    vmm::VmConfig config;
    config.kernel_path = "/k";
    config.memory_mib = 128;
    return config;
}

// Serial: the driver's registers set, input waiting.
void drive_serial(Devices& devices) {
    auto out = [&](uint64_t offset, uint8_t value) {
        devices.serial->write(offset, std::span(&value, 1));
    };
    out(3, 0x80);
    out(0, 0x01);
    out(1, 0x00);
    out(3, 0x03);
    out(4, 0x0b);
    out(2, 0xc7);
    out(1, 0x03);
    const uint8_t input[] = {'b', 'o', 'o', 't'};
    devices.serial->enqueue_input(input);
}

// virtio-rng: one request taken, one waiting.
void drive_rng(Devices& devices, vmm::MmioTransport& rng, size_t slot) {
    auto queues = rings(slot, 1);
    bring_up(rng, queues, bits({vmm::VIRTIO_F_VERSION_1}));
    post(devices.memory, queues[0], {{64, true}});
    write_register(rng, 0x50, 0);
    io_thread_turn(rng);
    post(devices.memory, queues[0], {{32, true}, {16, true}});
}

void seed_rng(Devices& devices) {
    drive_serial(devices);
    drive_rng(devices, *devices.transports[0], 0);
}

// virtio-blk: a write done, a read and a flush waiting.
void drive_block(Devices& devices, vmm::MmioTransport& block, size_t slot) {
    auto queues = rings(slot, 1);
    bring_up(block, queues, bits({vmm::VIRTIO_F_VERSION_1, vmm::VIRTIO_F_RING_EVENT_IDX}));
    auto header = [](uint32_t type, uint64_t sector) {
        std::vector<uint8_t> bytes(16);
        std::memcpy(bytes.data(), &type, 4);
        std::memcpy(bytes.data() + 8, &sector, 8);
        return bytes;
    };
    post(devices.memory, queues[0],
         {{16, false, header(vmm::kBlkTypeOut, 2)}, {512, false, {'d', 'a', 't', 'a'}}, {1, true}});
    write_register(block, 0x50, 0);
    io_thread_turn(block);
    post(devices.memory, queues[0],
         {{16, false, header(vmm::kBlkTypeIn, 2)}, {1024, true}, {1, true}});
    post(devices.memory, queues[0], {{16, false, header(vmm::kBlkTypeFlush, 0)}, {1, true}});
}

// virtio-net: a frame sent, another waiting to be sent, a receive buffer.
void drive_net(Devices& devices, vmm::MmioTransport& net, size_t slot, bool rx_buffers) {
    using namespace vmm;
    auto queues = rings(slot, 2);
    bring_up(net, queues,
             bits({VIRTIO_F_VERSION_1, VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS,
                   VIRTIO_NET_F_MRG_RXBUF, VIRTIO_F_RING_INDIRECT_DESC}));
    std::vector<uint8_t> frame(NetBackend::kVnetHeaderSize + 60, 0x5a);
    std::fill_n(frame.begin(), NetBackend::kVnetHeaderSize, 0);
    post(devices.memory, queues[1], {{uint32_t(frame.size()), false, frame}});
    write_register(net, 0x50, 1);
    io_thread_turn(net);
    post(devices.memory, queues[1], {{uint32_t(frame.size()), false, frame}});
    if (rx_buffers) {
        post(devices.memory, queues[0], {{1024, true}});
    } else {
        // A frame from the host with nowhere to go: staged in the device.
        std::vector<uint8_t> host_frame(60, 0xa5);
        [[maybe_unused]] ssize_t n =
            ::write(devices.taps[0].peer, host_frame.data(), host_frame.size());
        io_thread_turn(net);
    }
}

// virtio-console: output sent, more waiting, host input not yet delivered.
void drive_console(Devices& devices, vmm::MmioTransport& console, size_t slot) {
    auto queues = rings(slot, 2);
    bring_up(console, queues, bits({vmm::VIRTIO_F_VERSION_1}));
    post(devices.memory, queues[1], {{5, false, {'h', 'e', 'l', 'l', 'o'}}});
    write_register(console, 0x50, 1);
    io_thread_turn(console);
    post(devices.memory, queues[1], {{3, false, {'b', 'y', 'e'}}});
    const uint8_t input[] = {'l', 's', '\n'};
    devices.console->input()->enqueue_input(input);
}

void seed_all_devices(Devices& devices) {
    drive_serial(devices);
    drive_block(devices, *devices.transports[0], 0);
    drive_net(devices, *devices.transports[1], 1, true);
    drive_console(devices, *devices.transports[2], 2);
    drive_rng(devices, *devices.transports[3], 3);
}

// No i8042; a read-only drive the driver is still negotiating with; an rng
// whose activation failed (misaligned descriptor table: NEEDS_RESET).
void seed_half_done(Devices& devices) {
    drive_serial(devices);
    auto block = rings(0, 1);
    bring_up(*devices.transports[0], block, bits({vmm::VIRTIO_F_VERSION_1}),
             vmm::VIRTIO_STATUS_DRIVER);
    auto rng = rings(1, 1, 4);
    bring_up(*devices.transports[1], rng, bits({vmm::VIRTIO_F_VERSION_1}));
}

void seed_net_staged(Devices& devices) {
    drive_net(devices, *devices.transports[0], 0, false);
}

std::vector<Seed> seeds() {
    std::vector<Seed> list;
    vmm::VmConfig rng = base_config();
    list.push_back({"rng", kModeWrapped, rng, seed_rng});
    list.push_back({"rng_file", 0, rng, seed_rng});
    list.push_back({"rng_file_version_2", kModeFixCrc, rng, seed_rng, 2});

    vmm::VmConfig all = base_config();
    all.cmdline = "console=hvc0 reboot=k";
    all.initrd_path = "/i";
    all.acpi = true;
    all.cpuid_mask = "avx2";
    all.console = vmm::ConsoleKind::Virtio;
    vmm::DriveConfig root;
    root.path = "/r";
    root.id = "rootfs";
    root.is_root = true;
    all.drives.push_back(root);
    vmm::NetConfig eth;
    eth.tap_name = "tap0";
    eth.id = "eth0";
    eth.mac = vmm::MacAddress{kDefaultMac};
    eth.mtu = 1400;
    all.nets.push_back(eth);
    list.push_back({"all_devices", kModeWrapped, all, seed_all_devices});

    vmm::VmConfig half = base_config();
    half.vcpu_count = 2;
    vmm::DriveConfig data;
    data.path = "/d";
    data.read_only = true;
    half.drives.push_back(data);
    list.push_back({"no_i8042_half_done", kModeWrapped | kModeNoKeyboard, half, seed_half_done});

    vmm::VmConfig net = base_config();
    net.rng = false;
    vmm::NetConfig plain;
    plain.tap_name = "tap1";
    plain.mac = vmm::MacAddress{kDefaultMac};
    net.nets.push_back(plain);
    list.push_back({"net_staged_frame", kModeWrapped, net, seed_net_staged});
    return list;
}

void write_seeds(const std::string& directory) {
    for (const Seed& seed : seeds()) {
        std::vector<uint8_t> input = save_seed(seed);
        std::string path = directory + "/" + seed.name;
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(input.data()), std::streamsize(input.size()));
        if (!out) {
            std::fprintf(stderr, "cannot write %s\n", path.c_str());
            std::exit(1);
        }
        std::printf("%s: %zu bytes\n", path.c_str(), input.size());
    }
}

}  // namespace

// The transports log every first violation of a device: written to
// /dev/null here.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    vmm::LoggerConfig quiet;
    quiet.log_path = "/dev/null";
    quiet.level = vmm::LogLevel::Trace;
    vmm::Logger::instance().configure(quiet);
    if (const char* directory = std::getenv("FUZZ_SNAPSHOT_WRITE_SEEDS")) {
        write_seeds(directory);
        std::exit(0);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 5) {
        return -1;
    }
    uint8_t mode = data[0];
    uint32_t length;
    std::memcpy(&length, data + 1, 4);
    length = uint32_t(std::min<size_t>(length, size - 5));
    std::span<const uint8_t> payload(data + 5, length);
    std::span<const uint8_t> ram(data + 5 + length, std::min<size_t>(size - 5 - length, kRamSize));

    std::vector<uint8_t> made;
    std::span<const uint8_t> file = payload;
    if (mode & kModeWrapped) {
        made = wrap(payload);
        file = made;
    } else if ((mode & kModeFixCrc) && payload.size() >= 8) {
        made.assign(payload.begin(), payload.end());
        set_crc(made);
        file = made;
    }
    std::vector<uint8_t> state;
    try {
        state = vmm::parse_snapshot_bytes(file, kFileName);
    } catch (const vmm::Error&) {
        FUZZ_CHECK(!(mode & kModeWrapped));  // a valid container is taken
        return 0;
    }
    // The state is what lies between the header and the CRC.
    FUZZ_CHECK(file.size() == state.size() + 32);
    FUZZ_CHECK(std::equal(state.begin(), state.end(), file.begin() + 24));

    Devices devices((mode & kModeNoKeyboard) == 0);
    devices.memory.write(GuestAddress(0), ram);
    try {
        restore(state, devices);
    } catch (const vmm::Error&) {
        return 0;  // refused, as the VMM refuses it
    }
    exercise(devices);
    return 0;
}
