// The API server: HTTP/1.1 on a Unix socket, on the caller's io_context
// (Boost.Beast's parser, Asio's local sockets). Each request goes to a
// RequestHandler; the server itself only speaks HTTP and enforces HttpLimits:
// malformed or oversized requests get a 400 and the connection is closed,
// slow or idle clients are closed after request_timeout (or, when the
// connection bound is reached, the client idle the longest makes room for a
// new one), and nothing a client sends blocks the loop or other clients.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/api/http_message.hpp"

namespace vmm::api {

struct HttpServerShared;

class HttpServer {
  public:
    // Creates the socket at `path` with mode 0600 and listens. An existing
    // path is refused (vmm::Error naming it) unless it is a stale socket,
    // which is replaced.
    HttpServer(boost::asio::io_context& io, std::string path, RequestHandler handler,
               HttpLimits limits = {});
    // Stops accepting, closes every connection, unlinks the path.
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Begins accepting (asynchronously, on io's thread).
    void start();

    const HttpServerCounters& counters() const;
    size_t open_connections() const;
    const std::string& path() const { return path_; }

  private:
    class Listener;

    std::string path_;
    std::shared_ptr<HttpServerShared> shared_;
    std::shared_ptr<Listener> listener_;
};

// The server's parsing rules without a socket: feeds `bytes` (then EOF) to the
// parser and returns the responses the server would send, in order, calling
// `handler` for each well-formed request. An interim "100 Continue" appears as
// a status 100 response. Stops after the first error response, as the server
// closes the connection there.
std::vector<HttpResponse> serve_bytes(std::string_view bytes, const RequestHandler& handler,
                                      const HttpLimits& limits);

}  // namespace vmm::api
