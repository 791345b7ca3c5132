// One client of the API socket: reads requests through an HttpRequestStream,
// answers each with the handler's response, one at a time and in order, and
// closes when the client asks, after a protocol error, or when a request does
// not arrive within the limits' request_timeout. Everything is asynchronous
// on the server's io_context.
#pragma once

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include "vmm/api/http_message.hpp"
#include "vmm/api/http_request_stream.hpp"

namespace vmm::api {

class HttpConnection;

// What the server shares with its connections. Connections hold it by
// shared_ptr, so a handler that runs after the server is gone still finds it
// (and sees `stopping`).
struct HttpServerShared {
    RequestHandler handler;
    HttpLimits limits;
    HttpServerCounters counters;
    size_t open_connections = 0;
    std::unordered_set<HttpConnection*> live;  // to close them all at shutdown
    bool stopping = false;
};

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
  public:
    using Socket = boost::asio::local::stream_protocol::socket;

    HttpConnection(Socket socket, std::shared_ptr<HttpServerShared> shared);
    ~HttpConnection();
    HttpConnection(const HttpConnection&) = delete;
    HttpConnection& operator=(const HttpConnection&) = delete;

    void start();
    // Closes the socket at once; pending operations end with operation_aborted.
    void close();
    // Since when it waits for a request of which nothing has arrived yet
    // (nullopt while a request or response is under way): the server closes
    // the one idle the longest when it needs room for a new client.
    std::optional<std::chrono::steady_clock::time_point> idle_since() const {
        return closed_ ? std::nullopt : idle_since_;
    }

  private:
    void arm_deadline(std::chrono::milliseconds timeout);
    void advance();
    void read_more();
    void send(std::string bytes, bool then_close, bool final_response);
    void drain_then_close();
    void discard_input();

    Socket socket_;
    boost::asio::steady_timer deadline_;
    std::shared_ptr<HttpServerShared> shared_;
    HttpRequestStream stream_;
    std::string out_;
    bool closed_ = false;
    bool draining_ = false;  // an error response is out; only reading to EOF
    std::optional<std::chrono::steady_clock::time_point> idle_since_;
};

}  // namespace vmm::api
