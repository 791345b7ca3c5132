#include "vmm/api/firecracker_model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "vmm/api/json_object.hpp"
#include "vmm/base/error.hpp"

namespace vmm::api {

namespace {

using nlohmann::json;

// Firecracker's field types: vcpu_count is a u8, mem_size_mib a usize.
constexpr uint64_t kU8Max = 255;

// Firecracker's schema gives every TokenBucket field as a non-negative int64.
constexpr uint64_t kBucketFieldMax = INT64_MAX;

// A TokenBucket (size and refill_time required); zero in either means
// "no limit", as in Firecracker.
TokenBucketConfig parse_bucket(const json& value) {
    JsonObject bucket(value, "TokenBucket", {"size", "one_time_burst", "refill_time"});
    TokenBucketConfig result;
    result.size = bucket.uint("size", 0, kBucketFieldMax);
    result.one_time_burst = bucket.optional_uint("one_time_burst", 0, kBucketFieldMax).value_or(0);
    result.refill_time_ms = bucket.uint("refill_time", 0, kBucketFieldMax);
    return result;
}

// A RateLimiter's buckets, each only when given. `where` ("drive rootfs:
// rate_limiter") prefixes a refusal so that it names the field.
RateLimiterUpdate parse_rate_limiter_update(const json& value, std::string_view where) {
    try {
        JsonObject limiter(value, "RateLimiter", {"bandwidth", "ops"});
        RateLimiterUpdate result;
        if (const json* bucket = limiter.optional_value("bandwidth")) {
            result.bandwidth = parse_bucket(*bucket);
        }
        if (const json* bucket = limiter.optional_value("ops")) {
            result.ops = parse_bucket(*bucket);
        }
        return result;
    } catch (const Error& e) {
        throw Error(fmt::format("{}: {}", where, e.what()));
    }
}

std::optional<RateLimiterUpdate> parse_optional_update(const JsonObject& object,
                                                       std::string_view field,
                                                       std::string_view owner) {
    const json* value = object.optional_value(field);
    if (value == nullptr) {
        return std::nullopt;
    }
    return parse_rate_limiter_update(*value, fmt::format("{}: {}", owner, field));
}

// A PUT's RateLimiter: buckets not given do not limit.
RateLimiterConfig parse_rate_limiter(const JsonObject& object, std::string_view field,
                                     std::string_view owner) {
    RateLimiterConfig result;
    if (std::optional<RateLimiterUpdate> update = parse_optional_update(object, field, owner)) {
        result.bandwidth = update->bandwidth.value_or(TokenBucketConfig{});
        result.ops = update->ops.value_or(TokenBucketConfig{});
    }
    return result;
}

// For devices without a limiter: a real limit would not be enforced.
void refuse_rate_limit(const RateLimiterConfig& limit, std::string_view what) {
    if (limit.limits()) {
        throw Error(fmt::format(
            "{}: rate limiters are not supported on this device, so this limit would not be "
            "enforced; leave it out (or give buckets with size 0)",
            what));
    }
}

json render_bucket(const TokenBucketConfig& bucket) {
    return {{"size", bucket.size},
            {"one_time_burst", bucket.one_time_burst},
            {"refill_time", bucket.refill_time_ms}};
}

void check_path_id(std::string_view path_id, const std::string& body_id) {
    if (path_id != body_id) {
        throw Error(
            fmt::format("The id from the path [{}] does not match the id from the body [{}]!",
                        path_id, body_id));
    }
}

}  // namespace

void validate_id(std::string_view id) {
    bool valid = !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
    });
    if (!valid) {
        throw Error(fmt::format(
            "Invalid ID: '{}' (an id is 1 to 64 ASCII letters, digits or underscores)", id));
    }
}

void apply_boot_source(const json& body, VmConfig& config) {
    JsonObject source(body, "BootSource", {"kernel_image_path", "boot_args", "initrd_path"});
    std::string kernel = source.string("kernel_image_path");
    std::optional<std::string> args = source.optional_string("boot_args");
    std::optional<std::string> initrd = source.optional_string("initrd_path");
    if (kernel.empty()) {
        throw Error("kernel_image_path is empty");
    }
    config.kernel_path = kernel;
    config.cmdline = args;
    config.initrd_path = initrd;
}

