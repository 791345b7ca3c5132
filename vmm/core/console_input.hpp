// Feeds the host's stdin to the guest's console (the serial port or a virtio
// console) from the I/O thread, with back-pressure (stops reading while the
// sink's queue is full) and the Ctrl-A escape: Ctrl-A x quits the VMM,
// Ctrl-A Ctrl-A sends one Ctrl-A.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>

#include "devices/console_sink.hpp"

namespace vmm {

class ConsoleInput {
  public:
    // `escape`: honour Ctrl-A sequences (when stdin is an interactive terminal).
    ConsoleInput(boost::asio::io_context& io, int fd, bool escape, ConsoleSink& sink,
                 std::function<void()> on_quit);

    // Starts waiting for input; returns false if the fd cannot be polled (a
    // regular file), in which case the guest simply gets no input.
    bool start();

  private:
    void wait();
    void read_available();
    // Applies the escape sequence; returns the bytes meant for the guest.
    size_t filter_escape(uint8_t* data, size_t length);

    boost::asio::io_context& io_;
    int fd_;
    bool escape_;
    bool escape_pending_ = false;
    ConsoleSink& sink_;
    std::function<void()> on_quit_;
    boost::asio::posix::stream_descriptor descriptor_;
    boost::asio::steady_timer retry_;
};

}  // namespace vmm
