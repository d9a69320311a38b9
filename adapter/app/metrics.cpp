#include "app/metrics.h"

#include "app/prometheus_text.h"

#include <filesystem>
#include <optional>
#include <system_error>

namespace adapter::app {

void append_mapping_backlog_prometheus(std::string& out,
                                       const std::optional<store::MappingBacklog>& backlog,
                                       std::int64_t now_us) {
  append_family_header(out, "adapterd_mapping_pending",
                       "messages stored and accepted, not yet mapped (new or replayed)", "gauge");
  append_sample(out, "adapterd_mapping_pending", {}, {},
                backlog ? std::to_string(backlog->pending) : std::string("NaN"));
  std::string age = "NaN";
  if (backlog) {
    const bool none = backlog->pending == 0 || backlog->oldest_since_us == 0;
    const double seconds = none ? 0 : static_cast<double>(now_us - backlog->oldest_since_us) / 1e6;
    // (A clock stepped back: not a negative age.)
    age = none ? std::string("0") : std::to_string(seconds < 0 ? 0.0 : seconds);
  }
  append_family_header(out, "adapterd_mapping_oldest_pending_age_seconds",
                       "how long the message that has waited longest to be mapped has waited, "
                       "from its receipt or, replayed, from the replay (0 when none)",
                       "gauge");
  append_sample(out, "adapterd_mapping_oldest_pending_age_seconds", {}, {}, age);
}

std::string render_metrics(const MetricsSources& sources) {
  std::string out;
  append_mllp_prometheus(out, sources.hl7);
  append_http_prometheus(out, sources.http);

  std::vector<DestinationMetrics> delivery;
  delivery.reserve(sources.destinations.size());
  for (const DeliveryWorker* worker : sources.destinations) {
    DestinationMetrics m;
    m.snapshot = worker->snapshot();
    m.counters = &worker->counters();
    if (sources.outbox != nullptr) {
      if (auto counts = sources.outbox->outbox_counts(m.snapshot.name)) m.outbox = *counts;
    }
    m.now_us = sources.now_us;
    delivery.push_back(std::move(m));
  }
  append_delivery_prometheus(out, delivery);

  if (sources.mapping != nullptr) {
    append_mapping_prometheus(out, sources.mapping->template_counts());
  }
  if (sources.inbox != nullptr) {
    std::optional<store::MappingBacklog> backlog;
    if (auto read = sources.inbox->mapping_backlog()) backlog = *read;
    append_mapping_backlog_prometheus(out, backlog, sources.now_us);
  }

  std::vector<std::pair<std::string, const LatencyHistogram*>> acks;
  acks.reserve(sources.hl7.size());
  for (const auto& [name, stats] : sources.hl7) acks.emplace_back(name, &stats->ack_latency);
  LatencyHistogram::append_prometheus(
      out, "adapterd_mllp_ack_latency_seconds",
      "from a whole frame received to its acknowledgment ready (after the durable commit)",
      "listener", acks);
  std::vector<std::pair<std::string, const LatencyHistogram*>> delivered;
  delivered.reserve(delivery.size());
  for (const DestinationMetrics& m : delivery) {
    delivered.emplace_back(m.snapshot.name, &m.counters->receipt_to_delivered);
  }
  LatencyHistogram::append_prometheus(
      out, "adapterd_delivery_latency_seconds",
      "from a message's receipt to the destination's 2xx for its Bundle", "destination", delivered);

  if (sources.retention != nullptr) {
    append_family_header(out, "adapterd_retention_purged_total",
                         "finished messages purged by retention", "counter");
    append_sample(out, "adapterd_retention_purged_total", {}, {},
                  std::to_string(sources.retention->purged()));
  }
  if (!sources.store_path.empty()) {
    std::uintmax_t bytes = 0;
    for (const char* suffix : {"", "-wal"}) {
      std::error_code ec;
      const auto n = std::filesystem::file_size(sources.store_path + suffix, ec);
      if (!ec) bytes += n;
    }
    append_family_header(out, "adapterd_store_bytes",
                         "size of the store's files (database and WAL)", "gauge");
    append_sample(out, "adapterd_store_bytes", {}, {}, std::to_string(bytes));
  }
  return out;
}

}  // namespace adapter::app
