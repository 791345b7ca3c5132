#include "vmm/core/console_input.hpp"

#include <unistd.h>

#include <array>
#include <chrono>

namespace vmm {

namespace {
constexpr uint8_t kEscapeByte = 0x01;  // Ctrl-A
constexpr uint8_t kQuitByte = 'x';
// While the guest drains its input queue, look again this often.
constexpr auto kFullQueueRetry = std::chrono::milliseconds(10);
}  // namespace

ConsoleInput::ConsoleInput(boost::asio::io_context& io, int fd, bool escape, ConsoleSink& sink,
                           std::function<void()> on_quit)
    : io_(io),
      fd_(fd),
      escape_(escape),
      sink_(sink),
      on_quit_(std::move(on_quit)),
      descriptor_(io),
      retry_(io) {}

bool ConsoleInput::start() {
    // The descriptor owns (and closes) what it is given: give it a duplicate
    // so the process's stdin stays open.
    int fd = ::dup(fd_);
    if (fd < 0) {
        return false;
    }
    boost::system::error_code error;
    descriptor_.assign(fd, error);
    if (error) {
        ::close(fd);
        return false;
    }
    wait();
    return true;
}

void ConsoleInput::wait() {
    descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                           [this](const boost::system::error_code& error) {
                               if (!error) {
                                   read_available();
                               }
                           });
}

void ConsoleInput::read_available() {
    size_t room = sink_.input_room();
    if (room == 0) {
        retry_.expires_after(kFullQueueRetry);
        retry_.async_wait([this](const boost::system::error_code& error) {
            if (!error) {
                read_available();
            }
        });
        return;
    }
    std::array<uint8_t, 4096> buffer;
    // Readable per epoll, so this read does not block.
    ssize_t n = ::read(descriptor_.native_handle(), buffer.data(), std::min(room, buffer.size()));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        wait();
        return;
    }
    if (n <= 0) {
        return;  // EOF or error: the guest gets no more input
    }
    size_t length = escape_ ? filter_escape(buffer.data(), size_t(n)) : size_t(n);
    sink_.enqueue_input(std::span(buffer.data(), length));
    wait();
}

size_t ConsoleInput::filter_escape(uint8_t* data, size_t length) {
    size_t out = 0;
    for (size_t i = 0; i < length; ++i) {
        uint8_t byte = data[i];
        if (escape_pending_) {
            escape_pending_ = false;
            if (byte == kQuitByte) {
                on_quit_();
                return out;
            }
            if (byte == kEscapeByte) {
                data[out++] = byte;
            }
            continue;  // unknown sequences are swallowed
        }
        if (byte == kEscapeByte) {
            escape_pending_ = true;
            continue;
        }
        data[out++] = byte;
    }
    return out;
}

}  // namespace vmm
