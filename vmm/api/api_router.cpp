#include "vmm/api/api_router.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "vmm/api/json_object.hpp"
#include "vmm/base/error.hpp"
#include "vmm/base/input_file.hpp"
#include "vmm/base/logger.hpp"

namespace vmm::api {

namespace {

using nlohmann::json;

constexpr const char* kVmmVersion = "0.1.0";
// The Firecracker API version this VMM implements (firecracker-api.yaml).
constexpr const char* kApiVersion = "1.17.0";

HttpResponse no_content() {
    return HttpResponse{204, ""};
}

HttpResponse ok(const json& body) {
    return HttpResponse{200, body.dump()};
}

// Firecracker opens the files at PUT time, so a typo is reported at once.
// Without waiting: this runs on the loop that serves the API and the devices.
void check_openable(const std::string& path, bool writable, std::string_view what,
                    InputKind kind = InputKind::RegularFile) {
    open_input_file(path, writable ? O_RDWR : O_RDONLY, what, kind);
}

// "/drives/rootfs" with prefix "/drives/" -> "rootfs"; nullopt otherwise.
std::optional<std::string> path_parameter(const std::string& path, std::string_view prefix) {
    if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0) {
        return std::nullopt;
    }
    std::string rest = path.substr(prefix.size());
    if (rest.find('/') != std::string::npos) {
        return std::nullopt;
    }
    return rest;
}

bool has_prefix(const std::string& path, std::string_view prefix) {
    return path == prefix || (path.compare(0, prefix.size(), prefix) == 0 &&
                              path.size() > prefix.size() && path[prefix.size()] == '/');
}

}  // namespace

ApiRouter::ApiRouter(VmmControl& control, std::string instance_id)
    : control_(control), instance_id_(std::move(instance_id)) {}

void ApiRouter::require_pre_boot() const {
    if (control_.state() != InstanceState::NotStarted) {
        throw Error("The requested operation is not supported after starting the microVM.");
    }
}

void ApiRouter::require_post_boot() const {
    if (control_.state() == InstanceState::NotStarted) {
        throw Error("The requested operation is not supported before starting the microVM.");
    }
}

void ApiRouter::count(const std::string& endpoint, bool failed) {
    ++counters_[endpoint + "_count"];
    if (failed) {
        ++counters_[endpoint + "_fails"];
    }
}

json ApiRouter::metrics() const {
    return json(counters_);
}

HttpResponse ApiRouter::handle(const HttpRequest& request) {
    std::string path = request.target.substr(0, request.target.find('?'));
    // "put_drives", "get_vm", ...: the method and the path's first segment.
    if (path.empty() || path[0] != '/') {
        count("other", true);
        return fault_response(400, fmt::format("Invalid request path: {}.", path));
    }
    // Bounded: a client cannot grow the counters with made-up methods or paths.
    std::string endpoint = request.method == "GET"     ? "get"
                           : request.method == "PUT"   ? "put"
                           : request.method == "PATCH" ? "patch"
                                                       : "other";
    std::string segment = path.substr(1, path.find('/', 1) - 1);
    bool known = false;
    for (const char* name :
         {"actions", "boot-source", "drives", "entropy", "logger", "machine-config", "metrics",
          "network-interfaces", "serial", "snapshot", "version", "vm", "vsock"}) {
        known = known || segment == name;
    }
    endpoint += "_" + (path == "/" ? std::string("root") : known ? segment : std::string("other"));
    std::replace(endpoint.begin(), endpoint.end(), '-', '_');
    try {
        HttpResponse response = route(request.method, path, request.body);
        count(endpoint, false);
        log_debug("API: {} {}: {}", request.method, path, response.status);
        return response;
    } catch (const Error& e) {
        count(endpoint, true);
        log_info("API: {} {}: 400: {}", request.method, path, e.what());
        return fault_response(400, e.what());
    }
}

HttpResponse ApiRouter::get_instance_info() const {
    InstanceState now = control_.state();
    const char* state = now == InstanceState::NotStarted ? "Not started"
                        : now == InstanceState::Paused   ? "Paused"
                                                         : "Running";
    return ok(json{
        {"app_name", "vmm"}, {"id", instance_id_}, {"state", state}, {"vmm_version", kVmmVersion}});
}

HttpResponse ApiRouter::put_action(const json& body) {
    switch (parse_action(body)) {
        case Action::InstanceStart: {
            require_pre_boot();
            if (control_.config().kernel_path.empty()) {
                throw Error(
                    "Cannot start microvm without kernel configuration (PUT /boot-source).");
            }
            validate_config(control_.config());
            control_.start();
            return no_content();
        }
        case Action::SendCtrlAltDel:
            require_post_boot();
            control_.send_ctrl_alt_del();
            return no_content();
        case Action::FlushMetrics:
            control_.flush_metrics();
            return no_content();
    }
    throw Error("unknown action");
}

HttpResponse ApiRouter::patch_vm(const json& body) {
    VmStateChange change = parse_vm_state(body);
    require_post_boot();
    if (change == VmStateChange::Pause) {
        control_.pause();
    } else {
        control_.resume();
    }
    return no_content();
}

