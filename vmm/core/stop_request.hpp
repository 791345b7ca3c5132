// How and why the VM stops. The first request wins (a guest poweroff racing a
// signal, two vCPUs failing at once); it then runs the stop hook, which kicks
// every vCPU out of KVM_RUN and stops the event loop.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>

namespace vmm {

// Documented process exit statuses (README, "Exit status").
namespace exit_status {
inline constexpr int kGuestStopped = 0;  // poweroff, reset, triple fault
inline constexpr int kError = 1;         // bad input or a host failure
inline constexpr int kUsage = 2;         // bad command line
inline constexpr int kGuestFault = 3;    // KVM could not run the guest further
inline constexpr int kSignalBase = 128;  // + signal number (SIGTERM: 143)
}  // namespace exit_status

class StopRequest {
  public:
    // Set before any thread can call request().
    void set_stop_hook(std::function<void()> hook) { stop_hook_ = std::move(hook); }

    // `error` marks a failure whose reason must reach the user.
    void request(int status, std::string reason, bool error = false);

    bool requested() const { return requested_.load(std::memory_order_acquire); }
    int status() const;
    std::string reason() const;
    bool is_error() const;

  private:
    std::function<void()> stop_hook_;
    std::atomic<bool> requested_{false};
    mutable std::mutex mutex_;
    int status_ = 0;
    std::string reason_;
    bool error_ = false;
};

}  // namespace vmm
