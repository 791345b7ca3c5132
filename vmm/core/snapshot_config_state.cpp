#include "vmm/core/snapshot_config_state.hpp"

namespace vmm {

namespace {

constexpr size_t kMaxPath = 4096;
constexpr size_t kMaxText = 64 << 10;  // a command line, a CPUID mask
constexpr uint32_t kMaxDevices = 64;

void write_optional(StateWriter& out, const std::optional<std::string>& text) {
    out.boolean(text.has_value());
    if (text) {
        out.string(*text);
    }
}

std::optional<std::string> read_optional(StateReader& in, size_t max) {
    if (!in.boolean()) {
        return std::nullopt;
    }
    return in.string(max);
}

// An enum written as its value; refused when above `last`.
template <typename E>
E read_enum(StateReader& in, E last, const char* what) {
    uint8_t value = in.u8();
    if (value > uint8_t(last)) {
        in.fail(fmt::format("{} {} is not one this VMM writes", what, value));
    }
    return E(value);
}

// A rate limiter's buckets as configured (a restored one starts full).
void write_limiter(StateWriter& out, const RateLimiterConfig& limiter) {
    for (const TokenBucketConfig* bucket : {&limiter.bandwidth, &limiter.ops}) {
        out.u64(bucket->size);
        out.u64(bucket->one_time_burst);
        out.u64(bucket->refill_time_ms);
    }
}

RateLimiterConfig read_limiter(StateReader& in) {
    RateLimiterConfig limiter;
    for (TokenBucketConfig* bucket : {&limiter.bandwidth, &limiter.ops}) {
        bucket->size = in.u64();
        bucket->one_time_burst = in.u64();
        bucket->refill_time_ms = in.u64();
    }
    return limiter;
}

}  // namespace

void write_config_state(StateWriter& out, const VmConfig& config) {
    out.string(config.kernel_path);
    write_optional(out, config.initrd_path);
    write_optional(out, config.cmdline);
    out.u64(config.memory_mib);
    out.u32(config.vcpu_count);
    out.u8(uint8_t(config.huge_pages));
    out.boolean(config.track_dirty_pages);
    out.u8(uint8_t(config.cpu_profile));
    out.string(config.cpuid_mask);
    out.u32(uint32_t(config.drives.size()));
    for (const DriveConfig& drive : config.drives) {
        out.string(drive.path);
        out.string(drive.id);
        out.boolean(drive.read_only);
        out.boolean(drive.is_root);
        out.u8(uint8_t(drive.io));
        write_optional(out, drive.partuuid);
        out.boolean(drive.cache_writeback);
        write_limiter(out, drive.rate_limiter);
    }
    out.u32(uint32_t(config.nets.size()));
    for (const NetConfig& net : config.nets) {
        out.string(net.tap_name);
        out.boolean(net.mac.has_value());
        if (net.mac) {
            for (uint8_t byte : net.mac->bytes) {
                out.u8(byte);
            }
        }
        out.string(net.id);
        out.boolean(net.mtu.has_value());
        out.u16(net.mtu.value_or(0));
        write_limiter(out, net.rx_rate_limiter);
        write_limiter(out, net.tx_rate_limiter);
    }
    out.u8(uint8_t(config.console));
    write_optional(out, config.serial_out_path);
    out.boolean(config.rng);
    out.boolean(config.acpi);
    out.u8(uint8_t(config.boot_entry));
}

VmConfig read_config_state(StateReader& in) {
    VmConfig config;
    config.kernel_path = in.string(kMaxPath);
    config.initrd_path = read_optional(in, kMaxPath);
    config.cmdline = read_optional(in, kMaxText);
    config.memory_mib = in.u64();
    config.vcpu_count = in.u32();
    config.huge_pages = read_enum(in, HugePages::Transparent, "huge page mode");
    config.track_dirty_pages = in.boolean();
    config.cpu_profile = read_enum(in, CpuProfileChoice::Pvm, "CPU profile");
    config.cpuid_mask = in.string(kMaxText);
    uint32_t drives = in.u32();
    if (drives > kMaxDevices) {
        in.fail(fmt::format("{} drives", drives));
    }
    for (uint32_t i = 0; i < drives; ++i) {
        DriveConfig drive;
        drive.path = in.string(kMaxPath);
        drive.id = in.string(kMaxPath);
        drive.read_only = in.boolean();
        drive.is_root = in.boolean();
        drive.io = read_enum(in, BlockEngineKind::Auto, "block engine");
        drive.partuuid = read_optional(in, kMaxPath);
        drive.cache_writeback = in.boolean();
        drive.rate_limiter = read_limiter(in);
        config.drives.push_back(std::move(drive));
    }
    uint32_t nets = in.u32();
    if (nets > kMaxDevices) {
        in.fail(fmt::format("{} network interfaces", nets));
    }
    for (uint32_t i = 0; i < nets; ++i) {
        NetConfig net;
        net.tap_name = in.string(kMaxPath);
        if (in.boolean()) {
            MacAddress mac;
            for (uint8_t& byte : mac.bytes) {
                byte = in.u8();
            }
            net.mac = mac;
        }
        net.id = in.string(kMaxPath);
        bool has_mtu = in.boolean();
        uint16_t mtu = in.u16();
        if (has_mtu) {
            net.mtu = mtu;
        }
        net.rx_rate_limiter = read_limiter(in);
        net.tx_rate_limiter = read_limiter(in);
        config.nets.push_back(std::move(net));
    }
    config.console = read_enum(in, ConsoleKind::Virtio, "console kind");
    config.serial_out_path = read_optional(in, kMaxPath);
    config.rng = in.boolean();
    config.acpi = in.boolean();
    config.boot_entry = read_enum(in, arch::BootEntry::Pvh, "boot entry");
    in.expect_end();
    return config;
}

}  // namespace vmm
