#include "vmm/api/http_server.hpp"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include "vmm/api/http_connection.hpp"
#include "vmm/api/http_request_stream.hpp"
#include "vmm/api/unix_socket_path.hpp"

namespace vmm::api {

namespace asio = boost::asio;
using boost::system::error_code;
using stream_protocol = asio::local::stream_protocol;

namespace {

constexpr int kBacklog = 128;
// accept() failing for lack of fds would fail again at once; wait instead of spinning.
constexpr std::chrono::milliseconds kAcceptRetry{100};

}  // namespace

// The accepting socket, shared with its pending operations so they can run
// (and find `stopping`) after the server is destroyed.
class HttpServer::Listener : public std::enable_shared_from_this<Listener> {
  public:
    Listener(asio::io_context& io, BoundSocket socket, std::shared_ptr<HttpServerShared> shared)
        : acceptor_(io), retry_(io), socket_(std::move(socket)), shared_(std::move(shared)) {
        acceptor_.assign(stream_protocol(), socket_.fd.release());
    }

    void accept() {
        acceptor_.async_accept(
            [self = shared_from_this()](const error_code& ec, stream_protocol::socket peer) {
                if (self->shared_->stopping || ec == asio::error::operation_aborted) {
                    return;
                }
                if (ec) {
                    self->retry_.expires_after(kAcceptRetry);
                    self->retry_.async_wait([self](const error_code& wait_ec) {
                        if (!wait_ec && !self->shared_->stopping) {
                            self->accept();
                        }
                    });
                    return;
                }
                self->admit(std::move(peer));
                self->accept();
            });
    }

    void stop() {
        error_code ignored;
        acceptor_.close(ignored);
        retry_.cancel();
    }

    const BoundSocket& socket() const { return socket_; }

  private:
    void admit(stream_protocol::socket peer) {
        HttpServerShared& shared = *shared_;
        if (shared.open_connections >= shared.limits.max_connections && !evict_oldest_idle()) {
            ++shared.counters.refused;
            error_code ignored;
            peer.close(ignored);
            return;
        }
        ++shared.counters.connections;
        std::make_shared<HttpConnection>(std::move(peer), shared_)->start();
    }

    // At the bound, idle clients must not lock the API out: the one idle the
    // longest goes (it can reconnect). Connections in the middle of a request
    // stay, and are closed by request_timeout if they stall. A scan of at
    // most max_connections, only when the bound is reached.
    bool evict_oldest_idle() {
        HttpConnection* oldest = nullptr;
        std::chrono::steady_clock::time_point oldest_since{};
        for (HttpConnection* connection : shared_->live) {
            auto since = connection->idle_since();
            if (since && (oldest == nullptr || *since < oldest_since)) {
                oldest = connection;
                oldest_since = *since;
            }
        }
        if (oldest == nullptr) {
            return false;
        }
        oldest->close();
        ++shared_->counters.evicted;
        return true;
    }

    stream_protocol::acceptor acceptor_;
    asio::steady_timer retry_;
    BoundSocket socket_;  // its fd now belongs to acceptor_; device and inode remain
    std::shared_ptr<HttpServerShared> shared_;
};

HttpServer::HttpServer(asio::io_context& io, std::string path, RequestHandler handler,
                       HttpLimits limits)
    : path_(std::move(path)), shared_(std::make_shared<HttpServerShared>()) {
    shared_->handler = std::move(handler);
    shared_->limits = limits;
    remove_stale_socket(path_);
    listener_ = std::make_shared<Listener>(io, bind_listening_socket(path_, kBacklog), shared_);
}

HttpServer::~HttpServer() {
    shared_->stopping = true;
    listener_->stop();
    // close() does not run handlers inline, so the set does not change here;
    // copy it anyway, as a destructor must not trip over that.
    std::vector<HttpConnection*> connections(shared_->live.begin(), shared_->live.end());
    for (HttpConnection* connection : connections) {
        connection->close();
    }
    unlink_if_ours(path_, listener_->socket());
}

void HttpServer::start() {
    listener_->accept();
}

const HttpServerCounters& HttpServer::counters() const {
    return shared_->counters;
}

size_t HttpServer::open_connections() const {
    return shared_->open_connections;
}

std::vector<HttpResponse> serve_bytes(std::string_view bytes, const RequestHandler& handler,
                                      const HttpLimits& limits) {
    using Kind = HttpRequestStream::Event::Kind;
    std::vector<HttpResponse> responses;
    HttpRequestStream stream(limits);
    stream.append(bytes);
    bool at_eof = false;
    for (;;) {
        HttpRequestStream::Event event = at_eof ? stream.finish() : stream.next();
        switch (event.kind) {
            case Kind::need_more:
                if (at_eof) {
                    return responses;
                }
                at_eof = true;
                break;
            case Kind::send_continue:
                responses.push_back({100, {}});
                break;
            case Kind::request:
                responses.push_back(call_handler(handler, event.request));
                if (!event.keep_alive) {
                    return responses;  // the server closes here; later bytes are ignored
                }
                break;
            case Kind::error:
                responses.push_back(std::move(event.response));
                return responses;
        }
    }
}

}  // namespace vmm::api
