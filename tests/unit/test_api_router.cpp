// The API router and the Firecracker model: what each request changes, what
// it refuses, and when (before or after InstanceStart), with a fake VMM.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "vmm/api/api_router.hpp"
#include "vmm/api/firecracker_model.hpp"
#include "vmm/base/error.hpp"

using Catch::Contains;
using nlohmann::json;
using vmm::api::ApiRouter;
using vmm::api::HttpRequest;
using vmm::api::HttpResponse;

namespace {

// Keeps the configuration and the state as the core does (vmm/core/instance).
struct FakeVmm : vmm::api::VmmControl {
    std::vector<std::string> calls;
    std::optional<vmm::VmConfig> started;
    bool fail_start = false;
    vmm::VmConfig config_;
    vmm::api::ServiceConfig services_;
    vmm::api::InstanceState state_ = vmm::api::InstanceState::NotStarted;

    vmm::api::InstanceState state() const override { return state_; }
    const vmm::VmConfig& config() const override { return config_; }
    void set_config(vmm::VmConfig config) override {
        if (state_ != vmm::api::InstanceState::NotStarted) {
            throw vmm::Error("set_config after start");
        }
        config_ = std::move(config);
    }
    const vmm::api::ServiceConfig& services() const override { return services_; }
    void start() override {
        calls.push_back("start");
        if (fail_start) {
            throw vmm::Error("cannot build the VM");
        }
        started = config_;
        state_ = vmm::api::InstanceState::Running;
    }
    void pause() override {
        calls.push_back("pause");
        state_ = vmm::api::InstanceState::Paused;
    }
    void resume() override {
        calls.push_back("resume");
        state_ = vmm::api::InstanceState::Running;
    }
    void send_ctrl_alt_del() override { calls.push_back("ctrl-alt-del"); }
    void create_snapshot(const vmm::SnapshotCreateParams& params) override {
        calls.push_back("snapshot-create " + params.snapshot_path + " " + params.mem_file_path);
    }
    void load_snapshot(const vmm::SnapshotLoadParams& params) override {
        calls.push_back(
            fmt::format("snapshot-load {} {} {} resume={} overrides={}", params.snapshot_path,
                        params.backend == vmm::MemoryBackendType::Uffd ? "uffd" : "file",
                        params.backend_path, params.resume_vm, params.network_overrides.size()));
        state_ =
            params.resume_vm ? vmm::api::InstanceState::Running : vmm::api::InstanceState::Paused;
    }
    void check_tap(const std::string& name) override { calls.push_back("check-tap " + name); }
    void flush_metrics() override { calls.push_back("flush"); }
    void update_drive_path(const std::string& id, const std::string& path) override {
        calls.push_back(fmt::format("drive-path {} {}", id, path));
    }
    void update_drive_rate_limiter(const std::string& id,
                                   const vmm::RateLimiterUpdate& update) override {
        calls.push_back(
            fmt::format("drive-limit {} bw={} ops={}", id,
                        update.bandwidth ? int64_t(update.bandwidth->size) : int64_t(-1),
                        update.ops ? int64_t(update.ops->size) : int64_t(-1)));
    }
    void update_net_rate_limiters(const std::string& id, const vmm::RateLimiterUpdate& rx,
                                  const vmm::RateLimiterUpdate& tx) override {
        calls.push_back(fmt::format("net-limit {} rx-bw={} tx-ops={}", id,
                                    rx.bandwidth ? int64_t(rx.bandwidth->size) : int64_t(-1),
                                    tx.ops ? int64_t(tx.ops->size) : int64_t(-1)));
    }
    void configure_logger(const vmm::LoggerConfig& logger) override {
        calls.push_back("logger");
        services_.logger = logger;
    }
    void configure_metrics(const vmm::api::MetricsConfig& metrics) override {
        calls.push_back("metrics");
        services_.metrics = metrics;
    }
};

// A file that exists, for the paths the router opens.
std::string existing_file() {
    static std::string path = [] {
        std::string p = "/tmp/vmm-test-api-router-file";
        std::FILE* f = std::fopen(p.c_str(), "w");
        std::fputs("x", f);
        std::fclose(f);
        return p;
    }();
    return path;
}

struct Api {
    FakeVmm vmm;
    ApiRouter router{vmm, "test-id"};

