#include "vmm/core/vm_exit.hpp"

namespace vmm {

void VmExit::request(int status, std::string reason, bool error) {
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

int VmExit::status() const {
    std::lock_guard lock(mutex_);
    return status_;
}

std::string VmExit::reason() const {
    std::lock_guard lock(mutex_);
    return reason_;
}

bool VmExit::is_error() const {
    std::lock_guard lock(mutex_);
    return error_;
}

}  // namespace vmm
