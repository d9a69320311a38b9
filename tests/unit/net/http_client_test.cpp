// The outbound HTTP client against an in-process server that misbehaves on request: it answers,
// delays, hangs, drops the connection, sends garbage or too much, closes idle connections, and
// speaks TLS with certificates made by the openssl CLI into a temporary directory at test time.
#include "net/http_client.h"

#include <utility>  // before Asio: GCC 12 + Boost needs std::exchange declared

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>  // mkdtemp
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "net/tls.h"

using namespace adapter;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// What the server saw of one request.
struct Seen {
  std::string method, target, host, user_agent, content_length, content_type, body;
};

// How the server answers one request.
struct ServerReply {
  enum class Kind { answer, hang, drop, raw };
  Kind kind = Kind::answer;
  unsigned status = 200;
  std::string body = "ok";
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds delay{0};  // before answering
  std::string raw;                     // Kind::raw: these bytes instead of an answer, then close
  std::optional<std::chrono::milliseconds> close_after;  // after answering, close once idle
};

// A blocking server, one thread per connection, bound to 127.0.0.1 on a free port.
class TestServer {
 public:
  using Handler = std::function<ServerReply(const Seen&)>;
  enum class Mode { http, silent };  // silent: accept, read and never write (not even TLS)

  explicit TestServer(Handler handler, std::shared_ptr<ssl::context> tls = nullptr,
                      Mode mode = Mode::http)
      : handler_(std::move(handler)),
        tls_(std::move(tls)),
        mode_(mode),
        acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { accept_loop(); });
  }

  ~TestServer() {
    stopping_ = true;
    {
      asio::io_context wake_ioc;  // a connection wakes the blocking accept()
      tcp::socket wake(wake_ioc);
      beast::error_code ec;
      wake.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    }
    accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      for (auto& s : sockets_) {
        beast::error_code ec;
        s->shutdown(tcp::socket::shutdown_both, ec);  // wakes reads blocked in hanging handlers
      }
      threads = std::move(threads_);
    }
    for (auto& t : threads) t.join();
  }

  std::uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  int max_active() const { return max_active_; }
  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::string client_cn() {
    std::lock_guard lock(mu_);
    return client_cn_;
  }

 private:
  void accept_loop() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(ioc_);
      beast::error_code ec;
      acceptor_.accept(*socket, ec);
      if (stopping_) return;
      if (ec) continue;
      ++accepted_;
      std::lock_guard lock(mu_);
      sockets_.push_back(socket);
      threads_.emplace_back([this, socket] { serve(*socket); });
    }
  }

  // The socket stays open (only shut down) until the server ends, so that the destructor never
  // touches a descriptor number that was reused.
  void serve(tcp::socket& socket) {
    beast::error_code ec;
    if (mode_ == Mode::silent) {
      char byte = 0;
      while (!ec) socket.read_some(asio::buffer(&byte, 1), ec);
    } else if (tls_) {
      ssl::stream<tcp::socket&> stream(socket, *tls_);
      stream.handshake(ssl::stream_base::server, ec);
      if (!ec) {
        record_client_cn(stream.native_handle());
        serve_http(stream);
      }
    } else {
      serve_http(socket);
    }
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }

  template <class Stream>
  void serve_http(Stream& stream) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      beast::error_code ec;
      http::read(stream, buffer, req, ec);
      if (ec) return;
      Seen seen{std::string(req.method_string()),
                std::string(req.target()),
                std::string(req[http::field::host]),
                std::string(req[http::field::user_agent]),
                std::string(req[http::field::content_length]),
                std::string(req[http::field::content_type]),
                req.body()};
      {
        std::lock_guard lock(mu_);
        seen_.push_back(seen);
      }
      const ServerReply reply = handler_(seen);
      const int now_active = ++active_;
      for (int m = max_active_;
           now_active > m && !max_active_.compare_exchange_weak(m, now_active);) {
      }
      std::this_thread::sleep_for(reply.delay);
      --active_;
      switch (reply.kind) {
        case ServerReply::Kind::hang: {
          char byte = 0;  // until the client gives up and closes, or the server stops
          while (!ec) stream.read_some(asio::buffer(&byte, 1), ec);
          return;
        }
        case ServerReply::Kind::drop:
          return;
        case ServerReply::Kind::raw:
          asio::write(stream, asio::buffer(reply.raw), ec);
          return;
        case ServerReply::Kind::answer:
          break;
      }
      http::response<http::string_body> res{static_cast<http::status>(reply.status), 11};
      for (const auto& h : reply.headers) res.set(h.first, h.second);
      res.body() = reply.body;
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      http::write(stream, res, ec);
      if (ec || !req.keep_alive()) return;
      if (reply.close_after) {
        std::this_thread::sleep_for(*reply.close_after);
        return;
      }
    }
  }

  void record_client_cn(SSL* handle) {
    X509* cert = SSL_get1_peer_certificate(handle);
    if (cert == nullptr) return;
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    X509_free(cert);
    std::lock_guard lock(mu_);
    client_cn_ = cn;
  }

  Handler handler_;
  std::shared_ptr<ssl::context> tls_;
  Mode mode_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> active_{0};
  std::atomic<int> max_active_{0};
  std::thread accept_thread_;
  std::mutex mu_;  // guards the members below
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::vector<std::thread> threads_;
  std::vector<Seen> seen_;
  std::string client_cn_;
};

