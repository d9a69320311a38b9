#include "net/http_client.h"

#include <utility>  // before Asio: GCC 12 + Boost needs std::exchange declared

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <deque>
#include <optional>

#include "net/url.h"

#ifndef ADAPTER_VERSION
#error "ADAPTER_VERSION must be defined (adapter/CMakeLists.txt sets it from the project version)"
#endif

namespace adapter::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

using Clock = std::chrono::steady_clock;
using Strand = asio::strand<asio::io_context::executor_type>;
using Done = std::function<void(Result<HttpResponse>)>;

// FHIR servers send a few small headers; this only stops a server that never ends them.
constexpr std::size_t kMaxResponseHeaderBytes = 64 * 1024;

std::string describe_size(std::size_t bytes) {
  constexpr std::size_t kKiB = 1024;
  constexpr std::size_t kMiB = kKiB * kKiB;
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
  if (bytes >= kKiB && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + " KiB";
  return std::to_string(bytes) + " bytes";
}

std::string describe_ms(std::chrono::milliseconds ms) {
  return std::to_string(ms.count()) + " ms";
}

// "Connection refused" -> "connection refused": an error reads as one sentence after the step.
std::string describe(const beast::error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    // Asio appends the library ("... (SSL routines)"), which says nothing to an operator.
    if (const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()))) {
      return reason;
    }
  }
  std::string text = ec.message();
  if (text.size() > 1 && text[0] >= 'A' && text[0] <= 'Z' && text[1] >= 'a' && text[1] <= 'z') {
    text[0] = static_cast<char>(text[0] - 'A' + 'a');
  }
  return text;
}

bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(a, b);
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// RFC 9110 token characters: what a header name may contain.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// No CR, LF or other control characters (tab aside): a value from a token file with a trailing
// newline must not become a second header.
bool is_field_value(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

// "timeout=5, max=100" -> 5 s: how long the server keeps an idle connection open.
std::optional<std::chrono::milliseconds> keep_alive_timeout(std::string_view value) {
  for (std::size_t i = 0; i + 8 <= value.size(); ++i) {
    if (!iequals(value.substr(i, 8), "timeout=")) continue;
    const char* begin = value.data() + i + 8;
    const char* end = value.data() + value.size();
    long seconds = 0;
    const auto parsed = std::from_chars(begin, end, seconds);
    if (parsed.ec != std::errc() || seconds < 0) return std::nullopt;
    return std::chrono::milliseconds(std::chrono::seconds(seconds));
  }
  return std::nullopt;
}

struct Exchange {
  http::request<http::string_body> request;
  bool head = false;  // a HEAD response has headers only
  Done done;
  Clock::time_point deadline{};  // set when a connection is first assigned
  bool assigned = false;
  bool retried = false;  // already tried once more on a fresh connection
  bool completed = false;
};

enum class Step { resolve, connect, handshake, write, read };

// One TCP (or TLS) connection. Touched only on the client's strand.
struct Connection {
  Connection(const Strand& strand, ssl::context* tls) : resolver(strand), timer(strand) {
    if (tls != nullptr) {
      tls_stream.emplace(strand, *tls);
    } else {
      plain.emplace(strand);
    }
  }
  tcp::socket& socket() { return tls_stream ? tls_stream->next_layer() : *plain; }

  template <class F>
  void with_stream(F&& f) {
    if (tls_stream) {
      f(*tls_stream);
    } else {
      f(*plain);
    }
  }

  std::optional<tcp::socket> plain;
  std::optional<beast::ssl_stream<tcp::socket>> tls_stream;
  tcp::resolver resolver;
  asio::steady_timer timer;
  std::uint64_t timer_generation = 0;  // a timer that fired before being re-armed is ignored
  beast::flat_buffer buffer;           // (must persist between reads)
  std::optional<http::response_parser<http::string_body>> parser;
  std::shared_ptr<Exchange> exchange;  // the request on this connection, if any
  Step step = Step::resolve;
  Clock::time_point connect_deadline{};
  bool established = false;  // connected and, for https, handshaken
  bool reused = false;       // it has answered a request before
  bool closed = false;
  Clock::time_point reusable_until{};
};

}  // namespace

