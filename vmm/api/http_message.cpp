#include "vmm/api/http_message.hpp"

#include <boost/beast/http/status.hpp>
#include <exception>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

namespace vmm::api {

HttpResponse fault_response(unsigned status, std::string_view message) {
    nlohmann::json body{{"fault_message", message}};
    // Messages can quote client bytes; invalid UTF-8 must not make dump() throw.
    return {status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

HttpResponse call_handler(const RequestHandler& handler, const HttpRequest& request) noexcept {
    try {
        HttpResponse response = handler(request);
        if (response.status < 200 || response.status > 599) {
            return fault_response(
                500, fmt::format("Internal error: handler returned status {}", response.status));
        }
        return response;
    } catch (const std::exception& e) {
        try {
            return fault_response(500, e.what());
        } catch (...) {
        }
    } catch (...) {
    }
    // Out of memory while reporting, or a non-std exception.
    return {500, R"({"fault_message": "Internal error"})"};
}

std::string serialize_response(const HttpResponse& response, bool keep_alive) {
    namespace http = boost::beast::http;
    std::string_view reason;
    if (http::int_to_status(response.status) != http::status::unknown) {
        auto text = http::obsolete_reason(static_cast<http::status>(response.status));
        reason = std::string_view(text.data(), text.size());
    }
    // 204 and 304 never carry a body.
    bool bodyless = response.status == 204 || response.status == 304;
    std::string_view body = bodyless ? std::string_view() : std::string_view(response.body);
    std::string out = fmt::format("HTTP/1.1 {} {}\r\nServer: Firecracker API\r\nConnection: {}\r\n",
                                  response.status, reason, keep_alive ? "keep-alive" : "close");
    if (!body.empty()) {
        out += "Content-Type: application/json\r\n";
    }
    out += fmt::format("Content-Length: {}\r\n\r\n", body.size());
    out += body;
    return out;
}

}  // namespace vmm::api