void apply_machine_config(const json& body, VmConfig& config, bool patch) {
    JsonObject machine(
        body, "MachineConfiguration",
        {"vcpu_count", "mem_size_mib", "smt", "cpu_template", "track_dirty_pages", "huge_pages"});
    // Read everything first: a bad field leaves the configuration untouched.
    std::optional<uint64_t> vcpus = patch ? machine.optional_uint("vcpu_count", 0, kU8Max)
                                          : machine.uint("vcpu_count", 0, kU8Max);
    std::optional<uint64_t> memory = patch ? machine.optional_uint("mem_size_mib", 0, UINT64_MAX)
                                           : machine.uint("mem_size_mib", 0, UINT64_MAX);
    std::optional<bool> smt = machine.optional_bool("smt");
    std::optional<std::string> cpu_template =
        machine.optional_enum("cpu_template", {"C3", "T2", "T2S", "T2CL", "T2A", "V1N1", "None"});
    std::optional<bool> dirty = machine.optional_bool("track_dirty_pages");
    std::optional<std::string> huge_pages =
        machine.optional_enum("huge_pages", {"None", "Transparent", "2M"});

    uint64_t new_vcpus = vcpus.value_or(config.vcpu_count);
    uint64_t new_memory = memory.value_or(config.memory_mib);
    bool new_smt = smt.value_or(false);
    if (new_vcpus < 1 || new_vcpus > kMaxVcpus || (new_smt && new_vcpus > 1 && new_vcpus % 2)) {
        throw Error(fmt::format(
            "The vCPU number is invalid: it can only be 1 or an even number when SMT is enabled "
            "(vcpu_count {}, allowed 1 to {})",
            new_vcpus, kMaxVcpus));
    }
    if (new_smt) {
        throw Error(
            "smt is not supported yet: vCPUs are presented as one thread per core; set smt to "
            "false");
    }
    if (new_memory < kMinMemoryMib) {
        throw Error(fmt::format("The memory size (MiB) is invalid: {} (at least {})", new_memory,
                                kMinMemoryMib));
    }
    if (cpu_template && *cpu_template != "None") {
        throw Error(fmt::format(
            "cpu_template {} is not supported: CPU templates are not implemented; use None or "
            "leave it out",
            *cpu_template));
    }
    if (huge_pages == "2M") {
        throw Error(
            "huge_pages 2M (hugetlbfs) is not supported yet; use None or Transparent (THP)");
    }
    config.vcpu_count = uint32_t(new_vcpus);
    config.memory_mib = new_memory;
    if (!patch || dirty) {
        config.track_dirty_pages = dirty.value_or(false);
    }
    if (!patch || huge_pages) {
        config.huge_pages = huge_pages == "Transparent" ? HugePages::Transparent : HugePages::None;
    }
}

DriveConfig parse_drive(const json& body, std::string_view path_id) {
    validate_id(path_id);
    JsonObject drive(body, "Drive",
                     {"drive_id", "partuuid", "is_root_device", "cache_type", "is_read_only",
                      "path_on_host", "rate_limiter", "io_engine", "socket"});
    DriveConfig result;
    result.id = drive.string("drive_id");
    check_path_id(path_id, result.id);
    result.is_root = drive.boolean("is_root_device");
    result.partuuid = drive.optional_string("partuuid");
    std::optional<std::string> cache = drive.optional_enum("cache_type", {"Unsafe", "Writeback"});
    result.cache_writeback = cache == "Writeback";
    result.read_only = drive.optional_bool("is_read_only").value_or(false);
    std::optional<std::string> path = drive.optional_string("path_on_host");
    result.rate_limiter =
        parse_rate_limiter(drive, "rate_limiter", fmt::format("drive {}", result.id));
    std::optional<std::string> engine = drive.optional_enum("io_engine", {"Sync", "Async"});
    std::optional<std::string> socket = drive.optional_string("socket");
    if (socket) {
        throw Error(fmt::format("drive {}: vhost-user block devices (socket) are not supported",
                                result.id));
    }
    if (!path || path->empty()) {
        throw Error(
            fmt::format("drive {}: path_on_host is required for a virtio-block drive", result.id));
    }
    result.path = *path;
    // Firecracker's default engine is Sync.
    result.io = engine == "Async" ? BlockEngineKind::Uring : BlockEngineKind::Sync;
    if (result.partuuid && !result.is_root) {
        result.partuuid.reset();  // "taken into account only if is_root_device"
    }
    return result;
}