class HttpClient::Impl : public std::enable_shared_from_this<HttpClient::Impl> {
 public:
  Impl(asio::io_context& ioc, Url base, HttpClientOptions options,
       std::shared_ptr<ssl::context> tls)
      : ioc_(ioc),
        strand_(asio::make_strand(ioc)),
        base_(std::move(base)),
        options_(std::move(options)),
        tls_(std::move(tls)),
        destination_(base_.authority()),
        host_header_(base_.host_header()) {
    base_dir_ = base_.path;
    if (base_dir_.back() != '/') base_dir_ += '/';
  }

  void send(HttpRequest request, Done done) {
    auto ex = prepare(request);
    if (!ex) {
      asio::post(ioc_, [done = std::move(done), error = std::move(ex).error()]() mutable {
        done(std::move(error));
      });
      return;
    }
    (*ex)->done = std::move(done);
    asio::post(strand_, [self = shared_from_this(), e = std::move(*ex)]() mutable {
      self->enqueue(std::move(e));
    });
  }

  void shutdown() {
    asio::post(strand_, [self = shared_from_this()] { self->on_shutdown(); });
  }

  HttpClientStats stats() const {
    HttpClientStats s;
    s.connections_opened = connections_opened_.load(std::memory_order_relaxed);
    s.requests_sent = requests_sent_.load(std::memory_order_relaxed);
    s.responses_received = responses_received_.load(std::memory_order_relaxed);
    s.stale_connections_closed = stale_connections_closed_.load(std::memory_order_relaxed);
    s.retried_on_fresh_connection = retried_.load(std::memory_order_relaxed);
    return s;
  }

  const std::string& destination() const { return destination_; }

 private:
  using ConnectionPtr = std::shared_ptr<Connection>;
  using ExchangePtr = std::shared_ptr<Exchange>;

  // Runs on the caller's thread: everything that can be wrong with the request itself.
  Result<ExchangePtr> prepare(HttpRequest& in) const {
    auto invalid = [&](const std::string& why) {
      return make_error(Errc::internal, "request to " + destination_ + ": " + why);
    };
    const http::verb verb = http::string_to_verb(in.method);
    if (verb == http::verb::unknown) return invalid("unknown HTTP method");
    auto target = resolve_target(in.target);
    if (!target) return invalid("invalid target: " + target.error().message);

    auto ex = std::make_shared<Exchange>();
    auto& r = ex->request;
    r.method(verb);
    r.target(*target);
    r.version(11);
    r.set(http::field::host, host_header_);
    bool has_user_agent = false;
    for (const auto& h : in.headers) {
      if (!is_token(h.name)) return invalid("invalid header name");
      if (!is_field_value(h.value)) {
        return invalid("header '" + h.name + "' has a control character in its value");
      }
      if (iequals(h.name, "host") || iequals(h.name, "content-length") ||
          iequals(h.name, "transfer-encoding") || iequals(h.name, "connection")) {
        return invalid("header '" + h.name + "' is set by the client");
      }
      if (iequals(h.name, "user-agent")) has_user_agent = true;
      r.insert(h.name, h.value);
    }
    if (!has_user_agent) r.set(http::field::user_agent, options_.user_agent);
    r.body() = std::move(in.body);
    r.prepare_payload();
    ex->head = verb == http::verb::head;
    return ex;
  }

  Result<std::string> resolve_target(std::string_view target) const {
    if (target.empty()) return base_.path;
    if (starts_with_nocase(target, "http://") || starts_with_nocase(target, "https://")) {
      auto url = parse_url(target);
      if (!url) return url.error();
      if (!url->same_origin(base_)) {
        return make_error(Errc::internal, "the URL names another server than " + destination_);
      }
      return url->target();
    }
    if (auto st = check_relative_target(target); !st) return st.error();
    if (target.front() == '/') return std::string(target);
    return base_dir_ + std::string(target);
  }

  void enqueue(ExchangePtr ex) {
    if (shut_down_) {
      return complete(*ex, make_error(Errc::connect_failed, "request to " + destination_ +
                                                                ": cancelled, the client is "
                                                                "shutting down"));
    }
    queue_.push_back(std::move(ex));
    dispatch();
    if (queue_.size() > options_.max_queued) {
      auto rejected = std::move(queue_.back());
      queue_.pop_back();
      complete(*rejected,
               make_error(Errc::request_queue_full, "request to " + destination_ + ": " +
                                                        std::to_string(queue_.size()) +
                                                        " requests already wait for a connection"));
    }
  }

