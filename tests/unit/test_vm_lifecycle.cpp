// VmLifecycle: the one state machine every start, pause, resume and stop
// goes through; what each state allows and what it refuses.
#include <catch2/catch.hpp>

#include "vmm/base/error.hpp"
#include "vmm/core/vm_lifecycle.hpp"

using Catch::Contains;
using vmm::VmLifecycle;
using State = VmLifecycle::State;

TEST_CASE("a VM starts, pauses, resumes and stops", "[lifecycle]") {
    VmLifecycle life;
    CHECK(life.state() == State::NotStarted);
    life.start("InstanceStart");
    CHECK(life.state() == State::Running);
    life.pause("PATCH /vm");
    CHECK(life.state() == State::Paused);
    life.pause("SIGUSR1");  // pausing a paused VM leaves it paused
    CHECK(life.state() == State::Paused);
    life.resume("SIGUSR2");
    CHECK(life.state() == State::Running);
    life.resume("PATCH /vm");
    CHECK(life.state() == State::Running);
    life.stopping();
    CHECK(life.state() == State::Stopping);
    life.stopped();
    CHECK(life.state() == State::Stopped);
    life.stopping();  // a late stop request does not bring it back
    CHECK(life.state() == State::Stopped);
}

TEST_CASE("a VM not started can neither pause nor resume", "[lifecycle]") {
    VmLifecycle life;
    CHECK_THROWS_WITH(life.pause("PATCH /vm"),
                      Contains("PATCH /vm") && Contains("while the VM is Not started"));
    CHECK_THROWS_AS(life.resume("SIGUSR2"), vmm::Error);
    CHECK(life.state() == State::NotStarted);
}

TEST_CASE("a VM starts once", "[lifecycle]") {
    VmLifecycle life;
    life.start("InstanceStart");
    CHECK_THROWS_WITH(life.start("InstanceStart"), Contains("while the VM is Running"));
    life.pause("pause");
    CHECK_THROWS_WITH(life.start("InstanceStart"), Contains("while the VM is Paused"));
}

TEST_CASE("a stopping VM is neither paused nor resumed", "[lifecycle]") {
    VmLifecycle life;
    life.start("InstanceStart");
    life.stopping();
    CHECK_THROWS_WITH(life.pause("SIGUSR1"), Contains("while the VM is Stopping"));
    CHECK_THROWS_WITH(life.resume("SIGUSR2"), Contains("while the VM is Stopping"));
    CHECK(life.state() == State::Stopping);
    CHECK(std::string(VmLifecycle::name(State::NotStarted)) == "Not started");
}
