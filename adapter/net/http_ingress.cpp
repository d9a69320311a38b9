#include "net/http_ingress.h"

#include <utility>  // before Asio: GCC 12 + Boost needs std::exchange declared

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <limits>
#include <mutex>
#include <type_traits>

#include "app/intake.h"
#include "common/log.h"
#include "net/listener.h"
#include "net/tls.h"

namespace adapter::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr std::uint32_t kMaxHeaderBytes = 16 * 1024;
// After an answer that leaves a body unread (401, 413), the connection is shut for sending and
// the rest of what the client already sent is read and dropped for at most this long, so that
// closing does not reset the connection before the client has read the answer.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::size_t kLingerBytes = 4 * 1024 * 1024;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

std::string peer_of(const tcp::socket& s) {
  boost::system::error_code ec;
  const auto ep = s.remote_endpoint(ec);
  if (ec) return "unknown";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

// The subject CN of a client certificate that the handshake verified, or "".
std::string verified_client_cn(SSL* ssl) {
  if (SSL_get_verify_result(ssl) != X509_V_OK) return {};
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return {};
  std::array<char, 256> cn{};
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn.data(),
                                          static_cast<int>(cn.size()));
  X509_free(cert);
  return n > 0 ? std::string(cn.data(), static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

// Status lookups go to the pool until stop(): the flag and the post share a lock, so that every
// lookup stop() lets in is work the pool has when stop() joins it, and none is posted after.
struct HttpIngress::Lookups {
  std::shared_ptr<asio::thread_pool> pool;
  std::mutex mu;
  bool stopped = false;

  // Runs `fn` on the pool; false once stopped (then it is not run).
  template <class Fn>
  bool run(Fn&& fn) {
    std::lock_guard lock(mu);
    if (stopped) return false;
    asio::post(*pool, std::forward<Fn>(fn));
    return true;
  }
  void stop() {
    {
      std::lock_guard lock(mu);
      if (stopped) return;
      stopped = true;
    }
    pool->join();  // the lookups let in before finish (each answers its session)
  }
};

namespace {

struct Shared {
  app::HttpListenerConfig config;
  app::FeedIntake& intake;
  app::HttpStats& stats;
  std::shared_ptr<HttpIngress::Lookups> lookups;
};

// "/feeds/{name}" -> name; "/messages/{id}" -> id. Query strings are not part of either API.
std::optional<std::string_view> after_prefix(std::string_view target, std::string_view prefix) {
  if (target.size() <= prefix.size() || target.substr(0, prefix.size()) != prefix) return {};
  std::string_view rest = target.substr(prefix.size());
  if (rest.find_first_of("/?#") != std::string_view::npos) return {};
  return rest;
}

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(std::shared_ptr<Shared> shared, tcp::socket socket, Args&&... tls)
      : shared_(std::move(shared)), stream_(std::move(socket), std::forward<Args>(tls)...) {
    peer_ = peer_of(beast::get_lowest_layer(stream_).socket());
    shared_->stats.connections_active.fetch_add(1, std::memory_order_relaxed);
  }
  ~Session() { shared_->stats.connections_active.fetch_sub(1, std::memory_order_relaxed); }

  void start() {
    boost::system::error_code ec;
    beast::get_lowest_layer(stream_).socket().set_option(tcp::no_delay(true), ec);
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      beast::get_lowest_layer(stream_).expires_after(shared_->config.tls->handshake_timeout);
      stream_.async_handshake(
          ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code e) {
            if (e) {
              app::bump(self->shared_->stats.tls_handshake_failures);
              log::warn("http.tls_handshake_failed", {{"listener", self->shared_->config.name},
                                                      {"peer", self->peer_},
                                                      {"error", e.message()}});
              return self->close();
            }
            self->client_cn_ = verified_client_cn(self->stream_.native_handle());
            self->read_header();
          });
    } else {
      read_header();
    }
  }

 private:
  const app::HttpListenerConfig& config() const { return shared_->config; }

  void read_header() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    // The body's limit is applied once the headers are in (Content-Length checked first, with
    // the credentials), so that the answer to an oversized body can say who sent it.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    // Waiting for the next request of a kept-alive connection is bounded by idle_timeout.
    beast::get_lowest_layer(stream_).expires_after(config().idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                              self->on_header(ec);
                            });
  }

  void on_header(beast::error_code ec) {
    if (ec) {
      if (ec == beast::error::timeout) {
        // A request had begun (an idle keep-alive connection timing out is not one): the parser
        // or the buffer holds some of it, or its bytes wait in the socket, not yet read because
        // this thread was busy when the time ran out.
        boost::system::error_code unread_ec;
        const std::size_t unread = beast::get_lowest_layer(stream_).socket().available(unread_ec);
        if (parser_->got_some() || buffer_.size() > 0 || (!unread_ec && unread > 0)) {
          app::bump(shared_->stats.read_timeouts);
        }
        return close();
      }
      if (ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == asio::error::connection_reset || ec == ssl::error::stream_truncated) {
        return close();
      }
      // Not HTTP, or headers over 16 KiB: say so and close.
      app::bump(shared_->stats.bad_requests);
      const bool too_big = ec == http::error::header_limit;
      return respond(app::operation_outcome(too_big ? 431 : 400, "structure",
                                            too_big ? "request headers larger than 16 KiB"
                                                    : "not an HTTP/1.1 request: " + ec.message()),
                     true);
    }
    app::bump(shared_->stats.requests);
    received_at_us_ = app::now_us();
    const auto& req = parser_->get();
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view authorization(req[http::field::authorization].data(),
                                         req[http::field::authorization].size());
    if (auto feed_name = after_prefix(target, "/feeds/")) {
      if (req.method() != http::verb::post) return method_not_allowed("POST");
      feed_ = shared_->intake.authenticate(*feed_name, authorization, client_cn_);
      if (feed_ == nullptr) return unauthorized();
      const auto declared = parser_->content_length();
      if (declared && *declared > config().max_body_bytes) return too_large(*declared);
      if (!declared && !parser_->chunked()) {
        return respond(app::operation_outcome(411, "structure",
                                              "a document needs Content-Length or chunked "
                                              "Transfer-Encoding"),
                       true);
      }
      parser_->body_limit(config().max_body_bytes);
      if (beast::iequals(req[http::field::expect], "100-continue")) {
        auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                       req.version());
        return http::async_write(
            stream_, *cont,
            [self = this->shared_from_this(), cont](beast::error_code e, std::size_t) {
              if (e) return self->close();
              self->read_body();
            });
      }
      return read_body();
    }
    if (auto id_text = after_prefix(target, "/messages/")) {
      if (req.method() != http::verb::get) return method_not_allowed("GET");
      const app::HttpFeedConfig* asker =
          shared_->intake.authenticate_any(authorization, client_cn_);
      if (asker == nullptr) return unauthorized();
      std::int64_t id = 0;
      const auto [end, err] =
          std::from_chars(id_text->data(), id_text->data() + id_text->size(), id);
      if (err != std::errc() || end != id_text->data() + id_text->size() || id <= 0) {
        app::bump(shared_->stats.bad_requests);
        return respond(
            app::operation_outcome(404, "not-found", "no message '" + std::string(*id_text) + "'"),
            !parser_->is_done());
      }
      return look_up_status(id, *asker);
    }
    app::bump(shared_->stats.bad_requests);
    respond(app::operation_outcome(404, "not-found",
                                   "endpoints: POST /feeds/{feed}, GET /messages/{id}"),
            !parser_->is_done());
  }

  // On the lookup pool, then back on this session's strand to answer.
  void look_up_status(std::int64_t id, const app::HttpFeedConfig& asker) {
    const bool taken = shared_->lookups->run([self = this->shared_from_this(), id, &asker] {
      app::HttpAnswer a = self->shared_->intake.status(id, asker);
      asio::post(self->stream_.get_executor(), [self, a = std::move(a)]() mutable {
        self->respond(std::move(a), !self->parser_->is_done());
      });
    });
    if (!taken) {
      respond(app::operation_outcome(503, "transient", "the listener is stopping"), true);
    }
  }

  void method_not_allowed(const char* allowed) {
    app::bump(shared_->stats.bad_requests);
    app::HttpAnswer a = app::operation_outcome(
        405, "not-supported", std::string("this endpoint takes ") + allowed + " only");
    respond(std::move(a), !parser_->is_done(), allowed);
  }

  void unauthorized() {
    app::bump(shared_->stats.unauthorized);
    log::warn("http.unauthorized", {{"listener", config().name}, {"peer", peer_}});
    respond(app::operation_outcome(401, "security",
                                   "no valid credentials for this feed: send "
                                   "'Authorization: Bearer <the feed's API key>' or its client "
                                   "certificate"),
            !parser_->is_done());
  }

  void too_large(std::uint64_t declared) {
    shared_->intake.submit_too_large(
        *feed_, peer_, declared, received_at_us_,
        [self = this->shared_from_this()](app::HttpAnswer a) {
          asio::post(self->stream_.get_executor(),
                     [self, a = std::move(a)]() mutable { self->respond(std::move(a), true); });
        });
  }

  void read_body() {
    beast::get_lowest_layer(stream_).expires_after(config().read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_body(ec);
                     });
  }

  void on_body(beast::error_code ec) {
    if (ec == http::error::body_limit) return too_large(0);  // chunked, past the limit
    if (ec) {
      if (ec == beast::error::timeout) {
        app::bump(shared_->stats.read_timeouts);
        log::info("http.read_timeout", {{"listener", config().name}, {"peer", peer_}});
      }
      return close();  // the client is gone or too slow: nothing complete to store
    }
    auto& req = parser_->get();
    app::FeedRequest request;
    request.feed = feed_;
    request.content_type = std::string(req[http::field::content_type]);
    request.body = std::move(req.body());
    request.peer = peer_;
    request.received_at_us = received_at_us_;
    keep_alive_ = req.keep_alive();
    shared_->intake.submit(
        std::move(request), [self = this->shared_from_this()](app::HttpAnswer a) {
          // The store's thread: back to this session's strand.
          asio::post(self->stream_.get_executor(), [self, a = std::move(a)]() mutable {
            self->respond(std::move(a), !self->keep_alive_);
          });
        });
  }

  // Writes the answer; `close` ends the connection after it (lingering if a body is unread).
  void respond(app::HttpAnswer a, bool close, const char* allow = nullptr) {
    const unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(a.status), version);
    res->set(http::field::server, "adapterd");
    res->set(http::field::content_type, a.content_type);
    if (!a.location.empty()) res->set(http::field::location, a.location);
    if (a.retry_after_seconds > 0)
      res->set(http::field::retry_after, std::to_string(a.retry_after_seconds));
    if (a.status == 401) res->set(http::field::www_authenticate, "Bearer");
    if (allow != nullptr) res->set(http::field::allow, allow);
    res->keep_alive(!close);
    res->body() = std::move(a.body);
    res->prepare_payload();
    const bool body_unread = parser_ && !parser_->is_done();
    beast::get_lowest_layer(stream_).expires_after(config().read_timeout);
    http::async_write(stream_, *res,
                      [self = this->shared_from_this(), res, close, body_unread](
                          beast::error_code ec, std::size_t) {
                        if (ec) return self->close();
                        if (!close) return self->read_header();
                        if (body_unread) return self->linger();
                        self->close();
                      });
  }

  void linger() {
    boost::system::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ec);
    beast::get_lowest_layer(stream_).expires_after(kLingerTime);
    drain();
  }

  void drain() {
    beast::get_lowest_layer(stream_).async_read_some(
        asio::buffer(discard_),
        [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
          self->lingered_ += n;
          if (ec || self->lingered_ >= kLingerBytes) return self->close();
          self->drain();
        });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(stream_).socket().close(ec);
  }

  std::shared_ptr<Shared> shared_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const app::HttpFeedConfig* feed_ = nullptr;
  std::string peer_;
  std::string client_cn_;
  std::int64_t received_at_us_ = 0;
  bool keep_alive_ = true;
  bool closed_ = false;
  std::size_t lingered_ = 0;
  std::array<char, 16 * 1024> discard_{};
};

}  // namespace