    HttpResponse call(const std::string& method, const std::string& target, const json& body) {
        return router.handle(HttpRequest{method, target, body.is_null() ? "" : body.dump()});
    }
    HttpResponse get(const std::string& target) { return call("GET", target, nullptr); }
    std::string fault(const HttpResponse& response) {
        REQUIRE(response.status == 400);
        return json::parse(response.body).at("fault_message").get<std::string>();
    }
    void boot() {
        REQUIRE(call("PUT", "/boot-source", {{"kernel_image_path", existing_file()}}).status ==
                204);
        REQUIRE(call("PUT", "/actions", {{"action_type", "InstanceStart"}}).status == 204);
    }
};

}  // namespace

TEST_CASE("GET / and /machine-config give Firecracker's defaults", "[api]") {
    Api api;
    json info = json::parse(api.get("/").body);
    CHECK(info["state"] == "Not started");
    CHECK(info["id"] == "test-id");
    json machine = json::parse(api.get("/machine-config").body);
    CHECK(machine["vcpu_count"] == 1);
    CHECK(machine["mem_size_mib"] == 128);
    CHECK(machine["smt"] == false);
}

TEST_CASE("PUT /machine-config resets omitted fields, PATCH keeps them", "[api]") {
    Api api;
    CHECK(api.call("PUT", "/machine-config",
                   {{"vcpu_count", 4}, {"mem_size_mib", 512}, {"track_dirty_pages", true}})
              .status == 204);
    CHECK(api.vmm.config().track_dirty_pages);
    CHECK(api.call("PATCH", "/machine-config", {{"vcpu_count", 2}}).status == 204);
    CHECK(api.vmm.config().vcpu_count == 2);
    CHECK(api.vmm.config().memory_mib == 512);
    CHECK(api.vmm.config().track_dirty_pages);
    CHECK(api.call("PUT", "/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 64}}).status ==
          204);
    CHECK_FALSE(api.vmm.config().track_dirty_pages);
}

TEST_CASE("a bad field leaves the whole configuration unchanged", "[api]") {
    Api api;
    REQUIRE(api.call("PUT", "/machine-config", {{"vcpu_count", 2}, {"mem_size_mib", 256}}).status ==
            204);
    CHECK_THAT(api.fault(api.call("PATCH", "/machine-config",
                                  {{"vcpu_count", 8}, {"huge_pages", "Giant"}})),
               Contains("unknown variant `Giant`"));
    CHECK(api.vmm.config().vcpu_count == 2);
    CHECK_THAT(
        api.fault(api.call("PUT", "/machine-config", {{"vcpu_count", 8}, {"mem_size_mib", 2}})),
        Contains("memory size"));
    CHECK(api.vmm.config().vcpu_count == 2);
    CHECK(api.vmm.config().memory_mib == 256);
}

TEST_CASE("machine-config types and ranges", "[api]") {
    Api api;
    CHECK_THAT(
        api.fault(api.call("PUT", "/machine-config", {{"vcpu_count", 300}, {"mem_size_mib", 1}})),
        Contains("invalid value"));
    CHECK_THAT(
        api.fault(api.call("PUT", "/machine-config", {{"vcpu_count", true}, {"mem_size_mib", 1}})),
        Contains("expected an unsigned integer"));
    CHECK_THAT(api.fault(api.call("PUT", "/machine-config",
                                  {{"vcpu_count", 5}, {"mem_size_mib", 128}, {"smt", true}})),
               Contains("even number"));
    CHECK_THAT(api.fault(api.call("PUT", "/machine-config",
                                  {{"vcpu_count", 4}, {"mem_size_mib", 128}, {"smt", true}})),
               Contains("smt is not supported"));
    CHECK(api.call("PUT", "/machine-config",
                   {{"vcpu_count", 32}, {"mem_size_mib", 128}, {"huge_pages", "Transparent"}})
              .status == 204);
    CHECK(api.vmm.config().huge_pages == vmm::HugePages::Transparent);
}

TEST_CASE("drives: the root drive goes first, a second root is refused, ids match", "[api]") {
    Api api;
    std::string path = existing_file();
    auto drive = [&](const std::string& id, bool root) {
        return json{{"drive_id", id},
                    {"is_root_device", root},
                    {"path_on_host", path},
                    {"is_read_only", true}};
    };
    CHECK(api.call("PUT", "/drives/data", drive("data", false)).status == 204);
    CHECK(api.call("PUT", "/drives/root", drive("root", true)).status == 204);
    CHECK_THAT(api.fault(api.call("PUT", "/drives/root2", drive("root2", true))),
               Contains("root block device already exists"));
    CHECK_THAT(api.fault(api.call("PUT", "/drives/x", drive("y", false))),
               Contains("does not match"));
    // Replacing a drive keeps one entry under its id.
    json again = drive("data", false);
    again["io_engine"] = "Async";
    CHECK(api.call("PUT", "/drives/data", again).status == 204);
    const auto& drives = api.vmm.config().drives;
    REQUIRE(drives.size() == 2);
    CHECK(drives[0].id == "root");
    CHECK(drives[0].is_root);
    CHECK(drives[1].id == "data");
    CHECK(drives[1].io == vmm::BlockEngineKind::Uring);
    json config = json::parse(api.get("/vm/config").body);
    CHECK(config["drives"][0]["drive_id"] == "root");
    CHECK(config["drives"][1]["io_engine"] == "Async");
}

TEST_CASE("rate limiters: drives and interfaces keep them, GET /vm/config shows them", "[api]") {
    Api api;
    json drive{{"drive_id", "d"},
               {"is_root_device", false},
               {"path_on_host", existing_file()},
               {"is_read_only", true}};
    drive["rate_limiter"] = {
        {"bandwidth", {{"size", 1048576}, {"one_time_burst", 4096}, {"refill_time", 100}}},
        {"ops", {{"size", 0}, {"refill_time", 100}}}};  // size 0: no limit
    REQUIRE(api.call("PUT", "/drives/d", drive).status == 204);
    const vmm::DriveConfig& stored = api.vmm.config().drives.at(0);
    CHECK(stored.rate_limiter.bandwidth == vmm::TokenBucketConfig{1048576, 4096, 100});
    CHECK_FALSE(stored.rate_limiter.ops.limits());
    json net{{"iface_id", "eth0"},
             {"host_dev_name", "tap0"},
             {"tx_rate_limiter", {{"ops", {{"size", 100}, {"refill_time", 1000}}}}}};
    REQUIRE(api.call("PUT", "/network-interfaces/eth0", net).status == 204);
    CHECK(api.vmm.config().nets.at(0).tx_rate_limiter.ops == vmm::TokenBucketConfig{100, 0, 1000});
    CHECK_FALSE(api.vmm.config().nets.at(0).rx_rate_limiter.limits());
    json config = json::parse(api.get("/vm/config").body);
    CHECK(config["drives"][0]["rate_limiter"] ==
          json{{"bandwidth", {{"size", 1048576}, {"one_time_burst", 4096}, {"refill_time", 100}}}});
    CHECK(config["network-interfaces"][0]["tx_rate_limiter"]["ops"]["size"] == 100);
    CHECK_FALSE(config["network-interfaces"][0].contains("rx_rate_limiter"));
}

TEST_CASE("rate limiters: bad buckets are refused naming the field", "[api]") {
    Api api;
    json drive{{"drive_id", "d"}, {"is_root_device", false}, {"path_on_host", existing_file()}};
    auto refused = [&](json limiter) {
        drive["rate_limiter"] = std::move(limiter);
        return api.fault(api.call("PUT", "/drives/d", drive));
    };
    using Catch::Matchers::Contains;
    CHECK_THAT(refused({{"bandwidth", {{"size", -1}, {"refill_time", 100}}}}),
               Contains("drive d: rate_limiter") && Contains("`size`"));
    CHECK_THAT(refused({{"ops", {{"size", 10}}}}), Contains("missing field `refill_time`"));
    CHECK_THAT(refused({{"ops", {{"size", 10}, {"refill_time", 100}, {"burst", 1}}}}),
               Contains("unknown field `burst`"));
    CHECK_THAT(refused({{"bandwidth", {{"size", 10}, {"refill_time", 1e30}}}}),
               Contains("`refill_time`"));
    CHECK_THAT(refused({{"bandwidth", {{"size", 18446744073709551615ull}, {"refill_time", 1}}}}),
               Contains("`size`"));
    CHECK_THAT(refused({{"iops", {}}}), Contains("unknown field `iops`"));
    CHECK(api.vmm.config().drives.empty());
    json net{{"iface_id", "eth0"},
             {"host_dev_name", "tap0"},
             {"rx_rate_limiter", {{"bandwidth", {{"size", 1}, {"refill_time", -5}}}}}};
    CHECK_THAT(api.fault(api.call("PUT", "/network-interfaces/eth0", net)),
               Contains("network interface eth0: rx_rate_limiter") && Contains("`refill_time`"));
    // Devices without a limiter still refuse a real limit.
    CHECK_THAT(
        api.fault(api.call("PUT", "/entropy",
                           {{"rate_limiter", {{"ops", {{"size", 10}, {"refill_time", 100}}}}}})),
        Contains("not supported on this device"));
}

TEST_CASE("rate limiters: PATCH after boot reaches the running device", "[api]") {
    Api api;
    json drive{{"drive_id", "d"}, {"is_root_device", false}, {"path_on_host", existing_file()}};
    REQUIRE(api.call("PUT", "/drives/d", drive).status == 204);
    REQUIRE(api.call("PUT", "/network-interfaces/eth0",
                     {{"iface_id", "eth0"}, {"host_dev_name", "tap0"}})
                .status == 204);
    json patch{{"drive_id", "d"},
               {"rate_limiter", {{"bandwidth", {{"size", 5000}, {"refill_time", 10}}}}}};
    CHECK_THAT(api.fault(api.call("PATCH", "/drives/d", patch)), Contains("before"));
    api.boot();
    CHECK(api.call("PATCH", "/drives/d", patch).status == 204);
    CHECK(api.vmm.calls.back() == "drive-limit d bw=5000 ops=-1");
    // The same path is no change; another one swaps the file.
    CHECK(api.call("PATCH", "/drives/d", {{"drive_id", "d"}, {"path_on_host", existing_file()}})
              .status == 204);
    CHECK(api.vmm.calls.back() == "drive-limit d bw=5000 ops=-1");
    CHECK(api.call("PATCH", "/drives/d", {{"drive_id", "d"}, {"path_on_host", "/other.img"}})
              .status == 204);
    CHECK(api.vmm.calls.back() == "drive-path d /other.img");
    patch["drive_id"] = "nope";
    CHECK_THAT(api.fault(api.call("PATCH", "/drives/nope", patch)), Contains("does not exist"));
    json iface{{"iface_id", "eth0"},
               {"rx_rate_limiter", {{"bandwidth", {{"size", 7}, {"refill_time", 10}}}}},
               {"tx_rate_limiter", {{"ops", {{"size", 0}, {"refill_time", 0}}}}}};
    CHECK(api.call("PATCH", "/network-interfaces/eth0", iface).status == 204);
    CHECK(api.vmm.calls.back() == "net-limit eth0 rx-bw=7 tx-ops=0");
    iface["iface_id"] = "eth1";
    CHECK_THAT(api.fault(api.call("PATCH", "/network-interfaces/eth1", iface)),
               Contains("does not exist"));
}

TEST_CASE("InstanceStart passes the configuration, then pre-boot requests are refused", "[api]") {
    Api api;
    CHECK_THAT(api.fault(api.call("PUT", "/actions", {{"action_type", "InstanceStart"}})),
               Contains("without kernel configuration"));
    REQUIRE(api.call("PUT", "/machine-config", {{"vcpu_count", 2}, {"mem_size_mib", 64}}).status ==
            204);
    api.boot();
    REQUIRE(api.vmm.started);
    CHECK(api.vmm.started->vcpu_count == 2);
    CHECK(api.vmm.started->kernel_path == existing_file());
    CHECK(json::parse(api.get("/").body)["state"] == "Running");
    for (const char* target : {"/machine-config", "/boot-source", "/entropy", "/logger"}) {
        CHECK_THAT(api.fault(api.call("PUT", target, json::object())),
                   Contains("not supported after starting the microVM"));
    }
    CHECK_THAT(api.fault(api.call("PUT", "/actions", {{"action_type", "InstanceStart"}})),
               Contains("after starting"));
    CHECK(api.vmm.calls == std::vector<std::string>{"start"});
}

TEST_CASE("a failed InstanceStart leaves the VM not started", "[api]") {
    Api api;
    api.vmm.fail_start = true;
    REQUIRE(api.call("PUT", "/boot-source", {{"kernel_image_path", existing_file()}}).status ==
            204);
    CHECK_THAT(api.fault(api.call("PUT", "/actions", {{"action_type", "InstanceStart"}})),
               Contains("cannot build the VM"));
    CHECK(json::parse(api.get("/").body)["state"] == "Not started");
}

TEST_CASE("pause, resume and Ctrl+Alt+Del only after boot", "[api]") {
    Api api;
    CHECK_THAT(api.fault(api.call("PATCH", "/vm", {{"state", "Paused"}})),
               Contains("before starting"));
    CHECK_THAT(api.fault(api.call("PUT", "/actions", {{"action_type", "SendCtrlAltDel"}})),
               Contains("before starting"));
    api.boot();
    CHECK(api.call("PATCH", "/vm", {{"state", "Paused"}}).status == 204);
    CHECK(json::parse(api.get("/").body)["state"] == "Paused");
    CHECK(api.call("PATCH", "/vm", {{"state", "Resumed"}}).status == 204);
    CHECK(api.call("PUT", "/actions", {{"action_type", "SendCtrlAltDel"}}).status == 204);
    CHECK(api.call("PUT", "/actions", {{"action_type", "FlushMetrics"}}).status == 204);
    CHECK(api.vmm.calls ==
          std::vector<std::string>{"start", "pause", "resume", "ctrl-alt-del", "flush"});
}

TEST_CASE("snapshot create and load: bodies, and when each is allowed", "[api][snapshot]") {
    Api api;
    json create{{"snapshot_path", "/s"}, {"mem_file_path", "/m"}};
    CHECK_THAT(api.fault(api.call("PUT", "/snapshot/create", create)), Contains("before starting"));
    CHECK_THAT(api.fault(api.call("PUT", "/snapshot/create", {{"snapshot_path", "/s"}})),
               Contains("missing field `mem_file_path`"));
    CHECK_THAT(
        api.fault(api.call(
            "PUT", "/snapshot/create",
            {{"snapshot_path", "/s"}, {"mem_file_path", "/m"}, {"snapshot_type", "Partial"}})),
        Contains("unknown variant"));
    CHECK_THAT(api.fault(api.call("PUT", "/snapshot/load", {{"snapshot_path", "/s"}})),
               Contains("either `mem_backend` or `mem_file_path`"));
    CHECK_THAT(
        api.fault(api.call("PUT", "/snapshot/load",
                           {{"snapshot_path", "/s"},
                            {"mem_file_path", "/m"},
                            {"mem_backend", {{"backend_type", "File"}, {"backend_path", "/m"}}}})),
        Contains("exactly one"));
    CHECK_THAT(
        api.fault(api.call("PUT", "/snapshot/load",
                           {{"snapshot_path", "/s"},
                            {"mem_backend", {{"backend_type", "Disk"}, {"backend_path", "/m"}}}})),
        Contains("unknown variant"));
    CHECK_THAT(api.fault(api.call("PUT", "/snapshot/load",
                                  {{"snapshot_path", "/s"},
                                   {"mem_file_path", "/m"},
                                   {"network_overrides", {{{"iface_id", "eth0"}}}}})),
               Contains("host_dev_name"));
    REQUIRE(api.call("PUT", "/snapshot/load",
                     {{"snapshot_path", "/s"},
                      {"mem_backend", {{"backend_type", "Uffd"}, {"backend_path", "/uffd.sock"}}},
                      {"resume_vm", true},
                      {"network_overrides", {{{"iface_id", "eth0"}, {"host_dev_name", "tap7"}}}}})
                .status == 204);
    CHECK(api.vmm.calls.back() == "snapshot-load /s uffd /uffd.sock resume=true overrides=1");
    // Loaded: the VM exists, so a second load is a post-boot request.
    CHECK_THAT(api.fault(api.call("PUT", "/snapshot/load",
                                  {{"snapshot_path", "/s"}, {"mem_file_path", "/m"}})),
               Contains("not supported after starting"));
    CHECK(api.call("PUT", "/snapshot/create", create).status == 204);
    CHECK(api.vmm.calls.back() == "snapshot-create /s /m");
}

TEST_CASE("unknown paths and methods, bodies that are not JSON objects", "[api]") {
    Api api;
    CHECK_THAT(api.fault(api.get("/nope")),
               Contains("Invalid request method and/or path: GET /nope"));
    CHECK_THAT(api.fault(api.call("DELETE", "/machine-config", nullptr)),
               Contains("Invalid request method"));
    CHECK_THAT(
        api.fault(api.router.handle(HttpRequest{"PUT", "/machine-config", "{\"vcpu_count\":"})),
        Contains("deserializing"));
    CHECK_THAT(api.fault(api.router.handle(HttpRequest{"PUT", "/actions", "\"InstanceStart\""})),
               Contains("expected struct InstanceActionInfo"));
    CHECK_THAT(api.fault(api.router.handle(HttpRequest{"GET", "", ""})),
               Contains("Invalid request path"));
    CHECK(api.get("/version").status == 200);
    // Query strings are ignored.
    CHECK(api.get("/machine-config?x=1").status == 200);
}

TEST_CASE("metrics count requests per endpoint, bounded", "[api]") {
    Api api;
    api.get("/");
    api.get("/machine-config");
    api.get("/nope");
    api.call("BREW", "/coffee", nullptr);
    json metrics = api.router.metrics();
    CHECK(metrics["get_root_count"] == 1);
    CHECK(metrics["get_machine_config_count"] == 1);
    CHECK(metrics["get_other_fails"] == 1);
    CHECK(metrics["other_other_fails"] == 1);
}

TEST_CASE("a config document sets everything the API would", "[api]") {
    vmm::VmConfig config;
    json document = {
        {"boot-source", {{"kernel_image_path", "/k"}, {"boot_args", "console=ttyS0"}}},
        {"machine-config", {{"vcpu_count", 2}, {"mem_size_mib", 64}}},
        {"drives",
         {{{"drive_id", "rootfs"},
           {"is_root_device", true},
           {"path_on_host", "/d"},
           {"is_read_only", true},
           {"partuuid", "abcd-01"}}}},
        {"network-interfaces",
         {{{"iface_id", "eth0"},
           {"host_dev_name", "tap0"},
           {"guest_mac", "06:00:00:00:00:01"},
           {"mtu", 1400}}}},
        {"entropy", json::object()},
        {"metrics", {{"metrics_path", "/m"}}},
    };
    vmm::api::ServiceConfig services = vmm::api::apply_config_document(document, config);
    CHECK(config.kernel_path == "/k");
    CHECK(config.cmdline == "console=ttyS0");
    CHECK(config.vcpu_count == 2);
    REQUIRE(config.drives.size() == 1);
    CHECK(config.drives[0].partuuid == "abcd-01");
    REQUIRE(config.nets.size() == 1);
    CHECK(config.nets[0].id == "eth0");
    CHECK(config.nets[0].mtu == 1400);
    CHECK(config.rng);
    REQUIRE(services.metrics);
    CHECK(services.metrics->path == "/m");
    // What GET /vm/config shows is what was read.
    json rendered = vmm::api::render_vm_config(config, services);
    CHECK(rendered["network-interfaces"][0]["guest_mac"] == "06:00:00:00:00:01");
    CHECK(rendered["drives"][0]["partuuid"] == "abcd-01");

    vmm::VmConfig other;
    CHECK_THROWS_WITH(vmm::api::apply_config_document({{"balloon", json::object()}}, other),
                      Contains("not supported"));
    CHECK_THROWS_WITH(vmm::api::apply_config_document({{"drives", json::array()}}, other),
                      Contains("boot-source"));
}

// Through the API a second PUT with the same id replaces the first; a file
// that names an id twice is a mistake (the first would be dropped silently).
TEST_CASE("a config document refuses a drive or interface id given twice", "[api]") {
    json kernel = {{"kernel_image_path", "/k"}};
    json drive = {{"drive_id", "data"}, {"is_root_device", false}, {"path_on_host", "/d1"}};
    json drive2 = {{"drive_id", "data"}, {"is_root_device", false}, {"path_on_host", "/d2"}};
    vmm::VmConfig config;
    CHECK_THROWS_WITH(
        vmm::api::apply_config_document(
            {{"boot-source", kernel}, {"drives", json::array({drive, drive2})}}, config),
        Contains("drive_id \"data\" is given twice"));
    json net = {{"iface_id", "eth0"}, {"host_dev_name", "tap0"}};
    json net2 = {{"iface_id", "eth0"}, {"host_dev_name", "tap1"}};
    vmm::VmConfig config2;
    CHECK_THROWS_WITH(
        vmm::api::apply_config_document(
            {{"boot-source", kernel}, {"network-interfaces", json::array({net, net2})}}, config2),
        Contains("iface_id \"eth0\" is given twice"));
    // Different ids are fine.
    json other = {{"drive_id", "other"}, {"is_root_device", false}, {"path_on_host", "/d2"}};
    vmm::VmConfig config3;
    vmm::api::apply_config_document(
        {{"boot-source", kernel}, {"drives", json::array({drive, other})}}, config3);
    CHECK(config3.drives.size() == 2);
}

TEST_CASE("a number too large for JSON's double is a 400, not an internal error", "[api]") {
    Api api;
    HttpResponse response =
        api.router.handle(HttpRequest{"PUT", "/machine-config", "{\"vcpu_count\":22222E2222222}"});
    CHECK_THAT(api.fault(response), Contains("number overflow"));
}
