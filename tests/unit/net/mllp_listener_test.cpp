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

using namespace adapter;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// Calls back from its own thread after a delay (or fails at once), like a store's writer.
class ScriptedStore : public store::InboxStore {
 public:
  explicit ScriptedStore(bool fail) : fail_(fail) {}
  ~ScriptedStore() override { close(); }

  void append(std::vector<store::InboundMessage> messages, AppendCallback done) override {
    std::lock_guard lock(mu_);
    const int delay_ms = fail_ ? 0 : 30;
    const std::int64_t id = static_cast<std::int64_t>(threads_.size()) + 1;
    threads_.emplace_back([this, delay_ms, id, n = messages.size(), done = std::move(done)] {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      if (fail_) return done(make_error(Errc::store_unavailable, "no space left on device"));
      std::vector<store::AppendOutcome> out(n);
      for (auto& o : out) o.id = id;
      done(std::move(out));
    });
  }
  Result<std::optional<store::StoredMessage>> get(std::int64_t) override {
    return std::optional<store::StoredMessage>{};
  }
  Result<std::vector<store::StoredMessage>> find(const store::MessageQuery&) override {
    return std::vector<store::StoredMessage>{};
  }
  Result<std::int64_t> count(std::optional<store::MessageState>) override {
    return std::int64_t{0};
  }
  void close() override {
    std::lock_guard lock(mu_);
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  bool fail_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

struct Server {
  explicit Server(store::InboxStore& store) {
    app::MllpListenerConfig cfg;
    cfg.port = 0;
    intake = std::make_unique<app::Intake>(
        app::ListenerPolicy{"test", {}, hl7v2::Charset::utf8, "t"}, store, stats);
    auto l = net::MllpListener::start(ioc, cfg, *intake, stats);
    REQUIRE(l);
    listener = std::move(*l);
    thread = std::thread([this] { ioc.run(); });
  }
  ~Server() {
    listener->stop();
    ioc.stop();
    thread.join();
  }
  asio::io_context ioc;
  app::MllpStats stats;
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

TEST_CASE("a store that cannot commit gets AE with ERR 207, never AA", "[net][mllp]") {
  ScriptedStore failing(true);
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
  ScriptedStore slow(false);
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
