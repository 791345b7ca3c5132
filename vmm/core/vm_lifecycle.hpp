// The one state machine of a VM's life. The command line, the signals
// (SIGUSR1/SIGUSR2, SIGTERM), the API and later snapshots all change it
// through Instance, which owns it; GET / reads it. Every transition is
// checked here, so a request the state does not allow fails the same way
// whichever path it came by.
//
//   NotStarted --start--> Running <--pause/resume--> Paused
//   NotStarted --snapshot load--> Paused (or Running with resume_vm)
//   Running, Paused --stop requested--> Stopping --threads joined--> Stopped
#pragma once

#include <string>

namespace vmm {

class VmLifecycle {
  public:
    enum class State { NotStarted, Running, Paused, Stopping, Stopped };

    State state() const { return state_; }
    // "Not started", "Running", "Paused", "Stopping", "Stopped".
    static const char* name(State state);

    // Each throws Error naming `what` (the request) and the current state
    // when the transition is not allowed from it.
    void start(const std::string& what);  // NotStarted -> Running
    // A snapshot loaded: NotStarted -> Running, or Paused unless `running`.
    void restored(const std::string& what, bool running);
    void pause(const std::string& what);   // Running -> Paused (Paused: stays)
    void resume(const std::string& what);  // Paused -> Running (Running: stays)
    // Whatever the state but Stopped: the VM is on its way out. Never throws.
    void stopping();
    void stopped();  // -> Stopped

  private:
    State state_ = State::NotStarted;
};

}  // namespace vmm
