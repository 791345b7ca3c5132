// A network interface as the user configured it (--net).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "devices/rate_limiter.hpp"
#include "devices/virtio/net/mac_address.hpp"

namespace vmm {

struct NetConfig {
    std::string tap_name;               // tap=NAME: opened (or created) by the VMM
    int tap_fd = -1;                    // fd=N: an open tap handed over by an orchestrator
    std::optional<MacAddress> mac;      // random when not given
    std::string id;                     // the API's iface_id (net0, net1, ... from --net)
    std::optional<uint16_t> mtu;        // advertised to the guest; the tap's MTU when not given
    RateLimiterConfig rx_rate_limiter;  // host to guest; no limit by default
    RateLimiterConfig tx_rate_limiter;  // guest to host
};

// Parses "tap=NAME[,mac=MAC]" or "fd=N[,mac=MAC]"; throws Error naming the
// bad part.
NetConfig parse_net_option(const std::string& text);

}  // namespace vmm