void insert_drive(VmConfig& config, DriveConfig drive) {
    auto same_id = [&](const DriveConfig& d) { return d.id == drive.id; };
    for (const auto& other : config.drives) {
        if (other.is_root && drive.is_root && other.id != drive.id) {
            throw Error(fmt::format("A root block device already exists! (drive {})", other.id));
        }
    }
    auto existing = std::find_if(config.drives.begin(), config.drives.end(), same_id);
    if (existing != config.drives.end()) {
        config.drives.erase(existing);
    }
    if (drive.is_root) {
        config.drives.insert(config.drives.begin(), std::move(drive));
    } else {
        config.drives.push_back(std::move(drive));
    }
}

PartialDrive parse_partial_drive(const json& body, std::string_view path_id) {
    validate_id(path_id);
    JsonObject drive(body, "PartialDrive", {"drive_id", "path_on_host", "rate_limiter"});
    PartialDrive result;
    result.id = drive.string("drive_id");
    check_path_id(path_id, result.id);
    result.path_on_host = drive.optional_string("path_on_host");
    result.rate_limiter =
        parse_optional_update(drive, "rate_limiter", fmt::format("drive {}", result.id));
    return result;
}

NetConfig parse_network_interface(const json& body, std::string_view path_id) {
    validate_id(path_id);
    JsonObject iface(
        body, "NetworkInterface",
        {"iface_id", "guest_mac", "host_dev_name", "mtu", "rx_rate_limiter", "tx_rate_limiter"});
    NetConfig result;
    result.id = iface.string("iface_id");
    check_path_id(path_id, result.id);
    result.tap_name = iface.string("host_dev_name");
    std::optional<std::string> mac = iface.optional_string("guest_mac");
    std::optional<uint64_t> mtu = iface.optional_uint("mtu", 68, 65535);
    std::string owner = fmt::format("network interface {}", result.id);
    result.rx_rate_limiter = parse_rate_limiter(iface, "rx_rate_limiter", owner);
    result.tx_rate_limiter = parse_rate_limiter(iface, "tx_rate_limiter", owner);
    if (result.tap_name.empty() || result.tap_name.size() >= 16) {
        throw Error(
            fmt::format("network interface {}: host_dev_name '{}' is not a valid tap name "
                        "(1 to 15 characters)",
                        result.id, result.tap_name));
    }
    if (mac) {
        try {
            result.mac = MacAddress::parse(*mac);
        } catch (const Error& e) {
            throw Error(fmt::format("network interface {}: guest_mac: {}", result.id, e.what()));
        }
    }
    if (mtu) {
        result.mtu = uint16_t(*mtu);
    }
    return result;
}

void insert_network_interface(VmConfig& config, NetConfig net) {
    for (const auto& other : config.nets) {
        if (other.id == net.id) {
            continue;
        }
        if (net.mac && other.mac && *net.mac == *other.mac) {
            throw Error(fmt::format("The MAC address {} is already in use by interface {}",
                                    net.mac->to_string(), other.id));
        }
        if (other.tap_name == net.tap_name) {
            throw Error(fmt::format("The host device name {} is already in use by interface {}",
                                    net.tap_name, other.id));
        }
    }
    auto existing = std::find_if(config.nets.begin(), config.nets.end(),
                                 [&](const NetConfig& n) { return n.id == net.id; });
    if (existing != config.nets.end()) {
        *existing = std::move(net);
    } else {
        config.nets.push_back(std::move(net));
    }
}

PartialNetworkInterface parse_partial_network_interface(const json& body,
                                                        std::string_view path_id) {
    validate_id(path_id);
    JsonObject iface(body, "PartialNetworkInterface",
                     {"iface_id", "rx_rate_limiter", "tx_rate_limiter"});
    PartialNetworkInterface result;
    result.id = iface.string("iface_id");
    check_path_id(path_id, result.id);
    std::string owner = fmt::format("network interface {}", result.id);
    result.rx_rate_limiter =
        parse_optional_update(iface, "rx_rate_limiter", owner).value_or(RateLimiterUpdate{});
    result.tx_rate_limiter =
        parse_optional_update(iface, "tx_rate_limiter", owner).value_or(RateLimiterUpdate{});
    return result;
}