ServerReply answer(std::string body = "ok", unsigned status = 200) {
  ServerReply r;
  r.body = std::move(body);
  r.status = status;
  return r;
}

// The client's io_context, run by one thread; destroy the clients before it.
struct ClientLoop {
  ClientLoop() : thread([this] { ioc.run(); }) {}
  ~ClientLoop() {
    work.reset();
    thread.join();
  }
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  std::thread thread;
};

struct Outcome {
  std::optional<Result<net::HttpResponse>> result;
  std::thread::id thread;
  Clock::time_point at;
};

// Sends and returns a future of the outcome; the shared promise outlives a failed wait.
std::future<Outcome> send_async(net::HttpClient& client, net::HttpRequest request) {
  auto promise = std::make_shared<std::promise<Outcome>>();
  auto future = promise->get_future();
  client.send(std::move(request), [promise](Result<net::HttpResponse> r) {
    promise->set_value(Outcome{std::move(r), std::this_thread::get_id(), Clock::now()});
  });
  return future;
}

Outcome wait_for_outcome(std::future<Outcome>& f) {
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

Result<net::HttpResponse> send_and_wait(net::HttpClient& client, net::HttpRequest request = {}) {
  auto f = send_async(client, std::move(request));
  return *wait_for_outcome(f).result;
}

std::unique_ptr<net::HttpClient> make_client(asio::io_context& ioc, const std::string& url,
                                             net::HttpClientOptions options = {}) {
  auto client = net::HttpClient::create(ioc, url, std::move(options));
  INFO((client ? "" : client.error().message));
  REQUIRE(client);
  return std::move(*client);
}

std::string local(std::uint16_t port, const std::string& path = "") {
  return "http://127.0.0.1:" + std::to_string(port) + path;
}

long long ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// A port nothing listens on: bound once, then closed.
std::uint16_t closed_port() {
  asio::io_context ioc;
  tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

// Test certificates, made once per run with the openssl CLI and deleted at exit: a CA, a server
// certificate for the name "localhost", one for the address 127.0.0.1, a client certificate,
// and a second CA that signed none of them.
class Pki {
 public:
  static const Pki& get() {
    static const Pki pki;
    return pki;
  }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  std::shared_ptr<ssl::context> server(const std::string& cert, bool require_client) const {
    app::TlsConfig cfg;
    cfg.certificate_file = file(cert + ".crt");
    cfg.private_key_file = file(cert + ".key");
    if (require_client) cfg.client_ca_file = file("ca.crt");
    auto ctx = net::make_server_tls_context(cfg);
    REQUIRE(ctx);
    return *ctx;
  }

  ~Pki() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

 private:
  Pki() {
    std::string pattern = (std::filesystem::temp_directory_path() / "http_client_test.XXXXXX");
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    dir_ = pattern;
    std::ofstream(dir_ / "pki.cnf") << "[req]\ndistinguished_name = dn\n[dn]\n"
                                       "[ca]\nbasicConstraints = critical,CA:TRUE\n"
                                       "keyUsage = critical,keyCertSign,cRLSign\n"
                                       "subjectKeyIdentifier = hash\n"
                                       "[dns]\nbasicConstraints = CA:FALSE\n"
                                       "extendedKeyUsage = serverAuth\n"
                                       "subjectAltName = DNS:localhost\n"
                                       "[ip]\nbasicConstraints = CA:FALSE\n"
                                       "extendedKeyUsage = serverAuth\n"
                                       "subjectAltName = IP:127.0.0.1\n"
                                       "[client]\nbasicConstraints = CA:FALSE\n"
                                       "extendedKeyUsage = clientAuth\n";
    const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -config pki.cnf";
    auto ca = [&](const std::string& name, const std::string& cn) {
      return "openssl req -x509 -new" + key + " -keyout " + name + ".key -out " + name +
             ".crt -days 2 -subj '/CN=" + cn + "' -extensions ca";
    };
    auto leaf = [&](const std::string& name, const std::string& cn, const std::string& ext) {
      return "openssl req -new" + key + " -keyout " + name + ".key -out " + name +
             ".csr -subj '/CN=" + cn + "' && openssl x509 -req -in " + name +
             ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out " + name +
             ".crt -extfile pki.cnf -extensions " + ext;
    };
    const std::string script =
        "cd '" + dir_.string() + "' && (" + ca("ca", "Test CA") + " && " +
        ca("other_ca", "Untrusted CA") + " && " + leaf("localhost", "localhost", "dns") + " && " +
        leaf("ip", "127.0.0.1", "ip") + " && " + leaf("client", "adapterd-test-client", "client") +
        ") >openssl.log 2>&1";
    const int rc = std::system(script.c_str());
    INFO("openssl failed; see " << file("openssl.log"));
    REQUIRE(rc == 0);
  }

  std::filesystem::path dir_;
};

}  // namespace

TEST_CASE("a GET reaches the target below the base path and returns the answer",
          "[net][http_client]") {
  TestServer server([](const Seen&) {
    ServerReply r = answer("hello", 201);
    r.headers = {{"X-Test", "yes"}, {"Location", "Patient/1"}};
    return r;
  });
  ClientLoop loop;
  auto client = make_client(loop.ioc, local(server.port(), "/fhir/R4"));
  CHECK(client->destination() == "127.0.0.1:" + std::to_string(server.port()));

  net::HttpRequest request;
  request.target = "Patient?identifier=urn%3Aoid%3A1%7C42";
  auto f = send_async(*client, request);
  Outcome outcome = wait_for_outcome(f);
  REQUIRE(outcome.result->ok());
  const auto& res = outcome.result->value();
  CHECK(res.status == 201);
  CHECK(res.body == "hello");
  CHECK(res.header("x-test") == "yes");  // case-insensitive
  CHECK(res.header("LOCATION") == "Patient/1");
  CHECK(res.header("Missing").empty());
  CHECK(outcome.thread == loop.thread.get_id());  // done runs on the io_context

  const auto seen = server.seen();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].method == "GET");
  CHECK(seen[0].target == "/fhir/R4/Patient?identifier=urn%3Aoid%3A1%7C42");
  CHECK(seen[0].host == "127.0.0.1:" + std::to_string(server.port()));
  CHECK_THAT(seen[0].user_agent, Catch::Matches("adapterd/[0-9]+\\.[0-9]+\\.[0-9]+"));
  CHECK(seen[0].content_length.empty());
}

