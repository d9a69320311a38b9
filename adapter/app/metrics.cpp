#include "app/metrics.h"

#include <filesystem>
#include <system_error>

namespace adapter::app {

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
    out +=
        "# HELP adapterd_retention_purged_total finished messages purged by retention\n"
        "# TYPE adapterd_retention_purged_total counter\n"
        "adapterd_retention_purged_total " +
        std::to_string(sources.retention->purged()) + "\n";
  }
  if (!sources.store_path.empty()) {
    std::uintmax_t bytes = 0;
    for (const char* suffix : {"", "-wal"}) {
      std::error_code ec;
      const auto n = std::filesystem::file_size(sources.store_path + suffix, ec);
      if (!ec) bytes += n;
    }
    out +=
        "# HELP adapterd_store_bytes size of the store's files (database and WAL)\n"
        "# TYPE adapterd_store_bytes gauge\n"
        "adapterd_store_bytes " +
        std::to_string(bytes) + "\n";
  }
  return out;
}

}  // namespace adapter::app