  // Hands queued requests to idle or new connections, within max_connections.
  void dispatch() {
    while (!queue_.empty() && !shut_down_) {
      ConnectionPtr conn;
      if (!queue_.front()->retried) conn = take_idle();
      if (!conn) {
        if (connections_.size() >= options_.max_connections && !idle_.empty()) {
          close(idle_.front());  // a fresh connection is needed: make room
        }
        if (connections_.size() >= options_.max_connections) return;
        conn = std::make_shared<Connection>(strand_, tls_.get());
        connections_.push_back(conn);
      }
      auto ex = std::move(queue_.front());
      queue_.pop_front();
      start(conn, std::move(ex));
    }
  }

  // The most recently used idle connection that is still usable; the others are closed.
  ConnectionPtr take_idle() {
    while (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      if (Clock::now() < conn->reusable_until && still_open(*conn)) return conn;
      stale_connections_closed_.fetch_add(1, std::memory_order_relaxed);
      close(conn);
    }
    return nullptr;
  }

  // An idle HTTP/1.1 connection has nothing to read: readable bytes are the server's FIN, a
  // reset, a TLS close_notify or a stray answer, and each makes the connection unusable.
  static bool still_open(Connection& conn) {
    if (conn.buffer.size() != 0) return false;
    char byte = 0;
    const auto n = ::recv(conn.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  void start(const ConnectionPtr& conn, ExchangePtr ex) {
    if (!ex->assigned) {
      ex->assigned = true;
      ex->deadline = Clock::now() + options_.request_timeout;
    }
    conn->exchange = std::move(ex);
    if (conn->established) return do_write(conn);
    do_resolve(conn);
  }

  bool current(const ConnectionPtr& conn, const ExchangePtr& ex) const {
    return !conn->closed && conn->exchange == ex;
  }

  void arm_timer(const ConnectionPtr& conn, Clock::time_point at) {
    const auto generation = ++conn->timer_generation;
    conn->timer.expires_at(at);
    conn->timer.async_wait([self = shared_from_this(), conn, generation](beast::error_code ec) {
      if (ec || conn->closed || generation != conn->timer_generation) return;
      self->on_timeout(conn);
    });
  }

  void on_timeout(const ConnectionPtr& conn) {
    if (!conn->exchange) return;
    if (conn->step < Step::write) {
      // The callback is not left waiting for a DNS lookup that cannot be cancelled.
      const char* during = conn->step == Step::resolve     ? " (resolving the host name)"
                           : conn->step == Step::handshake ? " (TLS handshake)"
                                                           : "";
      const bool connect_limit = conn->connect_deadline <= conn->exchange->deadline;
      return fail(conn, Errc::connect_timeout,
                  connect_limit
                      ? "connect to " + destination_ + ": timed out after " +
                            describe_ms(options_.connect_timeout) + during
                      : "request to " + destination_ + ": timed out after " +
                            describe_ms(options_.request_timeout) + " while connecting" + during);
    }
    fail(conn, Errc::request_timeout,
         "request to " + destination_ + ": timed out after " +
             describe_ms(options_.request_timeout));
  }

  void do_resolve(const ConnectionPtr& conn) {
    conn->step = Step::resolve;
    conn->connect_deadline = Clock::now() + options_.connect_timeout;
    arm_timer(conn, std::min(conn->connect_deadline, conn->exchange->deadline));
    conn->resolver.async_resolve(
        base_.host, std::to_string(base_.port), tcp::resolver::numeric_service,
        [self = shared_from_this(), conn, ex = conn->exchange](
            beast::error_code ec, const tcp::resolver::results_type& endpoints) {
          if (!self->current(conn, ex)) return;
          self->on_resolve(conn, ec, endpoints);
        });
  }

  void on_resolve(const ConnectionPtr& conn, beast::error_code ec,
                  const tcp::resolver::results_type& endpoints) {
    if (ec)
      return fail(conn, Errc::connect_failed, "resolve " + destination_ + ": " + describe(ec));
    conn->step = Step::connect;
    asio::async_connect(conn->socket(), endpoints,
                        [self = shared_from_this(), conn, ex = conn->exchange](
                            beast::error_code e, const tcp::endpoint&) {
                          if (!self->current(conn, ex)) return;
                          self->on_connect(conn, e);
                        });
  }

  void on_connect(const ConnectionPtr& conn, beast::error_code ec) {
    if (ec)
      return fail(conn, Errc::connect_failed, "connect to " + destination_ + ": " + describe(ec));
    connections_opened_.fetch_add(1, std::memory_order_relaxed);
    beast::error_code ignored;
    conn->socket().set_option(tcp::no_delay(true), ignored);  // requests are written whole
    if (!conn->tls_stream) {
      conn->established = true;
      return do_write(conn);
    }
    do_handshake(conn);
  }

  void do_handshake(const ConnectionPtr& conn) {
    conn->step = Step::handshake;
    SSL* ssl_handle = conn->tls_stream->native_handle();
    bool set = false;
    if (base_.host_is_ip()) {
      // No SNI for addresses (RFC 6066); the certificate must list the address itself.
      set = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle), base_.host.c_str()) == 1;
    } else {
      // SNI (SSL_set_tlsext_host_name, spelled out: the macro casts C-style) and the name the
      // certificate must carry, checked by OpenSSL during the handshake.
      set = SSL_ctrl(ssl_handle, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     const_cast<char*>(base_.host.c_str())) == 1 &&
            SSL_set1_host(ssl_handle, base_.host.c_str()) == 1;
    }
    if (!set) {
      return fail(conn, Errc::connect_failed,
                  "TLS handshake with " + destination_ + ": cannot set the expected host name");
    }
    conn->tls_stream->async_handshake(
        ssl::stream_base::client,
        [self = shared_from_this(), conn, ex = conn->exchange](beast::error_code ec) {
          if (!self->current(conn, ex)) return;
          self->on_handshake(conn, ec);
        });
  }