TEST_CASE("a POST carries its body and Content-Length to the base URL itself",
          "[net][http_client]") {
  TestServer server([](const Seen&) { return answer(); });
  ClientLoop loop;
  auto client = make_client(loop.ioc, local(server.port(), "/fhir/R4/"));
  net::HttpRequest request;
  request.method = "POST";
  request.headers = {{"Content-Type", "application/fhir+json"}, {"User-Agent", "custom/1"}};
  request.body = R"({"resourceType":"Bundle","type":"transaction"})";
  REQUIRE(send_and_wait(*client, request));

  request.target = "/metadata";  // an absolute path leaves the base path
  request.body.clear();
  REQUIRE(send_and_wait(*client, request));
  request.target = local(server.port(), "/fhir/R4/Patient/1");  // same-origin absolute URL
  REQUIRE(send_and_wait(*client, request));

  const auto seen = server.seen();
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].method == "POST");
  CHECK(seen[0].target == "/fhir/R4/");
  CHECK(seen[0].body == R"({"resourceType":"Bundle","type":"transaction"})");
  CHECK(seen[0].content_length == std::to_string(seen[0].body.size()));
  CHECK(seen[0].content_type == "application/fhir+json");
  CHECK(seen[0].user_agent == "custom/1");
  CHECK(seen[1].target == "/metadata");
  CHECK(seen[1].content_length == "0");
  CHECK(seen[2].target == "/fhir/R4/Patient/1");
}

