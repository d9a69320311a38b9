// Outbound HTTP/1.1 client for one destination (scheme://host:port), e.g. the EHR's FHIR server.
//
// - Keep-alive: up to max_connections connections are opened on demand and reused; requests
//   beyond them wait in a queue of at most max_queued, and beyond that fail at once
//   (Errc::request_queue_full). An idle connection the server has closed (or that outlived the
//   server's Keep-Alive timeout or idle_timeout) is noticed before reuse and replaced. If a reused
//   connection still fails before a single byte of the request was written, the request is tried
//   once more on a fresh connection; once anything was written, the error is reported and the
//   caller decides (a POST may have been acted on).
// - https: TLS 1.2 or newer, the server certificate verified against the system CAs or ca_file,
//   the host name (or IP address) checked against the certificate, SNI sent for names; an
//   optional client certificate for mutual TLS.
// - Deadlines: connect_timeout bounds DNS + TCP connect + TLS handshake; request_timeout bounds
//   the whole exchange from the moment a connection is assigned to the request (connecting,
//   writing, reading). Time spent waiting in the queue is not counted: a request is not failed
//   because others were slow, and the queue is bounded.
// - Errors are values whose message names the step and the destination host:port, never the
//   target, a header or a body (they may carry identifiers or credentials):
//     "connect to 127.0.0.1:8443: connection refused"
//     "TLS handshake with localhost:8443: certificate verify failed (hostname mismatch)"
//     "request to fhir.example.org:443: timed out after 30000 ms"
//   request_was_sent() tells "failed before sending" from "sent, no (complete) answer".
//
// Thread safety: send() and stats() may be called from any thread. Every `done` runs exactly
// once, on a thread running the io_context, never inside send(). Destroying the client fails
// the requests still queued or in flight (their `done` still runs on the io_context, as long as
// it keeps running) and closes the connections.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace boost::asio {
class io_context;
}

namespace adapter::net {

struct HttpHeader {
  std::string name;
  std::string value;
};

struct HttpRequest {
  std::string method = "GET";
  // Where to send it, relative to the destination's base URL:
  //   ""                        the base URL itself ("https://ehr/fhir/r4" -> "/fhir/r4")
  //   "Patient?identifier=x"    appended to the base path ("/fhir/r4/Patient?identifier=x")
  //   "/metadata"               an absolute path on the same server
  //   "https://ehr/fhir/r4/x"   an absolute URL, only on the same scheme, host and port
  std::string target;
  // Sent as given; the client sets Host, Content-Length and User-Agent (unless given here) and
  // refuses Host, Content-Length, Transfer-Encoding and Connection from the caller.
  std::vector<HttpHeader> headers;
  std::string body;
};

struct HttpResponse {
  unsigned status = 0;
  std::vector<HttpHeader> headers;
  std::string body;
  // The first header of that name (case-insensitive), or "" when there is none.
  std::string_view header(std::string_view name) const;
};

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};
  // An idle connection is not reused after this long (nor after the server's Keep-Alive timeout,
  // less a margin): servers close idle connections, and racing their close costs a request.
  std::chrono::milliseconds idle_timeout{30000};
  std::size_t max_connections = 4;  // to this destination; at least 1
  std::size_t max_queued = 1000;    // requests waiting for a connection; beyond: an error value
  std::size_t max_response_bytes = std::size_t{16} << 20;  // response body limit
  std::string ca_file;  // PEM bundle of trusted CAs; empty: the system's default verify paths
  std::string client_certificate_file;  // PEM chain for mutual TLS; empty: none
  std::string client_key_file;          // PEM private key of the client certificate
  std::string user_agent;               // empty: "adapterd/<version>"
};

struct HttpClientStats {
  std::uint64_t connections_opened = 0;        // TCP connections established
  std::uint64_t requests_sent = 0;             // requests written completely
  std::uint64_t responses_received = 0;        // complete responses, any status
  std::uint64_t stale_connections_closed = 0;  // idle connections found closed or expired
  std::uint64_t retried_on_fresh_connection = 0;
};

// False when the error guarantees that nothing of the request reached the server (connect,
// TLS, queue full, invalid request); true when the server may have received and acted on it.
bool request_was_sent(const Error& error);

class HttpClient {
 public:
  // `ioc` must outlive the client. Fails (Errc::bad_config) on a malformed base URL (see url.h:
  // no query or fragment) or unreadable CA, certificate or key files.
  static Result<std::unique_ptr<HttpClient>> create(boost::asio::io_context& ioc,
                                                    std::string_view base_url,
                                                    HttpClientOptions options);
  ~HttpClient();  // NOLINT(bugprone-exception-escape): only an allocation failure throws
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  void send(HttpRequest request, std::function<void(Result<HttpResponse>)> done);

  HttpClientStats stats() const;
  // "host:port", as errors name it; for logs.
  const std::string& destination() const;

  class Impl;

 private:
  explicit HttpClient(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace adapter::net
