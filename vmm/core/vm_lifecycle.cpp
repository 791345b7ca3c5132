#include "vmm/core/vm_lifecycle.hpp"

#include <fmt/format.h>

#include "vmm/base/error.hpp"

namespace vmm {

namespace {

[[noreturn]] void refuse(const std::string& what, VmLifecycle::State state) {
    throw Error(fmt::format("{}: not possible while the VM is {}", what, VmLifecycle::name(state)));
}

}  // namespace

const char* VmLifecycle::name(State state) {
    switch (state) {
        case State::NotStarted:
            return "Not started";
        case State::Running:
            return "Running";
        case State::Paused:
            return "Paused";
        case State::Stopping:
            return "Stopping";
        case State::Stopped:
            return "Stopped";
    }
    return "?";
}

void VmLifecycle::start(const std::string& what) {
    if (state_ != State::NotStarted) {
        refuse(what, state_);
    }
    state_ = State::Running;
}

void VmLifecycle::restored(const std::string& what, bool running) {
    if (state_ != State::NotStarted) {
        refuse(what, state_);
    }
    state_ = running ? State::Running : State::Paused;
}

void VmLifecycle::pause(const std::string& what) {
    if (state_ != State::Running && state_ != State::Paused) {
        refuse(what, state_);
    }
    state_ = State::Paused;
}

void VmLifecycle::resume(const std::string& what) {
    if (state_ != State::Running && state_ != State::Paused) {
        refuse(what, state_);
    }
    state_ = State::Running;
}

void VmLifecycle::stopping() {
    if (state_ != State::Stopped) {
        state_ = State::Stopping;
    }
}

void VmLifecycle::stopped() {
    state_ = State::Stopped;
}

}  // namespace vmm
