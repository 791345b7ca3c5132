// Firecracker's API objects (../shared/reference/firecracker-api.yaml) read
// into the VMM's own configuration, and written back out for GET requests.
// Each parse_* validates the whole body before the caller applies anything.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "vmm/base/logger.hpp"
#include "vmm/config/config.hpp"
#include "vmm/config/snapshot_config.hpp"

namespace vmm::api {

struct MetricsConfig {
    std::string path;
    bool emit_id = false;
    std::map<std::string, std::string> properties;
};

// What the API configures besides the VM itself.
struct ServiceConfig {
    std::optional<LoggerConfig> logger;
    std::optional<MetricsConfig> metrics;
};

// Drive and interface ids: 1 to 64 ASCII letters, digits and '_'.
void validate_id(std::string_view id);

void apply_boot_source(const nlohmann::json& body, VmConfig& config);
// PUT: fields not given take their defaults; PATCH (`patch`): only the fields
// given change.
void apply_machine_config(const nlohmann::json& body, VmConfig& config, bool patch);

// `path_id` is the id in the URL, which the body's id must equal.
DriveConfig parse_drive(const nlohmann::json& body, std::string_view path_id);
// Adds the drive or replaces the one with its id; the root drive stays first
// (/dev/vda). Throws Error on a second root drive.
void insert_drive(VmConfig& config, DriveConfig drive);

// PATCH bodies: what changes on a running device.
struct PartialDrive {
    std::string id;
    std::optional<std::string> path_on_host;
    std::optional<RateLimiterUpdate> rate_limiter;
};
PartialDrive parse_partial_drive(const nlohmann::json& body, std::string_view path_id);

NetConfig parse_network_interface(const nlohmann::json& body, std::string_view path_id);
// Adds the interface or replaces the one with its id; throws Error when its
// MAC or tap is already used by another interface.
void insert_network_interface(VmConfig& config, NetConfig net);
struct PartialNetworkInterface {
    std::string id;
    RateLimiterUpdate rx_rate_limiter;  // buckets not given stay as they are
    RateLimiterUpdate tx_rate_limiter;
};
PartialNetworkInterface parse_partial_network_interface(const nlohmann::json& body,
                                                        std::string_view path_id);
// The RateLimiter object GET /vm/config shows: only the buckets that limit.
nlohmann::json render_rate_limiter(const RateLimiterConfig& limit);

LoggerConfig parse_logger(const nlohmann::json& body);
MetricsConfig parse_metrics(const nlohmann::json& body);
void apply_entropy(const nlohmann::json& body, VmConfig& config);
void apply_serial(const nlohmann::json& body, VmConfig& config);
// Validates a Vsock body, then refuses it: there is no vsock device yet.
[[noreturn]] void reject_vsock(const nlohmann::json& body);

enum class Action { InstanceStart, SendCtrlAltDel, FlushMetrics };
Action parse_action(const nlohmann::json& body);

enum class VmStateChange { Pause, Resume };
VmStateChange parse_vm_state(const nlohmann::json& body);

// PUT /snapshot/create and PUT /snapshot/load bodies.
SnapshotCreateParams parse_snapshot_create(const nlohmann::json& body);
SnapshotLoadParams parse_snapshot_load(const nlohmann::json& body);

nlohmann::json render_machine_config(const VmConfig& config);
nlohmann::json render_vm_config(const VmConfig& config, const ServiceConfig& services);

// A --config-file document: the sections of GET /vm/config ("boot-source",
// "drives", "machine-config", "network-interfaces", "logger", "metrics",
// "entropy", "serial"), applied in that document's meaning to `config`.
ServiceConfig apply_config_document(const nlohmann::json& document, VmConfig& config);

}  // namespace vmm::api