  void on_handshake(const ConnectionPtr& conn, beast::error_code ec) {
    if (ec) {
      const long verify = SSL_get_verify_result(conn->tls_stream->native_handle());
      if (verify != X509_V_OK) {
        return fail(conn, Errc::tls_verify_failed,
                    "TLS handshake with " + destination_ + ": certificate verify failed (" +
                        X509_verify_cert_error_string(verify) + ")");
      }
      return fail(conn, Errc::connect_failed,
                  "TLS handshake with " + destination_ + ": " + describe(ec));
    }
    conn->established = true;
    do_write(conn);
  }

  void do_write(const ConnectionPtr& conn) {
    conn->step = Step::write;
    arm_timer(conn, conn->exchange->deadline);
    auto handler = [self = shared_from_this(), conn, ex = conn->exchange](beast::error_code ec,
                                                                          std::size_t written) {
      if (!self->current(conn, ex)) return;
      self->on_write(conn, ec, written);
    };
    const auto& request = conn->exchange->request;
    conn->with_stream([&](auto& stream) { http::async_write(stream, request, handler); });
  }

  void on_write(const ConnectionPtr& conn, beast::error_code ec, std::size_t written) {
    if (ec) {
      // A kept-alive connection the server closed in the instant before reuse: nothing of the
      // request reached it, so one more try on a fresh connection is safe.
      if (written == 0 && conn->reused && !conn->exchange->retried && !shut_down_) {
        auto ex = std::move(conn->exchange);
        conn->exchange.reset();
        ex->retried = true;
        retried_.fetch_add(1, std::memory_order_relaxed);
        close(conn);
        queue_.push_front(std::move(ex));
        return dispatch();
      }
      return fail(
          conn, Errc::connection_dropped,
          "request to " + destination_ + ": connection dropped while sending: " + describe(ec));
    }
    requests_sent_.fetch_add(1, std::memory_order_relaxed);
    do_read(conn);
  }

  void do_read(const ConnectionPtr& conn) {
    conn->step = Step::read;
    auto& parser = conn->parser.emplace();
    parser.header_limit(static_cast<std::uint32_t>(kMaxResponseHeaderBytes));
    parser.body_limit(static_cast<std::uint64_t>(options_.max_response_bytes));
    if (conn->exchange->head) parser.skip(true);
    auto handler = [self = shared_from_this(), conn, ex = conn->exchange](beast::error_code ec,
                                                                          std::size_t) {
      if (!self->current(conn, ex)) return;
      self->on_read(conn, ec);
    };
    conn->with_stream(
        [&](auto& stream) { http::async_read(stream, conn->buffer, parser, handler); });
  }