TEST_CASE("ten sequential requests share one kept-alive connection", "[net][http_client]") {
  TestServer server([](const Seen&) { return answer(); });
  ClientLoop loop;
  auto client = make_client(loop.ioc, local(server.port()));
  for (int i = 0; i < 10; ++i) {
    auto r = send_and_wait(*client);
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  CHECK(server.accepted() == 1);
  const auto stats = client->stats();
  CHECK(stats.connections_opened == 1);
  CHECK(stats.requests_sent == 10);
  CHECK(stats.responses_received == 10);
}

TEST_CASE("concurrent requests never use more than max_connections", "[net][http_client]") {
  TestServer server([](const Seen&) {
    ServerReply r = answer();
    r.delay = 100ms;
    return r;
  });
  ClientLoop loop;
  net::HttpClientOptions options;
  options.max_connections = 2;
  auto client = make_client(loop.ioc, local(server.port()), options);
  const auto start = Clock::now();
  std::vector<std::future<Outcome>> futures;
  for (int i = 0; i < 6; ++i) futures.push_back(send_async(*client, {}));
  for (auto& f : futures) {
    Outcome o = wait_for_outcome(f);
    REQUIRE(o.result->ok());
  }
  CHECK(ms_since(start) >= 290);  // three rounds of two
  CHECK(server.max_active() == 2);
  CHECK(server.accepted() == 2);
  CHECK(client->stats().connections_opened == 2);
}

TEST_CASE("requests beyond max_queued fail at once without being sent", "[net][http_client]") {
  TestServer server([](const Seen&) {
    ServerReply r = answer();
    r.delay = 200ms;
    return r;
  });
  ClientLoop loop;
  net::HttpClientOptions options;
  options.max_connections = 1;
  options.max_queued = 2;
  auto client = make_client(loop.ioc, local(server.port()), options);
  std::vector<std::future<Outcome>> futures;
  for (int i = 0; i < 5; ++i) futures.push_back(send_async(*client, {}));
  int ok = 0;
  int full = 0;
  Clock::time_point first_answer = Clock::time_point::max();
  Clock::time_point last_refusal = Clock::time_point::min();
  for (auto& f : futures) {
    Outcome o = wait_for_outcome(f);
    if (o.result->ok()) {
      ++ok;
      first_answer = std::min(first_answer, o.at);
      continue;
    }
    const Error& e = o.result->error();
    CHECK(e.code == Errc::request_queue_full);
    CHECK_FALSE(net::request_was_sent(e));
    CHECK_THAT(e.message, Catch::Contains("2 requests already wait for a connection"));
    last_refusal = std::max(last_refusal, o.at);
    ++full;
  }
  CHECK(ok == 3);  // one on the connection, two queued
  CHECK(full == 2);
  CHECK(last_refusal < first_answer);  // refused at once, not when the queue moved
}

TEST_CASE("an idle connection the server closed is replaced and the request succeeds",
          "[net][http_client]") {
  TestServer server([](const Seen&) {
    ServerReply r = answer();
    r.close_after = 20ms;  // a server with a short keep-alive timeout and no Keep-Alive header
    return r;
  });
  ClientLoop loop;
  auto client = make_client(loop.ioc, local(server.port()));
  REQUIRE(send_and_wait(*client));
  std::this_thread::sleep_for(200ms);
  auto second = send_and_wait(*client);
  INFO((second ? "" : second.error().message));
  REQUIRE(second);
  CHECK(second->status == 200);
  CHECK(server.accepted() == 2);
  const auto stats = client->stats();
  CHECK(stats.stale_connections_closed == 1);
  CHECK(stats.connections_opened == 2);
}

TEST_CASE("a connection is retired before the server's Keep-Alive timeout runs out",
          "[net][http_client]") {
  TestServer server([](const Seen&) {
    ServerReply r = answer();
    r.headers = {{"Keep-Alive", "timeout=1"}};  // reused for at most 500 ms
    return r;
  });
  ClientLoop loop;
  auto client = make_client(loop.ioc, local(server.port()));
  REQUIRE(send_and_wait(*client));
  REQUIRE(send_and_wait(*client));
  CHECK(server.accepted() == 1);
  std::this_thread::sleep_for(700ms);
  REQUIRE(send_and_wait(*client));
  CHECK(server.accepted() == 2);
  CHECK(client->stats().stale_connections_closed == 1);
}

TEST_CASE("a refused connection is connect_failed and names host and port", "[net][http_client]") {
  const std::uint16_t port = closed_port();
  ClientLoop loop;
  auto client = make_client(loop.ioc, local(port));
  auto r = send_and_wait(*client);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::connect_failed);
  CHECK(r.error().message ==
        "connect to 127.0.0.1:" + std::to_string(port) + ": connection refused");
  CHECK_FALSE(net::request_was_sent(r.error()));
  CHECK(client->stats().connections_opened == 0);
}

