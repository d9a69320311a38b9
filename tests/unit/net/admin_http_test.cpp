// The admin endpoint over real loopback sockets: authentication, the built-in paths, and that it
// serves on threads of its own (it takes no io_context of the daemon's), so that a slow handler
// does not hold /healthz.
#include "net/admin_http.h"

#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "support/http_exchange.h"

using namespace adapter;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
namespace http = boost::beast::http;

namespace {

using test::Reply;

// One request on a connection of its own, answered or failed (never hangs: the server closes).
Reply request(std::uint16_t port, http::verb method, const std::string& target,
              const std::string& token = {}) {
  return test::exchange_once(port, {method, target, token, {}, {}, false});
}

app::AdminConfig loopback(std::string token = {}) {
  app::AdminConfig c;
  c.bind = "127.0.0.1";
  c.port = 0;
  c.token = std::move(token);
  return c;
}

}  // namespace

TEST_CASE("admin: the built-in paths, the API's, and 404 for the rest", "[net][admin]") {
  net::AdminHttp::Handlers h;
  h.metrics = [] { return std::string("adapterd_up 1\n"); };
  h.api = [](std::string_view method,
             std::string_view target) -> std::optional<net::AdminHttp::Answer> {
    if (method != "GET" || target != "/messages") return std::nullopt;
    return net::AdminHttp::Answer{200, "application/json", "[]\n"};
  };
  auto admin = net::AdminHttp::start(loopback(), std::move(h));
  REQUIRE(admin);
  const std::uint16_t port = (*admin)->port();
  REQUIRE(port != 0);

  CHECK(request(port, http::verb::get, "/healthz").body == "ok\n");
  const Reply metrics = request(port, http::verb::get, "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.body == "adapterd_up 1\n");
  CHECK(request(port, http::verb::get, "/messages").body == "[]\n");
  const Reply other = request(port, http::verb::get, "/nothing-here");
  CHECK(other.status == 404);
  CHECK(other.body.find("GET /metrics") != std::string::npos);

  // Stopped, the port is closed at once.
  (*admin)->stop();
  CHECK((*admin)->port() == 0);
  asio::io_context ioc;
  tcp::socket late(ioc);
  boost::system::error_code ec;
  late.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  CHECK(ec == asio::error::connection_refused);
}

TEST_CASE("admin: with a token, every path needs it", "[net][admin]") {
  net::AdminHttp::Handlers h;
  h.metrics = [] { return std::string("adapterd_up 1\n"); };
  auto admin = net::AdminHttp::start(loopback("s3cret-token"), std::move(h));
  REQUIRE(admin);
  const std::uint16_t port = (*admin)->port();
  CHECK(request(port, http::verb::get, "/metrics").status == 401);
  CHECK(request(port, http::verb::get, "/healthz").status == 401);
  CHECK(request(port, http::verb::get, "/metrics", "wrong-token").status == 401);
  CHECK(request(port, http::verb::get, "/metrics", "s3cret-token").status == 200);
}

// An admin endpoint with a POST /reload in flight whose handler holds until release(), as a
// long store search or a large mapping set would take its time.
class HeldReload {
 public:
  // `after_release` runs in the handler once it is let go.
  explicit HeldReload(std::function<void()> after_release = {})
      : after_release_(std::move(after_release)) {
    net::AdminHttp::Handlers h;
    h.reload = [this] {
      ++calls;
      entered_.set_value();
      released_.wait();
      if (after_release_) after_release_();
      return net::AdminHttp::Answer{200, "application/json", "{\"applied\":true}\n"};
    };
    auto started = net::AdminHttp::start(loopback(), std::move(h));
    REQUIRE(started);
    admin = std::move(*started);
    port = admin->port();
    reload = std::async(std::launch::async,
                        [p = port] { return request(p, http::verb::post, "/reload"); });
    entered_.get_future().wait();
  }
  ~HeldReload() { release(); }  // else the handler, the request and stop() would wait forever
  HeldReload(const HeldReload&) = delete;
  HeldReload& operator=(const HeldReload&) = delete;

  void release() {
    if (!let_go_) go_.set_value();
    let_go_ = true;
  }

  std::atomic<int> calls{0};
  std::unique_ptr<net::AdminHttp> admin;
  std::uint16_t port = 0;
  std::future<Reply> reload;  // the request held

 private:
  std::function<void()> after_release_;
  std::promise<void> entered_;
  std::promise<void> go_;
  std::shared_future<void> released_ = go_.get_future().share();
  bool let_go_ = false;
};

TEST_CASE("admin: a slow handler does not hold /healthz", "[net][admin]") {
  HeldReload held;
  // The handler is held: the endpoint still answers, from its other thread. (With one thread,
  // /healthz would wait for the release below, and the wait here would time out.)
  auto health = std::async(std::launch::async,
                           [p = held.port] { return request(p, http::verb::get, "/healthz"); });
  const bool answered_while_held =
      health.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  CHECK(answered_while_held);
  CHECK(held.reload.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout);

  held.release();
  CHECK(health.get().body == "ok\n");
  const Reply answered = held.reload.get();
  CHECK(answered.status == 200);
  CHECK(answered.body == "{\"applied\":true}\n");
}

TEST_CASE("admin: stop() waits for a handler running, and calls none after", "[net][admin]") {
  std::atomic<bool> stop_returned{false};
  std::atomic<bool> finished_before_stop_returned{false};
  HeldReload held([&] { finished_before_stop_returned = !stop_returned.load(); });
  auto stopping = std::async(std::launch::async, [&] {
    held.admin->stop();
    stop_returned = true;
  });
  CHECK(stopping.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
  held.release();
  stopping.get();
  CHECK(finished_before_stop_returned);
  (void)held.reload.get();  // answered or closed: either way it returns
  CHECK(held.calls == 1);
}