  void on_read(const ConnectionPtr& conn, beast::error_code ec) {
    if (ec) return fail_read(conn, ec);
    auto& res = conn->parser->get();
    const unsigned status = res.result_int();
    if (status / 100 == 1 && status != 101) return do_read(conn);  // interim; the answer follows

    HttpResponse out;
    out.status = status;
    for (const auto& field : res) {
      out.headers.push_back({std::string(field.name_string()), std::string(field.value())});
    }
    out.body = std::move(res.body());
    bool keep = res.keep_alive() && !res.need_eof() && status != 101 && !shut_down_;
    auto reusable_for = options_.idle_timeout;
    if (const auto hint = keep_alive_timeout(out.header("Keep-Alive"))) {
      const auto margin = std::min(std::chrono::milliseconds(1000), *hint / 2);
      reusable_for = std::min(reusable_for, *hint - margin);
    }
    if (reusable_for.count() <= 0) keep = false;

    auto ex = std::move(conn->exchange);
    conn->exchange.reset();
    conn->parser.reset();
    responses_received_.fetch_add(1, std::memory_order_relaxed);
    complete(*ex, std::move(out));
    if (keep) {
      ++conn->timer_generation;
      conn->timer.cancel();
      conn->reused = true;
      conn->reusable_until = Clock::now() + reusable_for;
      idle_.push_back(conn);
    } else {
      close(conn);
    }
    dispatch();
  }

  void fail_read(const ConnectionPtr& conn, beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return fail(conn, Errc::response_too_large,
                  "response from " + destination_ + ": body exceeds " +
                      describe_size(options_.max_response_bytes));
    }
    if (ec == http::error::header_limit) {
      return fail(conn, Errc::response_too_large,
                  "response from " + destination_ + ": header exceeds " +
                      describe_size(kMaxResponseHeaderBytes));
    }
    const bool closed = ec == http::error::end_of_stream || ec == http::error::partial_message ||
                        ec == asio::error::eof || ec == asio::error::connection_reset ||
                        ec == asio::error::broken_pipe || ec == ssl::error::stream_truncated;
    if (closed) {
      return fail(
          conn, Errc::connection_dropped,
          "request to " + destination_ + ": connection closed " +
              (conn->parser->got_some() ? "in the middle of the answer" : "without an answer"));
    }
    if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
      return fail(conn, Errc::bad_response,
                  "response from " + destination_ + ": malformed HTTP (" + ec.message() + ")");
    }
    fail(conn, Errc::connection_dropped, "request to " + destination_ + ": " + describe(ec));
  }

  // Ends the connection's request with an error and closes it.
  void fail(const ConnectionPtr& conn, Errc code, std::string message) {
    auto ex = std::move(conn->exchange);
    conn->exchange.reset();
    close(conn);
    if (ex) complete(*ex, make_error(code, std::move(message)));
    dispatch();
  }

  // By value: the caller's pointer may be the element being erased.
  void close(ConnectionPtr conn) {  // NOLINT(performance-unnecessary-value-param)
    if (conn->closed) return;
    conn->closed = true;
    ++conn->timer_generation;
    conn->timer.cancel();
    conn->resolver.cancel();
    beast::error_code ignored;
    conn->socket().close(ignored);  // pending operations end with operation_aborted
    connections_.erase(std::remove(connections_.begin(), connections_.end(), conn),
                       connections_.end());
    idle_.erase(std::remove(idle_.begin(), idle_.end(), conn), idle_.end());
  }

  // Hands the result to the caller on the io_context, outside the strand's critical path.
  void complete(Exchange& ex, Result<HttpResponse> result) {
    if (ex.completed) return;
    ex.completed = true;
    asio::post(
        ioc_, [done = std::move(ex.done), r = std::move(result)]() mutable { done(std::move(r)); });
  }

  void on_shutdown() {
    shut_down_ = true;
    for (auto& ex : queue_) {
      complete(*ex,
               make_error(Errc::connect_failed, "request to " + destination_ +
                                                    ": cancelled, the client is shutting down"));
    }
    queue_.clear();
    const auto all = connections_;
    for (const auto& conn : all) {
      if (conn->exchange) {
        const bool sending = conn->step >= Step::write;
        fail(conn, sending ? Errc::connection_dropped : Errc::connect_failed,
             "request to " + destination_ + ": cancelled, the client is shutting down");
      } else {
        close(conn);
      }
    }
  }

  asio::io_context& ioc_;
  Strand strand_;  // every member below is touched only on it (stats aside)
  const Url base_;
  const HttpClientOptions options_;
  const std::shared_ptr<ssl::context> tls_;  // null for http://
  const std::string destination_;
  const std::string host_header_;
  std::string base_dir_;  // the base path ending in '/': relative targets go below it

  std::deque<ExchangePtr> queue_;           // waiting for a connection
  std::vector<ConnectionPtr> connections_;  // every open or opening connection
  std::vector<ConnectionPtr> idle_;         // kept-alive, most recently used last
  bool shut_down_ = false;

  std::atomic<std::uint64_t> connections_opened_{0};
  std::atomic<std::uint64_t> requests_sent_{0};
  std::atomic<std::uint64_t> responses_received_{0};
  std::atomic<std::uint64_t> stale_connections_closed_{0};
  std::atomic<std::uint64_t> retried_{0};
};