TEST_CASE("a name that does not resolve fails before anything is sent", "[net][http_client]") {
  ClientLoop loop;
  net::HttpClientOptions options;
  options.connect_timeout = 2000ms;  // a machine without DNS may time out instead of failing
  auto client = make_client(loop.ioc, "http://nonexistent.invalid/fhir", options);
  auto r = send_and_wait(*client);
  REQUIRE_FALSE(r);
  CHECK_FALSE(net::request_was_sent(r.error()));
  if (r.error().code == Errc::connect_failed) {
    CHECK_THAT(r.error().message, Catch::StartsWith("resolve nonexistent.invalid:80: "));
  } else {
    CHECK(r.error().code == Errc::connect_timeout);
    CHECK(r.error().message ==
          "connect to nonexistent.invalid:80: timed out after 2000 ms (resolving the host name)");
  }
}

TEST_CASE("a hanging server gives request_timeout in time", "[net][http_client]") {
  TestServer server([](const Seen&) {
    ServerReply r;
    r.kind = ServerReply::Kind::hang;
    return r;
  });
  ClientLoop loop;
  net::HttpClientOptions options;
  options.request_timeout = 300ms;
  auto client = make_client(loop.ioc, local(server.port()), options);
  const auto start = Clock::now();
  auto r = send_and_wait(*client);
  const auto elapsed = ms_since(start);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::request_timeout);
  CHECK(r.error().message ==
        "request to 127.0.0.1:" + std::to_string(server.port()) + ": timed out after 300 ms");
  CHECK(net::request_was_sent(r.error()));
  CHECK(elapsed >= 290);
  CHECK(elapsed < 2000);
}

TEST_CASE("a server that never answers the TLS handshake gives connect_timeout",
          "[net][http_client]") {
  TestServer server([](const Seen&) { return answer(); }, nullptr, TestServer::Mode::silent);
  ClientLoop loop;
  net::HttpClientOptions options;
  options.connect_timeout = 300ms;
  options.ca_file = Pki::get().file("ca.crt");
  auto client = make_client(
      loop.ioc, "https://localhost:" + std::to_string(server.port()) + "/fhir", options);
  const auto start = Clock::now();
  auto r = send_and_wait(*client);
  const auto elapsed = ms_since(start);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::connect_timeout);
  CHECK(r.error().message == "connect to localhost:" + std::to_string(server.port()) +
                                 ": timed out after 300 ms (TLS handshake)");
  CHECK_FALSE(net::request_was_sent(r.error()));
  CHECK(elapsed >= 290);
  CHECK(elapsed < 2000);
}

