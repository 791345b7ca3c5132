#include "vmm/api/http_request_stream.hpp"

#include <algorithm>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <limits>

#include <fmt/format.h>

namespace vmm::api {

namespace beast = boost::beast;
namespace http = boost::beast::http;

namespace {

std::string payload_too_large(uint64_t size, size_t limit) {
    // Firecracker's wording, which clients may match on.
    return fmt::format(
        "Request payload with size {} is larger than the limit of {} allowed by server.", size,
        limit);
}

std::string framing_too_large(size_t limit) {
    return fmt::format(
        "Invalid HTTP request: the chunk headers or trailers are larger than the limit of {} "
        "bytes.",
        limit);
}

}  // namespace

// Beast's parser with our callbacks: it collects method, target and body and
// enforces the field count and body limit itself, so each failure gets a
// message that says which limit.
class HttpRequestStream::Parser final : public http::basic_parser<true> {
  public:
    explicit Parser(const HttpLimits& limits) : limits_(limits) {
        header_limit(static_cast<std::uint32_t>(
            std::min<size_t>(limits.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
        body_limit(boost::none);  // checked in on_header_impl and on_chunk_header_impl
        eager(true);
    }

    HttpRequest request;
    bool expect_continue = false;
    std::string fault;        // set with the error code when a limit of ours is hit
    size_t header_bytes = 0;  // of this request's header block, consumed so far

  private:
    void on_request_impl(http::verb, beast::string_view method, beast::string_view target,
                         int version, beast::error_code&) override {
        request.method.assign(method.data(), method.size());
        request.target.assign(target.data(), target.size());
        version_ = version;
    }

    void on_response_impl(int, beast::string_view, int, beast::error_code&) override {}

    void on_field_impl(http::field name, beast::string_view name_text, beast::string_view value,
                       beast::error_code& ec) override {
        if (++fields_ > limits_.max_header_fields) {
            fault =
                fmt::format("Too many header fields: the limit is {}.", limits_.max_header_fields);
            ec = http::error::header_limit;
            return;
        }
        if (is_header_done()) {  // a trailer: Beast does not count these
            count_framing(name_text.size() + value.size() + 4, ec);
            return;
        }
        // RFC 9110 10.1.1: a 1.0 client's Expect is ignored.
        if (name == http::field::expect && version_ >= 11 &&
            beast::iequals(value, "100-continue")) {
            expect_continue = true;
        }
    }

    void on_header_impl(beast::error_code& ec) override {
        auto length = content_length();
        if (length && *length > limits_.max_body_bytes) {
            fault = payload_too_large(*length, limits_.max_body_bytes);
            ec = http::error::body_limit;
        }
    }

    void on_body_init_impl(const boost::optional<std::uint64_t>& length,
                           beast::error_code&) override {
        if (length) {
            request.body.reserve(*length);  // at most max_body_bytes, checked above
        }
    }

    size_t on_body_impl(beast::string_view body, beast::error_code&) override {
        request.body.append(body.data(), body.size());
        return body.size();
    }

    void on_chunk_header_impl(std::uint64_t size, beast::string_view extensions,
                              beast::error_code& ec) override {
        count_framing(extensions.size(), ec);
        if (ec) {
            return;
        }
        size_t have = request.body.size();  // never above the limit
        if (size > limits_.max_body_bytes - have) {
            uint64_t total = size > std::numeric_limits<uint64_t>::max() - have
                                 ? std::numeric_limits<uint64_t>::max()
                                 : have + size;
            fault = payload_too_large(total, limits_.max_body_bytes);
            ec = http::error::body_limit;
        }
    }

    size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, beast::error_code&) override {
        request.body.append(body.data(), body.size());
        return body.size();
    }

    void on_finish_impl(beast::error_code&) override {}

    // Trailers and chunk extensions count against the header limit too.
    void count_framing(size_t bytes, beast::error_code& ec) {
        framing_bytes_ += bytes;
        if (framing_bytes_ > limits_.max_header_bytes) {
            fault = framing_too_large(limits_.max_header_bytes);
            ec = http::error::header_limit;
        }
    }

    const HttpLimits& limits_;
    size_t fields_ = 0;
    size_t framing_bytes_ = 0;
    int version_ = 11;
};

struct HttpRequestStream::Buffer {
    beast::flat_buffer bytes;
};

HttpRequestStream::HttpRequestStream(const HttpLimits& limits)
    : limits_(limits), buffer_(std::make_unique<Buffer>()) {}

HttpRequestStream::~HttpRequestStream() = default;

boost::asio::mutable_buffer HttpRequestStream::prepare(size_t n) {
    return buffer_->bytes.prepare(n);
}

void HttpRequestStream::commit(size_t n) {
    buffer_->bytes.commit(n);
}

void HttpRequestStream::append(std::string_view bytes) {
    if (bytes.empty()) {
        return;  // memcpy must not see the null data() of an empty view
    }
    auto space = prepare(bytes.size());
    std::memcpy(space.data(), bytes.data(), bytes.size());
    commit(bytes.size());
}

HttpRequestStream::Event HttpRequestStream::fail(std::string message) {
    failed_ = true;
    parser_.reset();
    Event event;
    event.kind = Event::Kind::error;
    event.response = fault_response(400, message);
    return event;
}

HttpRequestStream::Event HttpRequestStream::next() {
    if (failed_) {
        return {};
    }
    auto& bytes = buffer_->bytes;
    while (bytes.size() > 0) {
        if (!parser_) {
            parser_ = std::make_unique<Parser>(limits_);
            continue_sent_ = false;
        }
        beast::error_code ec;
        // Beast is shown no more of a header block than the limit allows:
        // given more at once, it has accepted a block a few bytes over it,
        // which it refuses when the same bytes come in pieces.
        bool in_header = !parser_->is_header_done();
        size_t shown = bytes.size();
        if (in_header) {
            shown = std::min(shown, limits_.max_header_bytes - parser_->header_bytes);
        }
        size_t used = parser_->put(boost::asio::buffer(bytes.data(), shown), ec);
        bytes.consume(used);
        if (in_header) {
            parser_->header_bytes +=
                std::min(used, limits_.max_header_bytes - parser_->header_bytes);
        }
        if (ec == http::error::need_more && !parser_->is_header_done() &&
            parser_->header_bytes + bytes.size() >= limits_.max_header_bytes) {
            ec = http::error::header_limit;  // the whole limit is here, the block's end is not
        }
        if (ec == http::error::need_more) {
            // Beast keeps an unfinished header block, chunk-size line or
            // trailer block unconsumed until its end, and limits only the
            // first: bound what waits here for the others too. (Body bytes
            // are consumed as they come.)
            if (parser_->is_header_done() && bytes.size() > limits_.max_header_bytes) {
                return fail(framing_too_large(limits_.max_header_bytes));
            }
            break;
        }
        if (ec) {
            std::string message = parser_->fault.empty()
                                      ? fmt::format("Invalid HTTP request: {}.", ec.message())
                                      : std::move(parser_->fault);
            return fail(std::move(message));
        }
        if (parser_->is_done()) {
            Event event;
            event.kind = Event::Kind::request;
            event.keep_alive = parser_->keep_alive();
            event.request = std::move(parser_->request);
            parser_.reset();
            return event;
        }
        if (used == 0) {
            break;  // defensive: Beast wants more without saying so
        }
    }
    // Everything buffered is consumed and a body is still to come.
    if (parser_ && parser_->is_header_done() && parser_->expect_continue && !continue_sent_) {
        continue_sent_ = true;
        Event event;
        event.kind = Event::Kind::send_continue;
        return event;
    }
    return {};
}

bool HttpRequestStream::idle() const {
    return !failed_ && !parser_ && buffer_->bytes.size() == 0;
}

HttpRequestStream::Event HttpRequestStream::finish() {
    if (failed_ || (!parser_ && buffer_->bytes.size() == 0)) {
        return {};
    }
    return fail("Invalid HTTP request: the connection was closed in the middle of a request.");
}

}  // namespace vmm::api
