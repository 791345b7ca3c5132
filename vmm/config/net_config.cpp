#include "vmm/config/net_config.hpp"

#include <fmt/format.h>

#include "vmm/base/error.hpp"
#include "vmm/config/option_list.hpp"

namespace vmm {

NetConfig parse_net_option(const std::string& text) {
    NetConfig net;
    bool have_tap = false;
    auto usage = [&](const std::string& why) {
        return Error(
            fmt::format("--net {}: {} (expected tap=NAME[,mac=MAC] or fd=N[,mac=MAC])", text, why));
    };
    for (const OptionPart& option : split_option_list(text)) {
        const std::string& key = option.key;
        const std::string& value = option.value;
        if (key == "tap" && option.has_value) {
            if (value.empty()) {
                throw usage("the tap name is empty");
            }
            if (value.size() > 15) {
                throw usage(fmt::format("tap name '{}' is longer than 15 characters", value));
            }
            net.tap_name = value;
            have_tap = true;
        } else if (key == "fd" && option.has_value) {
            if (value.empty() || value.size() > 9 ||
                value.find_first_not_of("0123456789") != std::string::npos) {
                throw usage(fmt::format("fd '{}' is not a file descriptor number", value));
            }
            net.tap_fd = std::stoi(value);
            if (net.tap_fd <= 2) {
                throw usage(fmt::format("fd {} is stdin, stdout or stderr", net.tap_fd));
            }
            have_tap = true;
        } else if (key == "mac" && option.has_value) {
            try {
                net.mac = MacAddress::parse(value);
            } catch (const Error& e) {
                throw Error(fmt::format("--net {}: {}", text, e.what()));
            }
        } else {
            throw usage(fmt::format("cannot understand '{}'", option.text));
        }
    }
    if (!have_tap) {
        throw usage("a tap is required");
    }
    if (!net.tap_name.empty() && net.tap_fd >= 0) {
        throw usage("give tap= or fd=, not both");
    }
    return net;
}

}  // namespace vmm
