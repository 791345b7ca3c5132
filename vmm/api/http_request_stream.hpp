// Turns the bytes one client sends into HTTP requests under HttpLimits,
// without any I/O. A server connection and serve_bytes() both parse through
// it, so a fuzzer over serve_bytes() exercises exactly the server's rules.
#pragma once

#include <boost/asio/buffer.hpp>
#include <memory>
#include <string_view>

#include "vmm/api/http_message.hpp"

namespace vmm::api {

class HttpRequestStream {
  public:
    struct Event {
        enum class Kind {
            need_more,      // everything buffered is consumed; read more
            send_continue,  // the client waits for "100 Continue" before its body
            request,        // a complete request (`request`, `keep_alive`)
            error,          // malformed or over a limit: send `response`, then close
        };
        Kind kind = Kind::need_more;
        HttpRequest request;
        bool keep_alive = false;
        HttpResponse response;
    };

    explicit HttpRequestStream(const HttpLimits& limits);
    ~HttpRequestStream();
    HttpRequestStream(const HttpRequestStream&) = delete;
    HttpRequestStream& operator=(const HttpRequestStream&) = delete;

    // Room for up to `n` more bytes from the client; then commit() what arrived.
    boost::asio::mutable_buffer prepare(size_t n);
    void commit(size_t n);
    void append(std::string_view bytes);

    // Parses what is buffered, up to the next event. Call again after a
    // request or send_continue: pipelined requests wait in the buffer.
    // After an error the stream is finished; close the connection.
    Event next();
    // The client closed its side: an error if it left a partial request.
    Event finish();
    // Between requests: nothing of a next request has arrived.
    bool idle() const;

  private:
    class Parser;
    Event fail(std::string message);

    HttpLimits limits_;
    struct Buffer;
    std::unique_ptr<Buffer> buffer_;
    std::unique_ptr<Parser> parser_;  // the request being parsed
    bool continue_sent_ = false;
    bool failed_ = false;
};

}  // namespace vmm::api
