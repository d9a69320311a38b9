#include "net/admin_http.h"

#include <utility>  // before Asio: GCC 12 + Boost needs std::exchange declared

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/secret_compare.h"
#include "net/listener.h"

namespace adapter::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kReadTimeout = std::chrono::seconds(10);
constexpr std::uint64_t kMaxRequestBytes = 16 * 1024;

struct Shared {
  AdminHttp::Handlers handlers;
  std::string token;  // empty: no token asked for (loopback only, checked by the config)
};

class AdminSession : public std::enable_shared_from_this<AdminSession> {
 public:
  AdminSession(tcp::socket socket, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {}

  void start() { do_read(); }

 private:
  void do_read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(kMaxRequestBytes));
    parser_->body_limit(kMaxRequestBytes);
    stream_.expires_after(kReadTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&AdminSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return do_close();
    const auto& req = parser_->get();
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(req.version());
    res->keep_alive(req.keep_alive());
    res->set(http::field::server, "adapterd");
    auto set = [&](unsigned status, const std::string& type, std::string body) {
      res->result(static_cast<http::status>(status));
      res->set(http::field::content_type, type);
      res->body() = std::move(body);
    };
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view auth(req[http::field::authorization].data(),
                                req[http::field::authorization].size());
    const bool get = req.method() == http::verb::get;
    if (!shared_->token.empty() && !(auth.size() > 7 && auth.substr(0, 7) == "Bearer " &&
                                     same_secret(auth.substr(7), shared_->token))) {
      res->set(http::field::www_authenticate, "Bearer");
      set(401, "text/plain", "admin endpoints need 'Authorization: Bearer <admin token>'\n");
    } else if (target == "/metrics" && get) {
      set(200, "text/plain; version=0.0.4", shared_->handlers.metrics());
    } else if (target == "/healthz" && get) {
      set(200, "text/plain", "ok\n");
    } else if (target == "/readyz" && get && shared_->handlers.ready) {
      AdminHttp::Answer a = shared_->handlers.ready();
      set(a.status, a.content_type, std::move(a.body));
    } else if (target == "/reload" && req.method() == http::verb::post &&
               shared_->handlers.reload) {
      AdminHttp::Answer a = shared_->handlers.reload();
      set(a.status, a.content_type, std::move(a.body));
    } else if (auto a = shared_->handlers.api
                            ? shared_->handlers.api(std::string_view(req.method_string().data(),
                                                                     req.method_string().size()),
                                                    target)
                            : std::nullopt) {
      set(a->status, a->content_type, std::move(a->body));
    } else {
      set(404, "text/plain",
          "endpoints: GET /metrics, GET /healthz, GET /readyz, POST /reload, GET /messages, GET "
          "/messages/{id}/detail, POST /messages/{id}/replay, GET /dead-letters, POST "
          "/dead-letters/{id|all}/retry, POST /dead-letters/{id}/discard?reason=\n");
    }
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code e, std::size_t) {
                        if (e || !res->keep_alive()) return self->do_close();
                        self->do_read();
                      });
  }

  void do_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace

struct AdminHttp::Threads {
  asio::io_context ioc{kThreads};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(ioc);
  std::vector<std::thread> threads;

  void start() {
    for (int i = 0; i < kThreads; ++i) threads.emplace_back([this] { ioc.run(); });
  }
  void stop() {
    work.reset();
    ioc.stop();
    for (std::thread& t : threads) {
      if (t.joinable()) t.join();
    }
    threads.clear();
  }
};

AdminHttp::AdminHttp(std::unique_ptr<Threads> threads, std::shared_ptr<Listener> listener)
    : threads_(std::move(threads)), listener_(std::move(listener)) {}

AdminHttp::~AdminHttp() {  // NOLINT(bugprone-exception-escape): Asio members only throw on
                           // allocation failure
  stop();
}

Result<std::unique_ptr<AdminHttp>> AdminHttp::start(const app::AdminConfig& config,
                                                    Handlers handlers) {
  auto threads = std::make_unique<Threads>();
  auto listener = Listener::open(threads->ioc, config.bind, config.port, "admin", "admin");
  if (!listener) return listener.error();
  auto shared = std::make_shared<Shared>(Shared{std::move(handlers), config.token});
  (*listener)->start([shared](tcp::socket socket) {
    std::make_shared<AdminSession>(std::move(socket), shared)->start();
  });
  threads->start();
  return std::unique_ptr<AdminHttp>(new AdminHttp(std::move(threads), std::move(*listener)));
}

std::uint16_t AdminHttp::port() const {
  return listener_ ? listener_->port() : 0;
}

void AdminHttp::stop() {
  if (!threads_) return;
  listener_->stop();
  // A handler already running finishes first (join); the sessions between requests are
  // abandoned. Then the io_context goes, and with it everything queued on it: the sessions and
  // the listener (its socket closes, so the port is free once this returns).
  threads_->stop();
  listener_.reset();
  threads_.reset();
}

}  // namespace adapter::net
