// Counters per MLLP listener, declared once as an X-macro so the struct and the Prometheus text
// cannot drift apart. Every path that drops, rejects or times something out bumps one of these.
//
// Thread-safe: plain relaxed atomics, read at any time by the metrics endpoint.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/delivery_worker.h"
#include "app/histogram.h"
#include "app/mapping_worker.h"
#include "store/outbox.h"

namespace adapter::app {

//        name                      help
#define ADAPTER_MLLP_COUNTERS(X)                                                                   \
  X(connections_accepted, "TCP connections accepted")                                              \
  X(connections_refused, "connections closed at once because max_connections were open")           \
  X(frames_received, "complete MLLP frames received")                                              \
  X(bytes_outside_frames, "bytes received outside any MLLP frame, discarded")                      \
  X(frames_oversize, "frames over max_frame_bytes: answered with an error, connection closed")     \
  X(frames_truncated, "partial frames: cut off by a new start block or by the connection closing") \
  X(frames_without_cr, "frames whose end block was not followed by a carriage return")             \
  X(idle_timeouts, "connections closed after idle_timeout_seconds without data")                   \
  X(tls_handshake_failures, "TLS handshakes that failed or timed out")                             \
  X(read_errors, "connections ended by a socket error")                                            \
  X(messages_accepted, "messages stored and positively acknowledged (AA/CA)")                      \
  X(messages_duplicate, "resent messages answered from the stored original, not stored again")     \
  X(messages_rejected, "messages stored as rejected and answered AR/CR (cannot be parsed)")        \
  X(messages_refused, "messages stored as rejected and answered AE/CE (type, duplicate conflict)") \
  X(store_failures, "messages that could not be committed: answered AE/CE, never AA")              \
  X(acks_sent, "acknowledgments written")                                                          \
  X(acks_suppressed, "acknowledgments not sent because MSH-15 (NE/ER/SU) said so")

struct MllpStats {
#define ADAPTER_DECLARE_COUNTER(name, help) \
  std::atomic<std::uint64_t> name{0};  // NOLINT(bugprone-macro-parentheses): a declaration
  ADAPTER_MLLP_COUNTERS(ADAPTER_DECLARE_COUNTER)
#undef ADAPTER_DECLARE_COUNTER
  std::atomic<std::int64_t> connections_active{0};
  LatencyHistogram ack_latency;  // receipt of the whole frame -> the ACK is ready (after commit)
};

// Counters per HTTP listener (POST /feeds/{feed}, GET /messages/{id}).
#define ADAPTER_HTTP_COUNTERS(X)                                                                \
  X(connections_accepted, "TCP connections accepted")                                           \
  X(connections_refused, "connections closed at once because max_connections were open")        \
  X(tls_handshake_failures, "TLS handshakes that failed or timed out")                          \
  X(requests, "HTTP requests whose headers were read")                                          \
  X(bad_requests, "requests that are not valid HTTP/1.1, or for no endpoint (400/404/405)")     \
  X(read_timeouts, "requests not complete within read_timeout_seconds: connection closed")      \
  X(unauthorized, "requests answered 401: no or a wrong API key or client certificate")         \
  X(bodies_too_large, "bodies over max_body_bytes: answered 413, reading stopped at the limit") \
  X(documents_accepted, "documents stored durably and answered 202")                            \
  X(documents_duplicate, "resubmitted documents answered 200 with the original's id")           \
  X(documents_rejected,                                                                         \
    "bodies stored as rejected and answered 4xx (not well-formed, no route...)")                \
  X(store_failures, "bodies that could not be committed: answered 503")                         \
  X(status_requests, "GET /messages/{id} answered")

struct HttpStats {
#define ADAPTER_DECLARE_COUNTER(name, help) \
  std::atomic<std::uint64_t> name{0};  // NOLINT(bugprone-macro-parentheses): a declaration
  ADAPTER_HTTP_COUNTERS(ADAPTER_DECLARE_COUNTER)
#undef ADAPTER_DECLARE_COUNTER
  std::atomic<std::int64_t> connections_active{0};
};

inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
  counter.fetch_add(n, std::memory_order_relaxed);
}

// Appends the MLLP families in the Prometheus text format, each family's lines together with
// its # HELP / # TYPE once, labelled with the listener name (MLLP listeners, and HL7 v2 feeds over
// HTTP or folders, which count the same things):
//   adapterd_mllp_frames_received_total{listener="lab"} 42
void append_mllp_prometheus(std::string& out,
                            const std::vector<std::pair<std::string, const MllpStats*>>& all);

// Appends the HTTP families, each family's lines together, labelled with the listener name
// ("folders" for drop folders):
//   adapterd_http_documents_accepted_total{listener="http"} 42
void append_http_prometheus(std::string& out,
                            const std::vector<std::pair<std::string, const HttpStats*>>& all);

// adapterd_mapping_mapped_total{template="oru-r01"} and _failed_total, from
// MappingWorker::template_counts().
void append_mapping_prometheus(
    std::string& out,
    const std::vector<std::pair<std::string, MappingWorker::TemplateCounts>>& counts);

// One destination's figures for /metrics.
struct DestinationMetrics {
  DestinationSnapshot snapshot;
  const DeliveryCounters* counters = nullptr;
  std::optional<store::OutboxCounts> outbox;  // nothing when the store could not be read
  std::int64_t now_us = 0;
};

// Appends the delivery families, each family's lines together, labelled by destination:
//   adapterd_delivery_delivered_total{destination="ehr"} 42
//   adapterd_delivery_circuit_state{destination="ehr"} 0     (0 closed, 1 half-open, 2 open)
//   adapterd_outbox_pending{destination="ehr"} 3
//   adapterd_outbox_oldest_pending_age_seconds{destination="ehr"} 1.5
void append_delivery_prometheus(std::string& out, const std::vector<DestinationMetrics>& all);

}  // namespace adapter::app