TEST_CASE("an answer over the body limit is response_too_large", "[net][http_client]") {
  SECTION("a configured limit in bytes") {
    TestServer server([](const Seen&) { return answer(std::string(5000, 'x')); });
    ClientLoop loop;
    net::HttpClientOptions options;
    options.max_response_bytes = 1000;
    auto client = make_client(loop.ioc, local(server.port()), options);
    auto r = send_and_wait(*client);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::response_too_large);
    CHECK(r.error().message ==
          "response from 127.0.0.1:" + std::to_string(server.port()) + ": body exceeds 1000 bytes");
  }
  SECTION("the default 16 MiB, refused from the Content-Length alone") {
    TestServer server([](const Seen&) {
      ServerReply r;
      r.kind = ServerReply::Kind::raw;
      r.raw = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(17 << 20) + "\r\n\r\n";
      return r;
    });
    ClientLoop loop;
    auto client = make_client(loop.ioc, local(server.port()));
    auto r = send_and_wait(*client);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::response_too_large);
    CHECK(r.error().message ==
          "response from 127.0.0.1:" + std::to_string(server.port()) + ": body exceeds 16 MiB");
  }
}

TEST_CASE("garbage instead of HTTP is bad_response", "[net][http_client]") {
  TestServer server([](const Seen&) {
    ServerReply r;
    r.kind = ServerReply::Kind::raw;
    r.raw = "garbage\r\n\r\n";
    return r;
  });
  ClientLoop loop;
  auto client = make_client(loop.ioc, local(server.port()));
  auto r = send_and_wait(*client);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::bad_response);
  CHECK_THAT(r.error().message,
             Catch::StartsWith("response from 127.0.0.1:" + std::to_string(server.port()) +
                               ": malformed HTTP ("));
  CHECK(net::request_was_sent(r.error()));
}

TEST_CASE("a connection dropped after the request is connection_dropped and counts as sent",
          "[net][http_client]") {
  SECTION("no answer at all") {
    TestServer server([](const Seen&) {
      ServerReply r;
      r.kind = ServerReply::Kind::drop;
      return r;
    });
    ClientLoop loop;
    auto client = make_client(loop.ioc, local(server.port()));
    auto r = send_and_wait(*client);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::connection_dropped);
    CHECK(r.error().message == "request to 127.0.0.1:" + std::to_string(server.port()) +
                                   ": connection closed without an answer");
    CHECK(net::request_was_sent(r.error()));
    CHECK(client->stats().requests_sent == 1);
  }
  SECTION("half an answer") {
    TestServer server([](const Seen&) {
      ServerReply r;
      r.kind = ServerReply::Kind::raw;
      r.raw = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort";
      return r;
    });
    ClientLoop loop;
    auto client = make_client(loop.ioc, local(server.port()));
    auto r = send_and_wait(*client);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::connection_dropped);
    CHECK_THAT(r.error().message, Catch::EndsWith("connection closed in the middle of the answer"));
  }
}

TEST_CASE("an interim 103 answer is skipped for the final one", "[net][http_client]") {
  TestServer server([](const Seen&) {
    ServerReply r;
    r.kind = ServerReply::Kind::raw;
    r.raw =
        "HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal";
    return r;
  });
  ClientLoop loop;
  auto client = make_client(loop.ioc, local(server.port()));
  auto r = send_and_wait(*client);
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "final");
}

TEST_CASE("invalid requests fail before any connection is made", "[net][http_client]") {
  TestServer server([](const Seen&) { return answer(); });
  ClientLoop loop;
  auto client = make_client(loop.ioc, local(server.port(), "/fhir"));
  auto refused = [&](net::HttpRequest request) {
    auto r = send_and_wait(*client, std::move(request));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::internal);
    CHECK_FALSE(net::request_was_sent(r.error()));
    return r.error().message;
  };
  net::HttpRequest injected;
  injected.headers = {{"Authorization", "Bearer abc\r\nX-Evil: 1"}};
  const std::string message = refused(injected);
  CHECK_THAT(message, Catch::Contains("control character"));
  CHECK_THAT(message, !Catch::Contains("abc"));  // never the header's value

  net::HttpRequest length;
  length.headers = {{"content-length", "5"}};
  CHECK_THAT(refused(length), Catch::Contains("set by the client"));
  net::HttpRequest bad_name;
  bad_name.headers = {{"Bad Name", "x"}};
  CHECK_THAT(refused(bad_name), Catch::Contains("header name"));
  net::HttpRequest method;
  method.method = "BREW";
  CHECK_THAT(refused(method), Catch::Contains("method"));
  net::HttpRequest other_server;
  other_server.target = "http://other.example/fhir/Patient";
  CHECK_THAT(refused(other_server), Catch::Contains("another server"));
  net::HttpRequest network_path;
  network_path.target = "//other.example/x";
  CHECK_THAT(refused(network_path), Catch::Contains("invalid target"));

  CHECK(server.accepted() == 0);
}