LoggerConfig parse_logger(const json& body) {
    JsonObject logger(body, "Logger",
                      {"log_path", "level", "show_level", "show_log_origin", "module"});
    LoggerConfig result;
    result.log_path = logger.optional_string("log_path");
    if (std::optional<std::string> level = logger.optional_string("level")) {
        std::optional<LogLevel> parsed = parse_log_level(*level);
        if (!parsed) {
            throw_body_error(fmt::format(
                "unknown variant `{}` for `level`, expected one of `Error`, `Warning`, `Info`, "
                "`Debug`, `Trace`, `Off`",
                *level));
        }
        result.level = *parsed;
    }
    result.show_level = logger.optional_bool("show_level").value_or(false);
    result.show_log_origin = logger.optional_bool("show_log_origin").value_or(false);
    result.module = logger.optional_string("module");
    return result;
}

MetricsConfig parse_metrics(const json& body) {
    JsonObject metrics(body, "Metrics", {"metrics_path", "emit_id", "properties"});
    MetricsConfig result;
    result.path = metrics.string("metrics_path");
    if (result.path.empty()) {
        throw Error("metrics_path is empty");
    }
    result.emit_id = metrics.optional_bool("emit_id").value_or(false);
    if (const json* properties = metrics.optional_value("properties")) {
        if (!properties->is_object()) {
            throw_body_error("invalid type for `properties`, expected a map of strings");
        }
        for (const auto& [key, value] : properties->items()) {
            if (!value.is_string()) {
                throw_body_error(
                    fmt::format("invalid type for `properties.{}`, expected a string", key));
            }
            result.properties[key] = value.get<std::string>();
        }
    }
    return result;
}

void apply_entropy(const json& body, VmConfig& config) {
    JsonObject entropy(body, "EntropyDevice", {"rate_limiter"});
    refuse_rate_limit(parse_rate_limiter(entropy, "rate_limiter", "entropy device"),
                      "entropy device");
    config.rng = true;
}

void apply_serial(const json& body, VmConfig& config) {
    JsonObject serial(body, "SerialDevice", {"serial_out_path", "rate_limiter"});
    std::optional<std::string> path = serial.optional_string("serial_out_path");
    const json* bucket = serial.optional_value("rate_limiter");
    if (bucket != nullptr && parse_bucket(*bucket).limits()) {
        refuse_rate_limit(RateLimiterConfig{parse_bucket(*bucket), {}}, "serial device");
    }
    if (path && path->empty()) {
        throw Error("serial_out_path is empty");
    }
    config.serial_out_path = path;
}

void reject_vsock(const json& body) {
    JsonObject vsock(body, "Vsock", {"guest_cid", "uds_path", "vsock_id"});
    vsock.uint("guest_cid", 3, UINT32_MAX);
    vsock.string("uds_path");
    vsock.optional_string("vsock_id");
    throw Error(
        "vsock is not supported yet: this VMM has no vsock device, so the configuration was not "
        "applied");
}

Action parse_action(const json& body) {
    JsonObject action(body, "InstanceActionInfo", {"action_type"});
    if (!action.has("action_type")) {
        action.string("action_type");  // throws "missing field"
    }
    std::string type =
        *action.optional_enum("action_type", {"FlushMetrics", "InstanceStart", "SendCtrlAltDel"});
    return type == "InstanceStart"    ? Action::InstanceStart
           : type == "SendCtrlAltDel" ? Action::SendCtrlAltDel
                                      : Action::FlushMetrics;
}

VmStateChange parse_vm_state(const json& body) {
    JsonObject vm(body, "Vm", {"state"});
    if (!vm.has("state")) {
        vm.string("state");  // throws "missing field"
    }
    return *vm.optional_enum("state", {"Paused", "Resumed"}) == "Paused" ? VmStateChange::Pause
                                                                         : VmStateChange::Resume;
}

SnapshotCreateParams parse_snapshot_create(const json& body) {
    JsonObject object(body, "SnapshotCreateParams",
                      {"snapshot_path", "mem_file_path", "snapshot_type", "version"});
    SnapshotCreateParams params;
    params.snapshot_path = object.string("snapshot_path");
    params.mem_file_path = object.string("mem_file_path");
    if (object.optional_enum("snapshot_type", {"Full", "Diff"}).value_or("Full") == "Diff") {
        params.type = SnapshotType::Diff;
    }
    // Older clients send the target version; there is one format.
    object.optional_string("version");
    if (params.snapshot_path.empty() || params.mem_file_path.empty()) {
        throw Error("snapshot_path and mem_file_path must not be empty");
    }
    return params;
}

