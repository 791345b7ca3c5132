// KernelCmdline: building the command line and looking keys up.
#include <catch2/catch.hpp>

#include "arch/kernel_cmdline.hpp"
#include "vmm/config/config.hpp"

using vmm::KernelCmdline;

TEST_CASE("KernelCmdline trims the base line", "[cmdline]") {
    CHECK(KernelCmdline("  console=ttyS0  ").str() == "console=ttyS0");
    CHECK(KernelCmdline("").str().empty());
    CHECK(KernelCmdline("    ").str().empty());
    CHECK(KernelCmdline(vmm::arch::kDefaultCmdline).str() == vmm::arch::kDefaultCmdline);
}

TEST_CASE("KernelCmdline append separates with one space", "[cmdline]") {
    KernelCmdline line("console=ttyS0");
    line.append("root=/dev/vda");
    CHECK(line.str() == "console=ttyS0 root=/dev/vda");
    line.append("  ro   ");
    CHECK(line.str() == "console=ttyS0 root=/dev/vda ro");
    line.append("a=1 b=2");
    CHECK(line.str() == "console=ttyS0 root=/dev/vda ro a=1 b=2");
}

TEST_CASE("KernelCmdline append ignores blank arguments", "[cmdline]") {
    KernelCmdline line("quiet");
    line.append("");
    line.append("   ");
    CHECK(line.str() == "quiet");
}

TEST_CASE("KernelCmdline append to an empty line adds no leading space", "[cmdline]") {
    KernelCmdline line("");
    line.append(" noapic");
    CHECK(line.str() == "noapic");
    line.append(vmm::arch::kPvmCmdline);
    CHECK(line.str() == std::string("noapic ") + vmm::arch::kPvmCmdline);
}

TEST_CASE("KernelCmdline has_key matches whole keys and key=value", "[cmdline]") {
    KernelCmdline line("console=ttyS0 rootfstype=ext4 ro panic=-1 init=/sbin/init");
    CHECK(line.has_key("console"));
    CHECK(line.has_key("rootfstype"));
    CHECK(line.has_key("ro"));
    CHECK(line.has_key("panic"));
    CHECK(line.has_key("init"));        // the last word
    CHECK_FALSE(line.has_key("root"));  // only a prefix of rootfstype=
    CHECK_FALSE(line.has_key("r"));
    CHECK_FALSE(line.has_key("console=ttyS"));
    CHECK_FALSE(line.has_key("sbin"));
    CHECK_FALSE(line.has_key("quiet"));

    KernelCmdline with_root("root=/dev/vda1 rootwait");
    CHECK(with_root.has_key("root"));
    CHECK(with_root.has_key("rootwait"));
    CHECK_FALSE(with_root.has_key("ro"));
}

TEST_CASE("KernelCmdline has_key on an empty line is false", "[cmdline]") {
    KernelCmdline line("");
    CHECK_FALSE(line.has_key("ro"));
    CHECK_FALSE(line.has_key("console"));
}
