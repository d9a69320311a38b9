// The MLLP listener in-process, over a real loopback socket, with stores that misbehave on
// purpose: one that fails every commit and one that commits slowly.
#include "net/mllp_listener.h"

#include <utility>  // before Asio: GCC 12 + Boost needs std::exchange declared

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <mutex>
#include <thread>

#include "hl7v2/message.h"
#include "mllp/frame_decoder.h"
#include "support/fake_store.h"

using namespace adapter;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// Torn down as the daemon does (main.cpp): stop, join, then close the store, whose commit threads
// hold sessions through their callbacks; the stats are declared first so that they outlive every
// session, including those the io_context's queued handlers still hold when it is destroyed.
struct Server {
  explicit Server(store::InboxStore& inbox) : store(inbox) {
    app::MllpListenerConfig cfg;
    cfg.port = 0;
    intake = std::make_unique<app::Intake>(
        app::ListenerPolicy{"test", {}, hl7v2::Charset::utf8, "t"}, inbox, stats);
    auto l = net::MllpListener::start(ioc, cfg, *intake, stats);
    REQUIRE(l);
    listener = std::move(*l);
    thread = std::thread([this] { ioc.run(); });
  }
  ~Server() {
    listener->stop();
    ioc.stop();
    thread.join();
    store.close();
  }
  store::InboxStore& store;
  app::MllpStats stats;
  asio::io_context ioc;
  std::unique_ptr<app::Intake> intake;
  std::unique_ptr<net::MllpListener> listener;
  std::thread thread;
};

std::string msg(const std::string& control_id) {
  return "MSH|^~\\&|LAB|F|EHR|H|20260101||ORU^R01|" + control_id + "|P|2.5.1\rPID|1||X\r";
}

std::vector<std::string> acks(tcp::socket& s, std::size_t n) {
  std::vector<std::string> out;
  std::string buf;
  while (out.size() < n) {
    const std::size_t end = asio::read_until(s, asio::dynamic_buffer(buf), "\x1c\r");
    out.push_back(buf.substr(1, end - 3));
    buf.erase(0, end);
  }
  return out;
}

std::string msa(const std::string& ack, const char* path) {
  auto m = hl7v2::Message::parse(ack);
  REQUIRE(m);
  return m->get(path)->text();
}

}  // namespace

TEST_CASE("a store that cannot commit gets AE with ERR 207 and never AA", "[net][mllp]") {
  test::FakeStore failing(test::FakeStore::Mode::fail);
  Server server(failing);
  asio::io_context client;
  tcp::socket s(client);
  s.connect({asio::ip::make_address("127.0.0.1"), server.listener->port()});
  asio::write(s, asio::buffer(mllp::frame(msg("F-1"))));
  const auto got = acks(s, 1);
  CHECK(msa(got[0], "MSA-1") == "AE");
  CHECK(msa(got[0], "MSA-2") == "F-1");
  CHECK(msa(got[0], "ERR-3.1") == "207");
  CHECK(server.stats.store_failures == 1);
  CHECK(server.stats.messages_accepted == 0);
}

TEST_CASE("pipelined frames in one write are each answered after commit in arrival order",
          "[net][mllp]") {
  test::FakeStore slow(test::FakeStore::Mode::commit_later, std::chrono::milliseconds(30));
  Server server(slow);
  asio::io_context client;
  tcp::socket s(client);
  s.connect({asio::ip::make_address("127.0.0.1"), server.listener->port()});
  asio::write(
      s, asio::buffer(mllp::frame(msg("P-1")) + mllp::frame(msg("P-2")) + mllp::frame(msg("P-3"))));
  const auto got = acks(s, 3);
  CHECK(msa(got[0], "MSA-2") == "P-1");
  CHECK(msa(got[1], "MSA-2") == "P-2");
  CHECK(msa(got[2], "MSA-2") == "P-3");
  CHECK(msa(got[2], "MSA-1") == "AA");
  CHECK(server.stats.frames_received == 3);
}
