// libFuzzer target: the API's JSON handlers. The first byte picks which
// Firecracker object the rest is read as (the body of PUT /machine-config,
// /drives/{id}, ...); each must either be accepted or refused with an Error,
// never crash. What is accepted is rendered back (GET /vm/config) and must
// read again as the same configuration.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "vmm/api/firecracker_model.hpp"
#include "vmm/api/json_object.hpp"
#include "vmm/base/error.hpp"

namespace {

using nlohmann::json;
namespace api = vmm::api;

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_api: %s\n", what);
        std::abort();
    }
}

void apply(uint8_t selector, const json& body, vmm::VmConfig& config,
           api::ServiceConfig& services) {
    switch (selector % 14) {
        case 0:
            api::apply_machine_config(body, config, false);
            break;
        case 1:
            api::apply_machine_config(body, config, true);
            break;
        case 2:
            api::apply_boot_source(body, config);
            break;
        case 3:
            api::insert_drive(config, api::parse_drive(body, "rootfs"));
            break;
        case 4:
            api::parse_partial_drive(body, "rootfs");
            break;
        case 5:
            api::insert_network_interface(config, api::parse_network_interface(body, "eth0"));
            break;
        case 6:
            api::parse_partial_network_interface(body, "eth0");
            break;
        case 7:
            services.logger = api::parse_logger(body);
            break;
        case 8:
            services.metrics = api::parse_metrics(body);
            break;
        case 9:
            api::apply_entropy(body, config);
            break;
        case 10:
            api::apply_serial(body, config);
            break;
        case 11:
            api::reject_vsock(body);
        case 12:
            api::parse_action(body);
            api::parse_vm_state(body);
            break;
        case 13: {
            vmm::VmConfig fresh;
            services = api::apply_config_document(body, fresh);
            config = fresh;
            break;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    vmm::VmConfig config;
    api::ServiceConfig services;
    try {
        json body = api::parse_json_body(text);
        apply(data[0], body, config, services);
    } catch (const vmm::Error&) {
        return 0;  // refused: fine
    }
    // Whatever was accepted renders, and the rendering is stable.
    json rendered = api::render_vm_config(config, services);
    check(rendered.is_object(), "GET /vm/config is not an object");
    check(rendered.dump() == api::render_vm_config(config, services).dump(),
          "rendering is not deterministic");
    if (!config.kernel_path.empty()) {
        vmm::VmConfig again;
        try {
            api::ServiceConfig services_again = api::apply_config_document(rendered, again);
            check(api::render_vm_config(again, services_again) == rendered,
                  "GET /vm/config does not read back as the same configuration");
        } catch (const vmm::Error& e) {
            std::fprintf(stderr, "fuzz_api: rendered config refused: %s\n%s\n", e.what(),
                         rendered.dump().c_str());
            std::abort();
        }
    }
    return 0;
}
