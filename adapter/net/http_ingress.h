// The HTTP listener for lab feeds (Boost.Beast, optional TLS and client certificates):
//
//   POST /feeds/{feed}    a document (application/xml) or HL7 v2 (x-application/hl7-v2+er7)
//   GET  /messages/{id}   what became of it
//
// It reads and writes HTTP only; app::FeedIntake authenticates, stores and decides the answer.
// Credentials and the Content-Length are checked on the headers, before any body is read; a
// body over max_body_bytes (declared, or chunked past the limit) is answered 413 and reading
// stops. Every read has a deadline (headers and body within read_timeout, an idle keep-alive
// connection closed after idle_timeout), headers are capped at 16 KiB, and at most
// max_connections are open. Sessions run on a strand each.
//
// GET /messages/{id} reads the store (the message, its mapping with the whole Bundle, its
// deliveries) and parses the Bundle: milliseconds for a large report. That runs on a small
// thread pool of the listener's, never on the I/O threads, whose MLLP ACKs would wait behind it.
#pragma once

#include <cstdint>
#include <memory>

#include "app/config.h"
#include "app/feed_intake.h"
#include "app/stats.h"
#include "common/result.h"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace adapter::net {

class Listener;  // net/listener.h

class HttpIngress {
 public:
  // Binds and starts accepting; a port in use or a bad TLS setup is an error value.
  // `intake` and `stats` must outlive the listener. Status lookups run on `lookups` when given
  // (a test holds them there), else on a pool of kLookupThreads of the listener's own.
  static Result<std::unique_ptr<HttpIngress>> start(
      boost::asio::io_context& ioc, const app::HttpListenerConfig& config, app::FeedIntake& intake,
      app::HttpStats& stats, std::shared_ptr<boost::asio::thread_pool> lookups = nullptr);
  ~HttpIngress();  // NOLINT(bugprone-exception-escape)

  std::uint16_t port() const;
  // Stops accepting and waits for the status lookups under way (later ones are answered 503);
  // open sessions finish their current exchange.
  void stop();

  static constexpr int kLookupThreads = 2;
  struct Lookups;  // the pool, and whether it still takes work

 private:
  HttpIngress(std::shared_ptr<Listener> listener, std::shared_ptr<Lookups> lookups);
  std::shared_ptr<Listener> listener_;
  std::shared_ptr<Lookups> lookups_;
};

}  // namespace adapter::net