HttpResponse ApiRouter::route(const std::string& method, const std::string& path,
                              const std::string& body) {
    auto json_body = [&] { return parse_json_body(body); };
    bool get = method == "GET", put = method == "PUT", patch = method == "PATCH";

    if (path == "/" && get) {
        return get_instance_info();
    }
    if (path == "/version" && get) {
        return ok(json{{"firecracker_version", kApiVersion}});
    }
    if (path == "/vm/config" && get) {
        return ok(render_vm_config(control_.config(), control_.services()));
    }
    if (path == "/machine-config") {
        if (get) {
            return ok(render_machine_config(control_.config()));
        }
        if (put || patch) {
            json parsed = json_body();
            require_pre_boot();
            VmConfig updated = control_.config();
            apply_machine_config(parsed, updated, patch);
            control_.set_config(std::move(updated));
            return no_content();
        }
    }
    if (path == "/boot-source" && put) {
        json parsed = json_body();
        require_pre_boot();
        VmConfig updated = control_.config();
        apply_boot_source(parsed, updated);
        check_openable(updated.kernel_path, false, "kernel_image_path");
        if (updated.initrd_path) {
            check_openable(*updated.initrd_path, false, "initrd_path");
        }
        control_.set_config(std::move(updated));
        return no_content();
    }
    if (auto id = path_parameter(path, "/drives/")) {
        if (put) {
            json parsed = json_body();
            require_pre_boot();
            DriveConfig drive = parse_drive(parsed, *id);
            VmConfig updated = control_.config();
            insert_drive(updated, drive);
            check_openable(drive.path, !drive.read_only, fmt::format("drive {}", drive.id),
                           InputKind::RegularFileOrBlockDevice);
            control_.set_config(std::move(updated));
            return no_content();
        }
        if (patch) {
            PartialDrive drive = parse_partial_drive(json_body(), *id);
            require_post_boot();
            auto known =
                std::find_if(control_.config().drives.begin(), control_.config().drives.end(),
                             [&](const DriveConfig& d) { return d.id == drive.id; });
            if (known == control_.config().drives.end()) {
                throw Error(fmt::format("drive {} does not exist", drive.id));
            }
            if (drive.path_on_host && *drive.path_on_host != known->path) {
                control_.update_drive_path(drive.id, *drive.path_on_host);
            }
            if (drive.rate_limiter) {
                control_.update_drive_rate_limiter(drive.id, *drive.rate_limiter);
            }
            return no_content();
        }
    }
    if (auto id = path_parameter(path, "/network-interfaces/")) {
        if (put) {
            json parsed = json_body();
            require_pre_boot();
            NetConfig net = parse_network_interface(parsed, *id);
            VmConfig updated = control_.config();
            insert_network_interface(updated, net);
            // Opening it now reports a missing tap or permission at once.
            control_.check_tap(net.tap_name);
            control_.set_config(std::move(updated));
            return no_content();
        }
        if (patch) {
            PartialNetworkInterface iface = parse_partial_network_interface(json_body(), *id);
            require_post_boot();
            bool known = std::any_of(control_.config().nets.begin(), control_.config().nets.end(),
                                     [&](const NetConfig& n) { return n.id == *id; });
            if (!known) {
                throw Error(fmt::format("network interface {} does not exist", *id));
            }
            control_.update_net_rate_limiters(iface.id, iface.rx_rate_limiter,
                                              iface.tx_rate_limiter);
            return no_content();
        }
    }
    if (path == "/actions" && put) {
        return put_action(json_body());
    }
    if (path == "/vm" && patch) {
        return patch_vm(json_body());
    }
    if (path == "/snapshot/create" && put) {
        SnapshotCreateParams params = parse_snapshot_create(json_body());
        require_post_boot();
        control_.create_snapshot(params);
        return no_content();
    }
    if (path == "/snapshot/load" && put) {
        SnapshotLoadParams params = parse_snapshot_load(json_body());
        require_pre_boot();
        control_.load_snapshot(params);
        return no_content();
    }
    if (path == "/logger" && put) {
        LoggerConfig logger = parse_logger(json_body());
        require_pre_boot();
        control_.configure_logger(logger);
        return no_content();
    }
    if (path == "/metrics" && put) {
        MetricsConfig metrics = parse_metrics(json_body());
        require_pre_boot();
        if (control_.services().metrics) {
            throw Error("Reinitialization of metrics not allowed.");
        }
        control_.configure_metrics(metrics);
        return no_content();
    }
    if (path == "/entropy" && put) {
        json parsed = json_body();
        require_pre_boot();
        VmConfig updated = control_.config();
        apply_entropy(parsed, updated);
        control_.set_config(std::move(updated));
        return no_content();
    }
    if (path == "/serial" && put) {
        json parsed = json_body();
        require_pre_boot();
        VmConfig updated = control_.config();
        apply_serial(parsed, updated);
        control_.set_config(std::move(updated));
        return no_content();
    }
    if (path == "/vsock" && put) {
        json parsed = json_body();
        require_pre_boot();
        reject_vsock(parsed);
    }
    for (const char* unsupported : {"/balloon", "/mmds", "/cpu-config", "/pmem", "/hotplug"}) {
        if (has_prefix(path, unsupported)) {
            throw Error(fmt::format("{} {}: {} is not supported by this VMM", method, path,
                                    unsupported + 1));
        }
    }
    throw Error(fmt::format("Invalid request method and/or path: {} {}.", method, path));
}

}  // namespace vmm::api