SnapshotLoadParams parse_snapshot_load(const json& body) {
    JsonObject object(body, "SnapshotLoadParams",
                      {"snapshot_path", "mem_file_path", "mem_backend", "enable_diff_snapshots",
                       "track_dirty_pages", "resume_vm", "network_overrides", "vsock_override"});
    SnapshotLoadParams params;
    params.snapshot_path = object.string("snapshot_path");
    const json* backend = object.optional_value("mem_backend");
    std::optional<std::string> mem_file = object.optional_string("mem_file_path");
    if ((backend != nullptr) == mem_file.has_value()) {
        throw_body_error(
            "missing field: either `mem_backend` or `mem_file_path` is required (exactly one)");
    }
    if (backend != nullptr) {
        JsonObject memory(*backend, "MemoryBackend", {"backend_type", "backend_path"});
        if (!memory.has("backend_type")) {
            memory.string("backend_type");  // throws "missing field"
        }
        if (*memory.optional_enum("backend_type", {"File", "Uffd"}) == "Uffd") {
            params.backend = MemoryBackendType::Uffd;
        }
        params.backend_path = memory.string("backend_path");
    } else {
        params.backend_path = *mem_file;
    }
    params.track_dirty_pages = object.optional_bool("track_dirty_pages").value_or(false) ||
                               object.optional_bool("enable_diff_snapshots").value_or(false);
    params.resume_vm = object.optional_bool("resume_vm").value_or(false);
    if (const json* overrides = object.optional_value("network_overrides")) {
        if (!overrides->is_array()) {
            throw_body_error("invalid type: network_overrides, expected a sequence");
        }
        for (const json& item : *overrides) {
            JsonObject entry(item, "NetworkOverride", {"iface_id", "host_dev_name"});
            params.network_overrides.push_back(
                {entry.string("iface_id"), entry.string("host_dev_name")});
        }
    }
    if (object.has("vsock_override")) {
        throw Error("vsock_override: this VMM has no vsock device yet");
    }
    if (params.snapshot_path.empty() || params.backend_path.empty()) {
        throw Error("snapshot_path and the memory backend's path must not be empty");
    }
    return params;
}

json render_machine_config(const VmConfig& config) {
    return json{
        {"vcpu_count", config.vcpu_count},
        {"mem_size_mib", config.memory_mib},
        {"smt", false},
        {"track_dirty_pages", config.track_dirty_pages},
        {"huge_pages", config.huge_pages == HugePages::Transparent ? "Transparent" : "None"},
    };
}

json render_rate_limiter(const RateLimiterConfig& limit) {
    json result = json::object();
    if (limit.bandwidth.limits()) {
        result["bandwidth"] = render_bucket(limit.bandwidth);
    }
    if (limit.ops.limits()) {
        result["ops"] = render_bucket(limit.ops);
    }
    return result;
}

