// MAC address parsing and the --net option.
#include <catch2/catch.hpp>

#include "devices/virtio/net/mac_address.hpp"
#include "vmm/base/error.hpp"
#include "vmm/config/net_config.hpp"

using namespace vmm;

TEST_CASE("MAC addresses parse in either case and print in lower case") {
    CHECK(MacAddress::parse("06:00:AC:10:00:02").to_string() == "06:00:ac:10:00:02");
    CHECK_THROWS_WITH(MacAddress::parse("06:00:ac:10:00"), Catch::Contains("malformed MAC"));
    CHECK_THROWS_WITH(MacAddress::parse("06-00-ac-10-00-02"), Catch::Contains("malformed MAC"));
    CHECK_THROWS_WITH(MacAddress::parse("06:00:ac:10:00:0g"), Catch::Contains("malformed MAC"));
    CHECK_THROWS_WITH(MacAddress::parse("01:00:5e:00:00:01"), Catch::Contains("multicast"));
}

TEST_CASE("Random MAC addresses are locally administered unicast") {
    for (int i = 0; i < 32; ++i) {
        MacAddress mac = MacAddress::random();
        CHECK((mac.bytes[0] & 1) == 0);
        CHECK((mac.bytes[0] & 2) == 2);
    }
    CHECK(MacAddress::random() != MacAddress::random());
}

TEST_CASE("The net option takes a tap name or an fd, and a MAC") {
    NetConfig a = parse_net_option("tap=tap0");
    CHECK(a.tap_name == "tap0");
    CHECK(a.tap_fd == -1);
    CHECK_FALSE(a.mac.has_value());
    NetConfig b = parse_net_option("fd=7,mac=06:00:00:00:00:01");
    CHECK(b.tap_fd == 7);
    CHECK(b.mac->to_string() == "06:00:00:00:00:01");

    CHECK_THROWS_WITH(parse_net_option("tap="), Catch::Contains("tap name is empty"));
    CHECK_THROWS_WITH(parse_net_option("mac=06:00:00:00:00:01"),
                      Catch::Contains("tap is required"));
    CHECK_THROWS_WITH(parse_net_option("tap=a,fd=5"), Catch::Contains("not both"));
    CHECK_THROWS_WITH(parse_net_option("fd=-1"), Catch::Contains("not a file descriptor number"));
    CHECK_THROWS_WITH(parse_net_option("fd=1"), Catch::Contains("stdin, stdout or stderr"));
    CHECK_THROWS_WITH(parse_net_option("tap=0123456789abcdef"), Catch::Contains("longer than 15"));
    CHECK_THROWS_WITH(parse_net_option("tap=t,mac=zz"), Catch::Contains("malformed MAC"));
    CHECK_THROWS_WITH(parse_net_option("tap=t,speed=10"), Catch::Contains("cannot understand"));
}
