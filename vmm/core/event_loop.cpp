#include "vmm/core/event_loop.hpp"

#include <signal.h>

namespace vmm {

EventLoop::EventLoop()
    : keep_running_(boost::asio::make_work_guard(io_)), signals_(io_, SIGINT, SIGTERM, SIGHUP) {
    signals_.add(SIGQUIT);
}

void EventLoop::on_termination_signal(std::function<void(int)> handler) {
    signal_handler_ = std::move(handler);
    wait_for_signal();
}

void EventLoop::wait_for_signal() {
    signals_.async_wait([this](const boost::system::error_code& error, int signal_number) {
        if (error) {
            return;  // cancelled at shutdown
        }
        signal_handler_(signal_number);
        wait_for_signal();
    });
}

void EventLoop::run() {
    io_.run();
}

void EventLoop::stop() {
    io_.stop();
}

}  // namespace vmm
