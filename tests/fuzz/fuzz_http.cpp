// libFuzzer target: the API server's HTTP parsing. The input is the byte
// stream one client sends; serve_bytes() answers it with an echo handler.
// Besides sanitizer reports, it aborts when a response breaks the server's
// rules (an error that is not last, a 400 without a JSON fault_message, a
// body over the limit reaching the handler), or when feeding the same bytes
// in small pieces, as a socket delivers them, gives different answers.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/api/http_request_stream.hpp"
#include "vmm/api/http_server.hpp"

namespace {

using vmm::api::HttpLimits;
using vmm::api::HttpRequest;
using vmm::api::HttpRequestStream;
using vmm::api::HttpResponse;

// Small limits, so the fuzzer reaches every one of them.
HttpLimits fuzz_limits() {
    HttpLimits limits;
    limits.max_body_bytes = 512;
    limits.max_header_bytes = 1024;
    limits.max_header_fields = 8;
    return limits;
}

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_http: %s\n", what);
        std::abort();
    }
}

HttpResponse echo(const HttpRequest& request) {
    check(request.body.size() <= fuzz_limits().max_body_bytes, "body over the limit");
    if (request.target == "/throw") {
        throw std::runtime_error(request.body);
    }
    return {200, request.method + " " + request.target + " " + request.body};
}

// The connection's loop, with the input arriving in pieces of 1 to 7 bytes.
std::vector<HttpResponse> serve_in_pieces(std::string_view bytes, const HttpLimits& limits) {
    using Kind = HttpRequestStream::Event::Kind;
    std::vector<HttpResponse> responses;
    HttpRequestStream stream(limits);
    size_t piece = 1;
    for (;;) {
        HttpRequestStream::Event event = stream.next();
        switch (event.kind) {
            case Kind::need_more: {
                if (bytes.empty()) {
                    event = stream.finish();
                    if (event.kind == Kind::error) {
                        responses.push_back(event.response);
                    }
                    return responses;
                }
                size_t n = std::min(bytes.size(), piece);
                piece = piece % 7 + 1;
                stream.append(bytes.substr(0, n));
                bytes.remove_prefix(n);
                break;
            }
            case Kind::send_continue:
                break;  // depends on how the bytes arrive; not compared
            case Kind::request:
                responses.push_back(vmm::api::call_handler(echo, event.request));
                if (!event.keep_alive) {
                    return responses;
                }
                break;
            case Kind::error:
                responses.push_back(event.response);
                return responses;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    HttpLimits limits = fuzz_limits();
    std::vector<HttpResponse> whole = vmm::api::serve_bytes(bytes, echo, limits);

    std::vector<HttpResponse> finals;
    for (size_t i = 0; i < whole.size(); ++i) {
        const HttpResponse& response = whole[i];
        if (response.status == 100) {
            check(i + 1 < whole.size(), "100 Continue as the last response");
            continue;
        }
        check(response.status == 200 || response.status == 400 || response.status == 500,
              "unexpected status");
        if (response.status != 200) {
            auto body = nlohmann::json::parse(response.body, nullptr, false);
            check(body.is_object() && body.size() == 1 && body.contains("fault_message") &&
                      body["fault_message"].is_string(),
                  "error body is not {\"fault_message\": string}");
        }
        if (response.status == 400) {
            check(i + 1 == whole.size(), "a response after a 400");
        }
        // Serializing must work for anything the handler returned.
        std::string wire = vmm::api::serialize_response(response, true);
        check(wire.rfind("HTTP/1.1 ", 0) == 0, "bad status line");
        finals.push_back(response);
    }

    std::vector<HttpResponse> pieces = serve_in_pieces(bytes, limits);
    check(pieces.size() == finals.size(), "different number of responses in pieces");
    for (size_t i = 0; i < finals.size(); ++i) {
        check(pieces[i].status == finals[i].status, "different status in pieces");
        if (finals[i].status != 400) {
            check(pieces[i].body == finals[i].body, "different body in pieces");
        }
    }
    return 0;
}