json render_vm_config(const VmConfig& config, const ServiceConfig& services) {
    json document = json::object();
    if (!config.kernel_path.empty()) {
        json source{{"kernel_image_path", config.kernel_path}};
        if (config.cmdline) {
            source["boot_args"] = *config.cmdline;
        }
        if (config.initrd_path) {
            source["initrd_path"] = *config.initrd_path;
        }
        document["boot-source"] = source;
    }
    document["machine-config"] = render_machine_config(config);
    json drives = json::array();
    for (const auto& drive : config.drives) {
        json d{{"drive_id", drive.id},
               {"is_root_device", drive.is_root},
               {"cache_type", drive.cache_writeback ? "Writeback" : "Unsafe"},
               {"is_read_only", drive.read_only},
               {"path_on_host", drive.path}};
        if (drive.partuuid) {
            d["partuuid"] = *drive.partuuid;
        }
        if (drive.io == BlockEngineKind::Sync) {
            d["io_engine"] = "Sync";
        } else if (drive.io == BlockEngineKind::Uring) {
            d["io_engine"] = "Async";
        }
        if (drive.rate_limiter.limits()) {
            d["rate_limiter"] = render_rate_limiter(drive.rate_limiter);
        }
        drives.push_back(d);
    }
    document["drives"] = drives;
    json nets = json::array();
    for (const auto& net : config.nets) {
        json n{{"iface_id", net.id}, {"host_dev_name", net.tap_name}};
        if (net.mac) {
            n["guest_mac"] = net.mac->to_string();
        }
        if (net.mtu) {
            n["mtu"] = *net.mtu;
        }
        if (net.rx_rate_limiter.limits()) {
            n["rx_rate_limiter"] = render_rate_limiter(net.rx_rate_limiter);
        }
        if (net.tx_rate_limiter.limits()) {
            n["tx_rate_limiter"] = render_rate_limiter(net.tx_rate_limiter);
        }
        nets.push_back(n);
    }
    document["network-interfaces"] = nets;
    if (config.rng) {
        document["entropy"] = json::object();
    }
    if (services.logger) {
        const LoggerConfig& logger = *services.logger;
        json l{{"level", std::string(log_level_name(logger.level))},
               {"show_level", logger.show_level},
               {"show_log_origin", logger.show_log_origin}};
        if (logger.log_path) {
            l["log_path"] = *logger.log_path;
        }
        if (logger.module) {
            l["module"] = *logger.module;
        }
        document["logger"] = l;
    }
    if (services.metrics) {
        json m{{"metrics_path", services.metrics->path}};
        if (services.metrics->emit_id) {
            m["emit_id"] = true;
        }
        if (!services.metrics->properties.empty()) {
            m["properties"] = services.metrics->properties;
        }
        document["metrics"] = m;
    }
    return document;
}

ServiceConfig apply_config_document(const json& document, VmConfig& config) {
    JsonObject sections(document, "VmResources",
                        {"boot-source", "drives", "machine-config", "network-interfaces", "logger",
                         "metrics", "entropy", "serial", "vsock", "balloon", "mmds-config",
                         "cpu-config", "pmem", "memory-hotplug"});
    for (const char* unsupported :
         {"balloon", "mmds-config", "cpu-config", "pmem", "memory-hotplug"}) {
        if (sections.has(unsupported)) {
            throw Error(fmt::format("\"{}\" is not supported by this VMM", unsupported));
        }
    }
    ServiceConfig services;
    if (const json* logger = sections.optional_value("logger")) {
        services.logger = parse_logger(*logger);
    }
    if (const json* metrics = sections.optional_value("metrics")) {
        services.metrics = parse_metrics(*metrics);
    }
    if (const json* machine = sections.optional_value("machine-config")) {
        apply_machine_config(*machine, config, false);
    }
    if (!sections.has("boot-source")) {
        throw Error("the configuration has no \"boot-source\" (kernel_image_path)");
    }
    apply_boot_source(*sections.optional_value("boot-source"), config);
    // Each item of a list, with its id (empty when missing; parsing says so).
    // Through the API a second PUT of an id replaces the first; in one file
    // the same id twice is a mistake that would drop the first silently.
    auto each = [&](const char* name, const char* id_field, auto apply) {
        const json* list = sections.optional_value(name);
        if (list == nullptr) {
            return;
        }
        if (!list->is_array()) {
            throw_body_error(fmt::format("invalid type for `{}`, expected a sequence", name));
        }
        std::set<std::string> seen;
        for (const json& item : *list) {
            std::string id =
                item.is_object() && item.contains(id_field) && (*item.find(id_field)).is_string()
                    ? (*item.find(id_field)).get<std::string>()
                    : std::string();
            if (!id.empty() && !seen.insert(id).second) {
                throw Error(fmt::format("\"{}\": {} \"{}\" is given twice", name, id_field, id));
            }
            apply(item, id);
        }
    };
    each("drives", "drive_id", [&](const json& item, const std::string& id) {
        insert_drive(config, parse_drive(item, id));
    });
    each("network-interfaces", "iface_id", [&](const json& item, const std::string& id) {
        insert_network_interface(config, parse_network_interface(item, id));
    });
    if (const json* entropy = sections.optional_value("entropy")) {
        apply_entropy(*entropy, config);
    }
    if (const json* serial = sections.optional_value("serial")) {
        apply_serial(*serial, config);
    }
    if (const json* vsock = sections.optional_value("vsock")) {
        reject_vsock(*vsock);
    }
    return services;
}

}  // namespace vmm::api