TEST_CASE("create refuses unusable base URLs and TLS settings", "[net][http_client]") {
  asio::io_context ioc;
  auto refused = [&](const std::string& url, net::HttpClientOptions options = {}) {
    auto c = net::HttpClient::create(ioc, url, std::move(options));
    REQUIRE_FALSE(c);
    CHECK(c.error().code == Errc::bad_config);
    return c.error().message;
  };
  CHECK_THAT(refused("https://user:pw@ehr/fhir"), Catch::Contains("credentials"));
  CHECK_THAT(refused("https://ehr/fhir?x=1"), Catch::Contains("query"));
  net::HttpClientOptions ca;
  ca.ca_file = "/nonexistent/ca.pem";
  CHECK_THAT(refused("https://ehr/fhir", ca), Catch::Contains("/nonexistent/ca.pem"));
  CHECK_THAT(refused("http://ehr/fhir", ca), Catch::Contains("http://"));
  net::HttpClientOptions half;
  half.client_certificate_file = Pki::get().file("client.crt");
  CHECK_THAT(refused("https://ehr/fhir", half), Catch::Contains("both"));
  net::HttpClientOptions mismatched;
  mismatched.client_certificate_file = Pki::get().file("client.crt");
  mismatched.client_key_file = Pki::get().file("localhost.key");
  CHECK_THAT(refused("https://ehr/fhir", mismatched), Catch::Contains("client key"));
  net::HttpClientOptions none;
  none.max_connections = 0;
  CHECK_THAT(refused("http://ehr/fhir", none), Catch::Contains("max_connections"));
}

TEST_CASE("https with the test CA succeeds and keeps the connection", "[net][http_client][tls]") {
  const Pki& pki = Pki::get();
  TestServer server([](const Seen&) { return answer("secure"); }, pki.server("localhost", false));
  ClientLoop loop;
  net::HttpClientOptions options;
  options.ca_file = pki.file("ca.crt");
  auto client = make_client(
      loop.ioc, "https://localhost:" + std::to_string(server.port()) + "/fhir", options);
  for (int i = 0; i < 3; ++i) {
    auto r = send_and_wait(*client);
    INFO((r ? "" : r.error().message));
    REQUIRE(r);
    CHECK(r->body == "secure");
  }
  CHECK(server.accepted() == 1);
  CHECK(server.seen().at(0).host == "localhost:" + std::to_string(server.port()));
}

TEST_CASE("https to a name or address the certificate does not carry is refused",
          "[net][http_client][tls]") {
  const Pki& pki = Pki::get();
  ClientLoop loop;
  net::HttpClientOptions options;
  options.ca_file = pki.file("ca.crt");
  SECTION("a certificate for localhost reached as 127.0.0.1") {
    TestServer server([](const Seen&) { return answer(); }, pki.server("localhost", false));
    auto client =
        make_client(loop.ioc, "https://127.0.0.1:" + std::to_string(server.port()), options);
    auto r = send_and_wait(*client);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::tls_verify_failed);
    CHECK(r.error().message == "TLS handshake with 127.0.0.1:" + std::to_string(server.port()) +
                                   ": certificate verify failed (IP address mismatch)");
    CHECK_FALSE(net::request_was_sent(r.error()));
    CHECK(server.seen().empty());
  }
  SECTION("a certificate for 127.0.0.1 reached as localhost") {
    TestServer server([](const Seen&) { return answer(); }, pki.server("ip", false));
    auto client =
        make_client(loop.ioc, "https://localhost:" + std::to_string(server.port()), options);
    auto r = send_and_wait(*client);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::tls_verify_failed);
    CHECK(r.error().message == "TLS handshake with localhost:" + std::to_string(server.port()) +
                                   ": certificate verify failed (hostname mismatch)");
  }
  SECTION("the certificate for 127.0.0.1 reached as 127.0.0.1 is fine") {
    TestServer server([](const Seen&) { return answer(); }, pki.server("ip", false));
    auto client =
        make_client(loop.ioc, "https://127.0.0.1:" + std::to_string(server.port()), options);
    auto r = send_and_wait(*client);
    INFO((r ? "" : r.error().message));
    CHECK(r);
  }
}

