// validate_config: each bad field is reported with its value.
#include <catch2/catch.hpp>

#include "vmm/base/error.hpp"
#include "vmm/config/config.hpp"

using Catch::Contains;
using vmm::validate_config;
using vmm::VmConfig;

namespace {

VmConfig valid_config() {
    VmConfig config;
    config.kernel_path = "/nonexistent/vmlinux";  // validation does not open it
    return config;
}

}  // namespace

TEST_CASE("validate_config accepts the defaults with a kernel", "[config]") {
    CHECK_NOTHROW(validate_config(valid_config()));
    VmConfig edges = valid_config();
    edges.memory_mib = vmm::kMinMemoryMib;
    edges.vcpu_count = vmm::kMaxVcpus;
    edges.cpuid_mask = "avx,rdrand";
    CHECK_NOTHROW(validate_config(edges));
}

TEST_CASE("validate_config requires a kernel", "[config]") {
    VmConfig config = valid_config();
    config.kernel_path.clear();
    CHECK_THROWS_WITH(validate_config(config), Contains("--kernel"));
}

TEST_CASE("validate_config rejects too little memory", "[config]") {
    VmConfig config = valid_config();
    config.memory_mib = 3;
    CHECK_THROWS_WITH(validate_config(config),
                      Contains("--mem 3 MiB") && Contains("too small") && Contains("4 MiB"));
    config.memory_mib = 0;
    CHECK_THROWS_WITH(validate_config(config), Contains("too small"));
}

TEST_CASE("validate_config rejects more memory than the host has", "[config]") {
    VmConfig config = valid_config();
    config.memory_mib = uint64_t(1) << 40;  // 1 EiB
    CHECK_THROWS_WITH(validate_config(config), Contains("--mem") && Contains("exceeds"));
    config.memory_mib = UINT64_MAX;
    CHECK_THROWS_WITH(validate_config(config), Contains("exceeds"));
}

TEST_CASE("validate_config rejects 0 and 33 vCPUs", "[config]") {
    VmConfig config = valid_config();
    config.vcpu_count = 0;
    CHECK_THROWS_WITH(validate_config(config),
                      Contains("--cpus 0") && Contains("out of range") && Contains("32"));
    config.vcpu_count = 33;
    CHECK_THROWS_WITH(validate_config(config), Contains("--cpus 33") && Contains("out of range"));
}

TEST_CASE("validate_config rejects an unknown CPUID mask name", "[config]") {
    VmConfig config = valid_config();
    config.cpuid_mask = "avx,nosuchfeature";
    CHECK_THROWS_WITH(validate_config(config), Contains("nosuchfeature") && Contains("known:"));
    CHECK_THROWS_AS(validate_config(config), vmm::Error);
}
