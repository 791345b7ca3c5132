// The pieces of the builder's vCPU step that need no KVM: the ioctl time
// accounting (errno untouched) and the --boot-trace line (numbers that add
// up).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/kvm.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "vmm/base/error.hpp"
#include "vmm/core/boot_trace.hpp"
#include "vmm/kvm/ioctl.hpp"

using vmm::BootTrace;

TEST_CASE(
    "kvm_ioctl adds its time to the thread's total only with accounting on, and keeps "
    "errno",
    "[vcpu_setup]") {
    int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    REQUIRE(fd >= 0);
    bool was_on = vmm::kvm_accounting();

    vmm::set_kvm_accounting(false);
    int64_t before = vmm::thread_kvm_ns();
    errno = 0;
    CHECK(vmm::kvm_ioctl(fd, KVM_GET_API_VERSION, 0) < 0);
    CHECK(errno == ENOTTY);
    CHECK(vmm::thread_kvm_ns() == before);

    vmm::set_kvm_accounting(true);
    errno = 0;
    for (int i = 0; i < 100; ++i) {
        CHECK(vmm::kvm_ioctl(fd, KVM_GET_API_VERSION, 0) < 0);
        CHECK(errno == ENOTTY);
    }
    int64_t mine = vmm::thread_kvm_ns() - before;
    CHECK(mine > 0);
    // Another thread's calls count for that thread only.
    int64_t other = 0;
    std::thread([&] {
        int64_t start = vmm::thread_kvm_ns();
        CHECK(vmm::kvm_ioctl(fd, KVM_GET_API_VERSION, 0) < 0);
        other = vmm::thread_kvm_ns() - start;
    }).join();
    CHECK(other > 0);
    CHECK(vmm::thread_kvm_ns() - before == mine);

    vmm::set_kvm_accounting(was_on);
    ::close(fd);
}

TEST_CASE("the vCPU setup line: whole microseconds that add up, own code per vCPU",
          "[vcpu_setup][boot_trace]") {
    BootTrace::VcpuSetup setup;
    setup.vcpus = 32;
    setup.threads = 2;
    setup.wall_ns = 2'100'400;
    setup.busy_ns = 4'150'600;
    setup.kvm_ns = 3'900'400;
    CHECK(BootTrace::describe(setup) ==
          "vcpu setup: 32 vCPUs on 2 threads in 2100 us wall: 3900 us in KVM calls + 251 us own "
          "code = 4151 us thread time; 7.8 us own code per vCPU");
    setup.vcpus = 1;
    setup.threads = 1;
    setup.wall_ns = setup.busy_ns = 1'499;
    setup.kvm_ns = 501;
    CHECK(BootTrace::describe(setup) ==
          "vcpu setup: 1 vCPUs on 1 thread in 1 us wall: 1 us in KVM calls + 0 us own code = 1 "
          "us thread time; 1.0 us own code per vCPU");
}

TEST_CASE("the boot trace reports the vCPU setup once recorded", "[vcpu_setup][boot_trace]") {
    BootTrace trace;
    CHECK(trace.report().find("vcpu setup") == std::string::npos);
    BootTrace::VcpuSetup setup;
    setup.vcpus = 8;
    setup.wall_ns = setup.busy_ns = 800'000;
    setup.kvm_ns = 700'000;
    trace.record_vcpu_setup(setup);
    CHECK_THAT(trace.report(),
               Catch::Contains("boot-trace: vcpu setup: 8 vCPUs on 1 thread in 800 us wall: 700 "
                               "us in KVM calls + 100 us own code = 800 us thread time; 12.5 us "
                               "own code per vCPU\n"));
}