namespace {

Result<std::shared_ptr<ssl::context>> make_client_tls_context(const HttpClientOptions& options) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  auto fail = [](const std::string& what, const beast::error_code& ec) {
    return make_error(Errc::bad_config, what + ": " + describe(ec));
  };
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1) {
    return make_error(Errc::internal, "cannot require TLS 1.2 or newer");
  }
  beast::error_code ec;
  if (options.ca_file.empty()) {
    if (ctx->set_default_verify_paths(ec)) return fail("cannot load the system CAs", ec);
  } else if (ctx->load_verify_file(options.ca_file, ec)) {
    return fail("cannot load CA file '" + options.ca_file + "'", ec);
  }
  if (ctx->set_verify_mode(ssl::verify_peer, ec)) return fail("cannot enable verification", ec);
  if (!options.client_certificate_file.empty()) {
    if (ctx->use_certificate_chain_file(options.client_certificate_file, ec)) {
      return fail("cannot load client certificate '" + options.client_certificate_file + "'", ec);
    }
    // OpenSSL also checks here that the key belongs to the certificate.
    if (ctx->use_private_key_file(options.client_key_file, ssl::context::pem, ec)) {
      return fail("cannot load client key '" + options.client_key_file + "'", ec);
    }
  }
  return ctx;
}

}  // namespace

std::string_view HttpResponse::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return h.value;
  }
  return {};
}

bool request_was_sent(const Error& error) {
  switch (error.code) {
    case Errc::connect_failed:
    case Errc::connect_timeout:
    case Errc::tls_verify_failed:
    case Errc::request_queue_full:
    case Errc::bad_config:
    case Errc::internal:
      return false;
    default:
      return true;
  }
}

HttpClient::HttpClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpClient::~HttpClient() {  // NOLINT(bugprone-exception-escape): post only throws on allocation
  impl_->shutdown();
}

Result<std::unique_ptr<HttpClient>> HttpClient::create(asio::io_context& ioc,
                                                       std::string_view base_url,
                                                       HttpClientOptions options) {
  auto url = parse_url(base_url);
  if (!url) return make_error(Errc::bad_config, "base URL: " + url.error().message);
  if (url->has_query) return make_error(Errc::bad_config, "base URL: must not have a query");
  if (options.max_connections == 0) {
    return make_error(Errc::bad_config, "HTTP client: max_connections must be at least 1");
  }
  if (options.client_certificate_file.empty() != options.client_key_file.empty()) {
    return make_error(Errc::bad_config,
                      "HTTP client: a client certificate needs both the certificate and the key");
  }
  std::shared_ptr<ssl::context> tls;
  if (url->is_https()) {
    auto ctx = make_client_tls_context(options);
    if (!ctx) return std::move(ctx).error();
    tls = std::move(*ctx);
  } else if (!options.ca_file.empty() || !options.client_certificate_file.empty()) {
    // Most likely a typo in the scheme: TLS settings were meant to be used.
    return make_error(Errc::bad_config,
                      "base URL: TLS settings (CA file, client certificate) given for an http:// "
                      "URL");
  }
  if (options.user_agent.empty()) options.user_agent = std::string("adapterd/") + ADAPTER_VERSION;
  auto impl = std::make_shared<Impl>(ioc, std::move(*url), std::move(options), std::move(tls));
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

void HttpClient::send(HttpRequest request, std::function<void(Result<HttpResponse>)> done) {
  impl_->send(std::move(request), std::move(done));
}

HttpClientStats HttpClient::stats() const {
  return impl_->stats();
}

const std::string& HttpClient::destination() const {
  return impl_->destination();
}

}  // namespace adapter::net