TEST_CASE("https with a certificate from an untrusted CA is refused", "[net][http_client][tls]") {
  const Pki& pki = Pki::get();
  TestServer server([](const Seen&) { return answer(); }, pki.server("localhost", false));
  ClientLoop loop;
  const std::string url = "https://localhost:" + std::to_string(server.port());
  SECTION("another CA file") {
    net::HttpClientOptions options;
    options.ca_file = pki.file("other_ca.crt");
    auto client = make_client(loop.ioc, url, options);
    auto r = send_and_wait(*client);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::tls_verify_failed);
    CHECK(r.error().message == "TLS handshake with localhost:" + std::to_string(server.port()) +
                                   ": certificate verify failed (unable to get local issuer "
                                   "certificate)");
  }
  SECTION("the system CAs") {
    auto client = make_client(loop.ioc, url);
    auto r = send_and_wait(*client);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::tls_verify_failed);
  }
  CHECK(server.seen().empty());
}

TEST_CASE("a client certificate is presented to a server that requires one",
          "[net][http_client][tls]") {
  const Pki& pki = Pki::get();
  TestServer server([](const Seen&) { return answer("mutual"); }, pki.server("localhost", true));
  ClientLoop loop;
  const std::string url = "https://localhost:" + std::to_string(server.port());
  SECTION("with the certificate") {
    net::HttpClientOptions options;
    options.ca_file = pki.file("ca.crt");
    options.client_certificate_file = pki.file("client.crt");
    options.client_key_file = pki.file("client.key");
    auto client = make_client(loop.ioc, url, options);
    auto r = send_and_wait(*client);
    INFO((r ? "" : r.error().message));
    REQUIRE(r);
    CHECK(r->body == "mutual");
    CHECK(server.client_cn() == "adapterd-test-client");
  }
  SECTION("without it the server refuses") {
    net::HttpClientOptions options;
    options.ca_file = pki.file("ca.crt");
    auto client = make_client(loop.ioc, url, options);
    auto r = send_and_wait(*client);
    REQUIRE_FALSE(r);
    // TLS 1.3 completes the client's side of the handshake before the server checks, so the
    // refusal arrives as an alert on the first read.
    CHECK_THAT(r.error().message, Catch::Contains("certificate required"));
    CHECK(server.seen().empty());
  }
}

TEST_CASE("destroying the client fails what is queued and in flight", "[net][http_client]") {
  TestServer server([](const Seen&) {
    ServerReply r;
    r.kind = ServerReply::Kind::hang;
    return r;
  });
  ClientLoop loop;
  auto client = make_client(loop.ioc, local(server.port()));
  auto in_flight = send_async(*client, {});
  while (server.seen().empty()) std::this_thread::sleep_for(5ms);
  std::vector<std::future<Outcome>> queued;
  for (int i = 0; i < 4; ++i)
    queued.push_back(send_async(*client, {}));  // 4 connections: 3 more sent
  client.reset();
  Outcome first = wait_for_outcome(in_flight);
  REQUIRE_FALSE(first.result->ok());
  CHECK(first.result->error().code == Errc::connection_dropped);
  CHECK_THAT(first.result->error().message, Catch::Contains("shutting down"));
  for (auto& f : queued) {
    Outcome o = wait_for_outcome(f);
    REQUIRE_FALSE(o.result->ok());
    CHECK_THAT(o.result->error().message, Catch::Contains("shutting down"));
  }
}
