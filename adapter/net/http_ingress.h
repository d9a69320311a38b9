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
#pragma once

#include <cstdint>
#include <memory>

#include "app/config.h"
#include "app/feed_intake.h"
#include "app/stats.h"
#include "common/result.h"

namespace boost::asio {
class io_context;
}

namespace adapter::net {

class Listener;  // net/listener.h

class HttpIngress {
 public:
  // Binds and starts accepting; a port in use or a bad TLS setup is an error value.
  // `intake` and `stats` must outlive the listener.
  static Result<std::unique_ptr<HttpIngress>> start(boost::asio::io_context& ioc,
                                                    const app::HttpListenerConfig& config,
                                                    app::FeedIntake& intake, app::HttpStats& stats);
  ~HttpIngress();  // NOLINT(bugprone-exception-escape)

  std::uint16_t port() const;
  void stop();  // stops accepting; open sessions finish their current exchange

 private:
  explicit HttpIngress(std::shared_ptr<Listener> listener);
  std::shared_ptr<Listener> listener_;
};

}  // namespace adapter::net
