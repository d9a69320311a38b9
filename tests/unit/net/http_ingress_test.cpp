// The lab-feed HTTP listener over real loopback sockets and a real SQLite store: a status
// lookup (GET /messages/{id}: store reads, the Bundle parsed) runs off the I/O threads, so that
// a slow one holds no other exchange; once the listener stops, one is answered 503 at once.
#include "net/http_ingress.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "app/feed_intake.h"
#include "support/http_exchange.h"
#include "support/temp_store.h"

using namespace adapter;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

using test::Reply;

Reply exchange(tcp::socket& socket, http::verb method, const std::string& target,
               const std::string& body = {}) {
  return test::exchange(socket, {method, target, "key-1",
                                 body.empty() ? "" : "x-application/hl7-v2+er7", body, true});
}

const char kMessage[] =
    "MSH|^~\\&|LAB|FAC|EHR|HOSP|20240315143000-0500||ORU^R01|MSG-1|P|2.5.1\r"
    "PID|1||MRN1\r"
    "OBR|1||ACC-1\r"
    "OBX|1|NM|81258-6^VAF^LN||0.48|1^^UCUM\r";

}  // namespace

TEST_CASE("a status lookup runs off the I/O thread, and once stopped is refused, not left waiting",
          "[net][http]") {
  test::TempStore st;
  app::HttpListenerConfig config;
  config.port = 0;
  config.feeds.push_back({"lab", "key-1", {}, mapping::Json::object({})});
  app::HttpStats stats;
  app::FeedIntake intake(config, "test", *st, *st, nullptr, stats);

  // The lookups' one thread is held until `release` (released on every way out of the test, so
  // that joining the pool never waits forever); the daemon's I/O has one thread too.
  auto lookups = std::make_shared<asio::thread_pool>(1);
  struct Release {
    std::promise<void> promise;
    bool done = false;
    void now() {
      if (!done) promise.set_value();
      done = true;
    }
    ~Release() { now(); }
  } release;
  asio::post(*lookups, [held = release.promise.get_future().share()] { held.wait(); });
  asio::io_context ioc;
  auto ingress = net::HttpIngress::start(ioc, config, intake, stats, lookups);
  REQUIRE(ingress);
  const std::uint16_t port = (*ingress)->port();
  auto work = asio::make_work_guard(ioc);
  std::thread io([&] { ioc.run(); });

  asio::io_context client;
  tcp::socket asking = test::connect_loopback(client, port);
  auto status = std::async(std::launch::async,
                           [&] { return exchange(asking, http::verb::get, "/messages/1"); });
  // The GET has arrived (its headers are read, its lookup handed over) before the POST is sent.
  for (int i = 0; i < 500 && stats.requests == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(stats.requests == 1);
  // While the lookup waits, the same single I/O thread takes a message and answers it; the GET
  // cannot be answered meanwhile (a lookup on the I/O thread would have been, long before).
  tcp::socket sending = test::connect_loopback(client, port);
  const Reply stored = exchange(sending, http::verb::post, "/feeds/lab", kMessage);
  CHECK(stored.status == 202);
  CHECK(status.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);

  release.now();
  const Reply answered = status.get();
  CHECK(answered.status == 200);  // looked up after the message above was stored
  INFO(answered.body);
  CHECK(answered.body.find("\"id\": 1,") != std::string::npos);
  CHECK(stats.status_requests == 1);

  // Stopped: a lookup on a connection still open is refused, not left waiting.
  (*ingress)->stop();
  const Reply refused = exchange(sending, http::verb::get, "/messages/1");
  CHECK(refused.status == 503);
  CHECK(refused.body.find("the listener is stopping") != std::string::npos);

  work.reset();
  ioc.stop();
  io.join();
}
