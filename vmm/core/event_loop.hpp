// The I/O thread's loop: one Boost.Asio io_context on the main thread. It
// waits on stdin, signals and (later) device eventfds; other threads hand it
// work with post().
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <functional>

namespace vmm {

class EventLoop {
  public:
    EventLoop();

    boost::asio::io_context& context() { return io_; }

    // SIGINT, SIGTERM, SIGHUP and SIGQUIT go to `handler` on the loop thread.
    void on_termination_signal(std::function<void(int)> handler);

    // Runs handlers until stop().
    void run();
    // Safe from any thread (and from a handler).
    void stop();

  private:
    void wait_for_signal();

    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> keep_running_;
    boost::asio::signal_set signals_;
    std::function<void(int)> signal_handler_;
};

}  // namespace vmm
