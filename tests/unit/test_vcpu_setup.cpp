// The pieces of the builder's vCPU step that need no KVM: parallel_for
// (every id once, errors as thrown, lowest id first), the time accounting
// of calls into KVM (errno untouched) and the --boot-trace line (numbers
// that add up).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/kvm.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "vmm/base/error.hpp"
#include "vmm/core/boot_trace.hpp"
#include "vmm/core/parallel_for.hpp"
#include "vmm/kvm/ioctl.hpp"

using vmm::BootTrace;
using vmm::parallel_for;

TEST_CASE("parallel_for runs every id once, on the threads asked for", "[vcpu_setup]") {
    for (uint32_t threads : {1u, 2u, 4u, 64u}) {
        std::vector<std::atomic<int>> runs(33);
        std::mutex mutex;
        std::set<std::thread::id> seen;
        vmm::ParallelTimes times = parallel_for(1, 33, threads, [&](uint32_t id) {
            runs[id]++;
            std::lock_guard lock(mutex);
            seen.insert(std::this_thread::get_id());
        });
        CHECK(runs[0] == 0);
        for (uint32_t id = 1; id < 33; ++id) {
            CHECK(runs[id] == 1);
        }
        // At most one thread per id; the caller is one of them.
        CHECK(times.threads == std::min(threads, 32u));
        CHECK(seen.size() <= times.threads);
        if (threads == 1) {
            CHECK(seen == std::set{std::this_thread::get_id()});
            CHECK(times.worker_busy_ns == 0);
        }
        CHECK(times.worker_busy_ns >= 0);
        CHECK(times.wait_ns >= 0);
    }
}

TEST_CASE("parallel_for with nothing or one id to do starts no thread", "[vcpu_setup]") {
    int runs = 0;
    CHECK(parallel_for(1, 1, 8, [&](uint32_t) { ++runs; }).threads == 1);
    CHECK(parallel_for(1, 2, 8, [&](uint32_t) { ++runs; }).threads == 1);
    CHECK(runs == 1);
}

TEST_CASE("parallel_for rethrows the error of the lowest failing id, as thrown", "[vcpu_setup]") {
    for (uint32_t threads : {1u, 2u, 8u}) {
        std::atomic<int> started{0};
        auto work = [&](uint32_t id) {
            ++started;
            if (id == 5 || id == 9 || id == 20) {
                throw vmm::SystemError(fmt::format("KVM_CREATE_VCPU {}", id), EMFILE);
            }
        };
        try {
            parallel_for(1, 33, threads, work);
            FAIL("no error");
        } catch (const vmm::SystemError& e) {
            // 9 may have failed first on another thread; 5 still wins.
            CHECK(std::string(e.what()) == "KVM_CREATE_VCPU 5: Too many open files");
            CHECK(e.error_number() == EMFILE);
        }
        // Serially nothing after the failing id starts. (In parallel no id
        // starts once one failed, but others may be taken meanwhile.)
        if (threads == 1) {
            CHECK(started == 5);
        }
    }
}

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
