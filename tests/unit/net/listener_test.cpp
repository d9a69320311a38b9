// The accept loop all listeners share, over real loopback sockets.
#include "net/listener.h"

#include <boost/asio/connect.hpp>
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using namespace adapter;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

std::vector<tcp::socket> connect_clients(asio::io_context& ioc, std::uint16_t port, int n) {
  std::vector<tcp::socket> clients;
  for (int i = 0; i < n; ++i) {
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    clients.push_back(std::move(s));
  }
  return clients;
}

// Runs the loop until `done` holds or `limit` passes (a loaded machine may take longer than a
// fixed slice to complete a loopback accept); returns whether it holds.
template <class Done>
bool run_until(asio::io_context& ioc, Done done,
               std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  ioc.restart();
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    ioc.run_one_for(std::chrono::milliseconds(10));
    if (ioc.stopped()) ioc.restart();
  }
  return done();
}

}  // namespace

TEST_CASE("the listener hands over every accepted connection on its own strand", "[net]") {
  asio::io_context ioc;
  auto listener = net::Listener::open(ioc, "127.0.0.1", 0, "test", "t");
  REQUIRE(listener);
  std::vector<tcp::socket> accepted;
  (*listener)->start([&](tcp::socket s) { accepted.push_back(std::move(s)); });
  auto clients = connect_clients(ioc, (*listener)->port(), 3);
  CHECK(run_until(ioc, [&] { return accepted.size() == 3; }));
  CHECK((*listener)->accept_failures() == 0);

  // Stopped, the port is closed: a new connection is refused, none is handed over.
  (*listener)->stop();
  ioc.restart();
  ioc.run_for(std::chrono::milliseconds(50));
  tcp::socket late(ioc);
  boost::system::error_code ec;
  late.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), (*listener)->port()), ec);
  CHECK(ec == asio::error::connection_refused);
  ioc.restart();
  ioc.run_for(std::chrono::milliseconds(50));
  CHECK(accepted.size() == 3);
}

TEST_CASE("a bind address that is not one, or a port in use, is an error naming it", "[net]") {
  asio::io_context ioc;
  auto bad = net::Listener::open(ioc, "not-an-address", 0, "mllp", "lab");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message == "invalid mllp bind address 'not-an-address'");

  auto first = net::Listener::open(ioc, "127.0.0.1", 0, "http", "a");
  REQUIRE(first);
  const std::uint16_t port = (*first)->port();
  auto second = net::Listener::open(ioc, "127.0.0.1", port, "http", "b");
  REQUIRE_FALSE(second);
  CHECK(second.error().message.rfind("cannot listen on 127.0.0.1:" + std::to_string(port), 0) == 0);
}

// The sanitizers' runtime needs descriptors of its own (it checks memory through a pipe), so
// with none left it reports errors that are not there: this test runs in the GCC pass only.
#if defined(__SANITIZE_ADDRESS__)
#define ADAPTER_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ADAPTER_UNDER_SANITIZER 1
#endif
#endif

// Out of file descriptors, accept() fails at once every time it is tried. The loop must wait
// between tries (not spin a core and flood the log), and take the waiting connections once
// descriptors are free again.
TEST_CASE("out of file descriptors, the accept loop waits between tries and recovers", "[net]") {
#ifdef ADAPTER_UNDER_SANITIZER
  SUCCEED("not run under the sanitizers (see above)");
  return;
#endif
  asio::io_context ioc;
  auto listener = net::Listener::open(ioc, "127.0.0.1", 0, "test", "t");
  REQUIRE(listener);
  std::vector<tcp::socket> accepted;
  (*listener)->start([&](tcp::socket s) { accepted.push_back(std::move(s)); });
  // The kernel completes these connections into the listen backlog; accepting them needs a
  // descriptor each.
  auto clients = connect_clients(ioc, (*listener)->port(), 2);

  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  const int lowest_free = dup(0);
  REQUIRE(lowest_free >= 0);
  close(lowest_free);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free);  // no new descriptor can be made
  REQUIRE(setrlimit(RLIMIT_NOFILE, &tight) == 0);

  ioc.run_for(std::chrono::milliseconds(450));
  const std::uint64_t failures = (*listener)->accept_failures();
  REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0);

  CHECK(accepted.empty());
  // One try, then one every 100 ms: about five. Without the wait it is tens of thousands.
  CHECK(failures >= 2);
  CHECK(failures <= 10);

  CHECK(run_until(ioc, [&] { return accepted.size() == 2; }));
}

TEST_CASE("over its connection limit the listener closes a connection at once and counts it",
          "[net]") {
  asio::io_context ioc;
  auto listener = net::Listener::open(ioc, "127.0.0.1", 0, "test", "t");
  REQUIRE(listener);
  std::atomic<std::int64_t> active{1};  // what the sessions would keep: one open
  std::atomic<std::uint64_t> accepted_count{0};
  std::atomic<std::uint64_t> refused_count{0};
  std::vector<tcp::socket> accepted;
  (*listener)->start([&](tcp::socket s) { accepted.push_back(std::move(s)); },
                     net::ConnectionLimit{1, &active, &accepted_count, &refused_count});

  auto over = connect_clients(ioc, (*listener)->port(), 1);
  CHECK(run_until(ioc, [&] { return refused_count == 1; }));
  CHECK(accepted.empty());
  CHECK(accepted_count == 0);
  // The refused client sees its connection closed.
  over[0].non_blocking(false);
  char byte = 0;
  boost::system::error_code ec;
  over[0].read_some(asio::buffer(&byte, 1), ec);
  CHECK(ec == asio::error::eof);

  active = 0;
  auto within = connect_clients(ioc, (*listener)->port(), 1);
  CHECK(run_until(ioc, [&] { return accepted.size() == 1; }));
  CHECK(accepted_count == 1);
  CHECK(refused_count == 1);
}
