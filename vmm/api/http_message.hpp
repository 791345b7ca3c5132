// The API server's plain data: a request and a response as the endpoint
// handler sees them, the server's limits and counters, and the bytes a
// response becomes on the wire.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace vmm::api {

struct HttpRequest {
    std::string method;  // as sent, e.g. "PUT"
    std::string target;  // e.g. "/drives/rootfs"
    std::string body;
};

struct HttpResponse {
    unsigned status = 200;
    std::string body;  // JSON text, empty for 204
};

using RequestHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpLimits {
    size_t max_body_bytes = 51200;  // Firecracker's default (--http-api-max-payload-size)
    // The request line, fields and the blank line; a chunked body's chunk
    // extensions and trailers, together, have the same limit.
    size_t max_header_bytes = 8192;
    size_t max_header_fields = 64;
    // The whole request (headers and body) must arrive within this, counted
    // from accept or from the end of the previous response.
    std::chrono::milliseconds request_timeout{5000};
    // Beyond this a new connection closes the one idle the longest, or is
    // closed at once when every connection is in the middle of a request.
    size_t max_connections = 512;
};

struct HttpServerCounters {
    uint64_t connections = 0;   // accepted and served
    uint64_t requests = 0;      // well-formed requests passed to the handler
    uint64_t bad_requests = 0;  // malformed or over a limit: answered 400
    uint64_t timeouts = 0;      // closed because a request did not arrive in time
    uint64_t refused = 0;       // closed at once: max_connections reached, none idle
    uint64_t evicted = 0;       // idle, closed to make room for a new connection
};

// {"fault_message": message}, the body of every error response.
HttpResponse fault_response(unsigned status, std::string_view message);

// Runs `handler`; an exception becomes a 500 with its what() as the fault
// message, and a status outside 200..599 a 500 too (the server must not die).
HttpResponse call_handler(const RequestHandler& handler, const HttpRequest& request) noexcept;

// The HTTP/1.1 response: Server, Connection, Content-Type (with a body) and
// Content-Length headers.
std::string serialize_response(const HttpResponse& response, bool keep_alive);

// The interim response to "Expect: 100-continue".
inline constexpr std::string_view kContinueResponse = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace vmm::api
