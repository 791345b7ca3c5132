#include "devices/virtio/net/mac_address.hpp"

#include <sys/random.h>

#include <fmt/format.h>

#include "vmm/base/error.hpp"

namespace vmm {

namespace {

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

}  // namespace

MacAddress MacAddress::parse(std::string_view text) {
    MacAddress mac;
    auto bad = [&](const char* why) {
        return Error(fmt::format("malformed MAC address '{}': {}", text, why));
    };
    if (text.size() != 17) {
        throw bad("expected six hex pairs separated by ':' (like 06:00:ac:10:00:02)");
    }
    for (size_t i = 0; i < 6; ++i) {
        int high = hex_digit(text[3 * i]);
        int low = hex_digit(text[3 * i + 1]);
        if (high < 0 || low < 0 || (i < 5 && text[3 * i + 2] != ':')) {
            throw bad("expected six hex pairs separated by ':' (like 06:00:ac:10:00:02)");
        }
        mac.bytes[i] = static_cast<uint8_t>(high << 4 | low);
    }
    if (mac.bytes[0] & 1) {
        throw bad("a multicast address cannot be a NIC's address");
    }
    return mac;
}

MacAddress MacAddress::random() {
    MacAddress mac;
    if (::getrandom(mac.bytes.data(), mac.bytes.size(), 0) != ssize_t(mac.bytes.size())) {
        throw_errno("getrandom for a MAC address");
    }
    mac.bytes[0] = static_cast<uint8_t>((mac.bytes[0] & 0xfe) | 0x02);
    return mac;
}

std::string MacAddress::to_string() const {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", bytes[0], bytes[1], bytes[2],
                       bytes[3], bytes[4], bytes[5]);
}

}  // namespace vmm
