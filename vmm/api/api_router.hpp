// The Firecracker REST API's endpoints: maps each request to the model
// (firecracker_model) and the VMM (VmmControl), and enforces what is allowed
// before and after InstanceStart. Runs on the main thread only.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "vmm/api/firecracker_model.hpp"
#include "vmm/api/http_message.hpp"
#include "vmm/api/vmm_control.hpp"

namespace vmm::api {

enum class InstanceState { NotStarted, Running, Paused };

class ApiRouter {
  public:
    // `initial`: the configuration requests start from (command-line options
    // such as --cpu-profile carry over).
    ApiRouter(VmmControl& control, VmConfig initial, std::string instance_id);

    HttpResponse handle(const HttpRequest& request);

    // The VM was booted without InstanceStart (command line or config file)
    // with `config` and `services`.
    void booted(const VmConfig& config, ServiceConfig services);

    InstanceState state() const { return state_; }
    const VmConfig& config() const { return config_; }
    const ServiceConfig& services() const { return services_; }
    // Requests and failures per endpoint, for the metrics line.
    nlohmann::json metrics() const;

  private:
    HttpResponse route(const std::string& method, const std::string& path, const std::string& body);
    HttpResponse get_instance_info() const;
    HttpResponse put_action(const nlohmann::json& body);
    HttpResponse patch_vm(const nlohmann::json& body);
    // Throws unless the VM has not started / has started.
    void require_pre_boot() const;
    void require_post_boot() const;
    void count(const std::string& endpoint, bool failed);

    VmmControl& control_;
    VmConfig config_;
    ServiceConfig services_;
    std::string instance_id_;
    InstanceState state_ = InstanceState::NotStarted;
    std::map<std::string, uint64_t> counters_;
};

}  // namespace vmm::api
