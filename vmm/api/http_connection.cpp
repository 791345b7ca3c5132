#include "vmm/api/http_connection.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace vmm::api {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr size_t kReadChunk = 16 << 10;
// After an error response the client may still be sending a body; reading it
// for a moment lets the client see the response instead of EPIPE.
constexpr std::chrono::milliseconds kMaxDrain{1000};

}  // namespace

HttpConnection::HttpConnection(Socket socket, std::shared_ptr<HttpServerShared> shared)
    : socket_(std::move(socket)),
      deadline_(socket_.get_executor()),
      shared_(std::move(shared)),
      stream_(shared_->limits) {
    shared_->live.insert(this);
    ++shared_->open_connections;
}

HttpConnection::~HttpConnection() {
    close();
    shared_->live.erase(this);
}

void HttpConnection::start() {
    arm_deadline(shared_->limits.request_timeout);
    advance();
}

void HttpConnection::close() {
    if (closed_) {
        return;
    }
    closed_ = true;
    --shared_->open_connections;
    deadline_.cancel();
    error_code ignored;
    socket_.close(ignored);
}

void HttpConnection::arm_deadline(std::chrono::milliseconds timeout) {
    deadline_.expires_after(timeout);
    deadline_.async_wait([self = shared_from_this()](const error_code& ec) {
        // A wait that completed just before expires_after() moved the
        // deadline still arrives with success: check the time itself.
        if (ec || self->closed_ ||
            self->deadline_.expiry() > asio::steady_timer::clock_type::now()) {
            return;
        }
        if (!self->draining_) {
            ++self->shared_->counters.timeouts;
        }
        self->close();
    });
}

// Handles whatever the stream has ready, then reads more or writes a response.
void HttpConnection::advance() {
    if (closed_ || shared_->stopping) {
        close();
        return;
    }
    HttpRequestStream::Event event = stream_.next();
    switch (event.kind) {
        case HttpRequestStream::Event::Kind::need_more:
            read_more();
            return;
        case HttpRequestStream::Event::Kind::send_continue:
            send(std::string(kContinueResponse), false, false);
            return;
        case HttpRequestStream::Event::Kind::request: {
            ++shared_->counters.requests;
            HttpResponse response = call_handler(shared_->handler, event.request);
            send(serialize_response(response, event.keep_alive), !event.keep_alive, true);
            return;
        }
        case HttpRequestStream::Event::Kind::error:
            ++shared_->counters.bad_requests;
            send(serialize_response(event.response, false), true, true);
            return;
    }
}

void HttpConnection::read_more() {
    if (stream_.idle() && !idle_since_) {
        idle_since_ = std::chrono::steady_clock::now();
    }
    socket_.async_read_some(
        stream_.prepare(kReadChunk), [self = shared_from_this()](const error_code& ec, size_t n) {
            if (self->closed_) {
                return;
            }
            self->idle_since_.reset();
            if (ec) {
                // EOF: the client may have half-closed and still wait for an
                // answer to a partial request. Anything else: it is gone.
                HttpRequestStream::Event event;
                if (ec == asio::error::eof) {
                    event = self->stream_.finish();
                }
                if (event.kind == HttpRequestStream::Event::Kind::error) {
                    ++self->shared_->counters.bad_requests;
                    self->send(serialize_response(event.response, false), true, true);
                } else {
                    self->close();
                }
                return;
            }
            self->stream_.commit(n);
            self->advance();
        });
}

void HttpConnection::send(std::string bytes, bool then_close, bool final_response) {
    out_ = std::move(bytes);
    asio::async_write(
        socket_, asio::buffer(out_),
        [self = shared_from_this(), then_close, final_response](const error_code& ec, size_t) {
            if (self->closed_) {
                return;
            }
            if (ec) {
                self->close();
            } else if (then_close) {
                self->drain_then_close();
            } else {
                if (final_response) {
                    // The next request's time starts now.
                    self->arm_deadline(self->shared_->limits.request_timeout);
                }
                self->advance();
            }
        });
}

// Half-closes, then discards input until the client closes or a short
// deadline passes, so a client still writing a rejected body reads the 400.
void HttpConnection::drain_then_close() {
    draining_ = true;
    error_code ignored;
    socket_.shutdown(Socket::shutdown_send, ignored);
    arm_deadline(std::min(kMaxDrain, shared_->limits.request_timeout));
    out_.assign(kReadChunk, '\0');
    discard_input();
}

void HttpConnection::discard_input() {
    socket_.async_read_some(asio::buffer(out_),
                            [self = shared_from_this()](const error_code& ec, size_t) {
                                if (self->closed_) {
                                    return;
                                }
                                if (ec) {
                                    self->close();
                                    return;
                                }
                                self->discard_input();
                            });
}

}  // namespace vmm::api
