// Ethernet MAC addresses for virtio-net: parsed from the command line, or
// made up (locally administered, unicast) when the user gives none.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace vmm {

struct MacAddress {
    std::array<uint8_t, 6> bytes{};

    // "xx:xx:xx:xx:xx:xx" in hex, either case; throws Error otherwise, and
    // for a multicast address (a NIC cannot have one).
    static MacAddress parse(std::string_view text);
    // A random locally administered unicast address (02:... style).
    static MacAddress random();

    std::string to_string() const;
    bool operator==(const MacAddress&) const = default;
};

}  // namespace vmm
