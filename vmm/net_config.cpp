#include "vmm/net_config.hpp"

#include <fmt/format.h>

#include "vmm/error.hpp"

namespace vmm {

NetConfig parse_net_option(const std::string& text) {
    NetConfig net;
    bool have_tap = false;
    auto usage = [&](const std::string& why) {
        return Error(
            fmt::format("--net {}: {} (expected tap=NAME[,mac=MAC] or fd=N[,mac=MAC])", text, why));
    };
    size_t start = 0;
    while (start <= text.size()) {
        size_t comma = text.find(',', start);
        std::string part = text.substr(start, comma == std::string::npos ? comma : comma - start);
        size_t equals = part.find('=');
        std::string key = part.substr(0, equals);
        std::string value = equals == std::string::npos ? "" : part.substr(equals + 1);
        if (key == "tap" && equals != std::string::npos) {
            if (value.empty()) {
                throw usage("the tap name is empty");
            }
            if (value.size() > 15) {
                throw usage(fmt::format("tap name '{}' is longer than 15 characters", value));
            }
            net.tap_name = value;
            have_tap = true;
        } else if (key == "fd" && equals != std::string::npos) {
            if (value.empty() || value.size() > 9 ||
                value.find_first_not_of("0123456789") != std::string::npos) {
                throw usage(fmt::format("fd '{}' is not a file descriptor number", value));
            }
            net.tap_fd = std::stoi(value);
            if (net.tap_fd <= 2) {
                throw usage(fmt::format("fd {} is stdin, stdout or stderr", net.tap_fd));
            }
            have_tap = true;
        } else if (key == "mac" && equals != std::string::npos) {
            try {
                net.mac = MacAddress::parse(value);
            } catch (const Error& e) {
                throw Error(fmt::format("--net {}: {}", text, e.what()));
            }
        } else {
            throw usage(fmt::format("cannot understand '{}'", part));
        }
        if (comma == std::string::npos) {
            break;
        }
        start = comma + 1;
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