HttpIngress::HttpIngress(std::shared_ptr<Listener> listener, std::shared_ptr<Lookups> lookups)
    : listener_(std::move(listener)), lookups_(std::move(lookups)) {}
HttpIngress::~HttpIngress() {  // NOLINT(bugprone-exception-escape): Asio members only throw on
                               // allocation failure
  stop();
}

Result<std::unique_ptr<HttpIngress>> HttpIngress::start(asio::io_context& ioc,
                                                        const app::HttpListenerConfig& config,
                                                        app::FeedIntake& intake,
                                                        app::HttpStats& stats,
                                                        std::shared_ptr<asio::thread_pool> pool) {
  std::shared_ptr<ssl::context> tls;
  if (config.tls) {
    auto ctx = make_server_tls_context(*config.tls);
    if (!ctx) return ctx.error();
    tls = std::move(*ctx);
  }
  auto listener = Listener::open(ioc, config.bind, config.port, "http", config.name);
  if (!listener) return listener.error();
  auto lookups = std::make_shared<Lookups>();
  lookups->pool = pool ? std::move(pool) : std::make_shared<asio::thread_pool>(kLookupThreads);
  auto shared = std::make_shared<Shared>(Shared{config, intake, stats, lookups});
  const ConnectionLimit limit{config.max_connections, &stats.connections_active,
                              &stats.connections_accepted, &stats.connections_refused};
  (*listener)->start(
      [shared, tls](tcp::socket socket) {
        if (tls) {
          std::make_shared<Session<TlsStream>>(shared, std::move(socket), *tls)->start();
        } else {
          std::make_shared<Session<PlainStream>>(shared, std::move(socket))->start();
        }
      },
      limit);
  return std::unique_ptr<HttpIngress>(new HttpIngress(std::move(*listener), std::move(lookups)));
}

std::uint16_t HttpIngress::port() const {
  return listener_->port();
}

void HttpIngress::stop() {
  if (listener_) listener_->stop();
  if (lookups_) lookups_->stop();
}

}  // namespace adapter::net
