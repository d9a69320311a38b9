// The admin endpoint over real loopback sockets: authentication, the built-in paths, and that it
// serves on threads of its own (it takes no io_context of the daemon's), so that a slow handler
// does not hold /healthz.
#include "net/admin_http.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <string>
#include <thread>

using namespace adapter;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

struct Reply {
  unsigned status = 0;
  std::string body;
};

// One request on a connection of its own, answered or failed (never hangs: the server closes).
Reply request(std::uint16_t port, http::verb method, const std::string& target,
              const std::string& token = {}) {
  asio::io_context ioc;
  tcp::socket socket(ioc);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::empty_body> req(method, target, 11);
  req.set(http::field::host, "127.0.0.1");
  req.keep_alive(false);
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  http::write(socket, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  beast::error_code ec;
  http::read(socket, buffer, res, ec);
  if (ec) return {};
  return {res.result_int(), res.body()};
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

TEST_CASE("admin: a slow handler does not hold /healthz", "[net][admin]") {
  // The reload handler waits until the test lets it go, as a long store search or a large
  // mapping set would take its time.
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  net::AdminHttp::Handlers h;
  h.reload = [&] {
    entered.set_value();
    released.wait();
    return net::AdminHttp::Answer{200, "application/json", "{\"applied\":true}\n"};
  };
  auto admin = net::AdminHttp::start(loopback(), std::move(h));
  REQUIRE(admin);
  const std::uint16_t port = (*admin)->port();

  auto slow =
      std::async(std::launch::async, [port] { return request(port, http::verb::post, "/reload"); });
  entered.get_future().wait();
  // The handler is held: the endpoint still answers, from its other thread. (With one thread,
  // /healthz would wait for the release below, and the wait here would time out.)
  auto health =
      std::async(std::launch::async, [port] { return request(port, http::verb::get, "/healthz"); });
  const bool answered_while_held =
      health.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  CHECK(answered_while_held);
  CHECK(slow.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout);

  release.set_value();
  CHECK(health.get().body == "ok\n");
  const Reply answered = slow.get();
  CHECK(answered.status == 200);
  CHECK(answered.body == "{\"applied\":true}\n");
}

TEST_CASE("admin: stop() waits for a handler running, and calls none after", "[net][admin]") {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> calls{0};
  std::atomic<bool> stop_returned{false};
  std::atomic<bool> finished_before_stop_returned{false};
  net::AdminHttp::Handlers h;
  h.reload = [&] {
    ++calls;
    entered.set_value();
    released.wait();
    finished_before_stop_returned = !stop_returned.load();
    return net::AdminHttp::Answer{};
  };
  auto admin = net::AdminHttp::start(loopback(), std::move(h));
  REQUIRE(admin);
  const std::uint16_t port = (*admin)->port();
  auto slow =
      std::async(std::launch::async, [port] { return request(port, http::verb::post, "/reload"); });
  entered.get_future().wait();
  auto stopping = std::async(std::launch::async, [&] {
    (*admin)->stop();
    stop_returned = true;
  });
  CHECK(stopping.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
  release.set_value();
  stopping.get();
  CHECK(finished_before_stop_returned);
  (void)slow.get();  // answered or closed: either way it returns
  CHECK(calls == 1);
}
