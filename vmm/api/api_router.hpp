// The Firecracker REST API's endpoints: reads each request's body into the
// model (firecracker_model), applies it to a copy of the VMM's configuration
// and hands the result to the VMM (VmmControl), and answers with
// Firecracker's words for what is not allowed before or after InstanceStart.
// Runs on the main thread only.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "vmm/api/firecracker_model.hpp"
#include "vmm/api/http_message.hpp"
#include "vmm/api/vmm_control.hpp"

namespace vmm::api {

class ApiRouter {
  public:
    // Every request reads and changes the VMM through `control`: the router
    // keeps no configuration or state of its own.
    ApiRouter(VmmControl& control, std::string instance_id);

    HttpResponse handle(const HttpRequest& request);

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
    std::string instance_id_;
    std::map<std::string, uint64_t> counters_;
};

}  // namespace vmm::api
