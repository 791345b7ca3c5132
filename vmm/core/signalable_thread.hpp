// A thread that any other thread may send a signal at any moment: before it
// is started, while it starts, while it runs, as it ends, after it was
// joined. Only while its body runs does the signal go out; otherwise it is a
// no-op. (A vCPU thread is kicked by whichever thread asks the VM to stop,
// and that can be a vCPU that started first, while the others are still
// being started: a kick that read the handle of a thread not yet made sent
// the signal to handle 0 and crashed.)
#pragma once

#include <pthread.h>

#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace vmm {

class SignalableThread {
  public:
    SignalableThread() = default;
    // Joins a thread still running (its body must end by itself).
    ~SignalableThread();
    SignalableThread(const SignalableThread&) = delete;
    SignalableThread& operator=(const SignalableThread&) = delete;

    // Runs `body` on a new thread named `name` (cut to 15 characters). The
    // owner calls start() and join(), from one thread; again after a join.
    void start(const std::string& name, std::function<void()> body);
    // Sends `signal` to the thread if its body is running; says whether it
    // did. Safe from any thread, the thread itself included.
    bool signal(int signal);
    // Whether the body is running (it may end right after the answer).
    bool running() const;
    // Waits for the thread to end; nothing to do if it was never started.
    void join();

  private:
    std::thread thread_;  // the owner's only
    mutable std::mutex mutex_;
    pthread_t handle_{};    // guarded by mutex_, valid while running_
    bool running_ = false;  // guarded by mutex_
};

}  // namespace vmm
