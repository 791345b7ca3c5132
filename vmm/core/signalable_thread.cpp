#include "vmm/core/signalable_thread.hpp"

#include <signal.h>

namespace vmm {

SignalableThread::~SignalableThread() {
    join();
}

void SignalableThread::start(const std::string& name, std::function<void()> body) {
    // Held until the handle is known: a signal() meanwhile waits for it, and
    // a body that ends at once waits for it before it says so.
    std::lock_guard lock(mutex_);
    // Named by the thread itself, before its body: a body that reports its
    // name (a seccomp violation) must not read it before the creator sets it.
    thread_ = std::thread([this, name = name.substr(0, 15), body = std::move(body)] {
        pthread_setname_np(pthread_self(), name.c_str());
        body();
        // The thread exists until this is seen: no signal can reach a
        // thread that is gone, or a handle reused by another.
        std::lock_guard done(mutex_);
        running_ = false;
    });
    handle_ = thread_.native_handle();
    running_ = true;
}

bool SignalableThread::signal(int signal) {
    std::lock_guard lock(mutex_);
    if (!running_) {
        return false;
    }
    pthread_kill(handle_, signal);
    return true;
}

bool SignalableThread::running() const {
    std::lock_guard lock(mutex_);
    return running_;
}

void SignalableThread::join() {
    if (thread_.joinable()) {
        thread_.join();
    }
}

}  // namespace vmm
