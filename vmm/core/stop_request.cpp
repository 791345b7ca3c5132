#include "vmm/core/stop_request.hpp"

namespace vmm {

void StopRequest::request(int status, std::string reason, bool error) {
    {
        std::lock_guard lock(mutex_);
        if (requested_.load()) {
            return;
        }
        status_ = status;
        reason_ = std::move(reason);
        error_ = error;
        requested_.store(true, std::memory_order_release);
    }
    if (stop_hook_) {
        stop_hook_();
    }
}

int StopRequest::status() const {
    std::lock_guard lock(mutex_);
    return status_;
}

std::string StopRequest::reason() const {
    std::lock_guard lock(mutex_);
    return reason_;
}

bool StopRequest::is_error() const {
    std::lock_guard lock(mutex_);
    return error_;
}

}  // namespace vmm
