// The whole /metrics text (Prometheus text format 0.0.4) in one place: every family once, its
// # HELP and # TYPE once, its lines together whatever the number of listeners, feeds and
// destinations. main.cpp says where the figures live; this file says how they are printed, so
// that a test can render them without a daemon.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "app/delivery_worker.h"
#include "app/mapping_worker.h"
#include "app/retention.h"
#include "app/stats.h"
#include "store/inbox_store.h"
#include "store/outbox.h"

namespace adapter::app {

// Where the figures are, gathered at each scrape. Everything pointed to outlives the
// render_metrics() call; a null pointer or an empty list leaves its families out.
struct MetricsSources {
  // HL7 v2 sources in output order: the MLLP listeners, then the HL7 v2 feeds over HTTP and
  // folders (labelled listener="<name>"; their ACK latency histograms too).
  std::vector<std::pair<std::string, const MllpStats*>> hl7;
  // The HTTP listener ("http" or its configured name) and the drop folders ("folders").
  std::vector<std::pair<std::string, const HttpStats*>> http;
  std::vector<const DeliveryWorker*> destinations;
  const MappingWorker* mapping = nullptr;  // none without a mappings folder
  // The mapping backlog: printed even without a mapping worker (messages then wait, unmapped).
  store::InboxStore* inbox = nullptr;
  store::Outbox* outbox = nullptr;  // outbox counts per destination
  const RetentionWorker* retention = nullptr;
  std::string store_path;   // adapterd_store_bytes: this file and its -wal; empty: left out
  std::int64_t now_us = 0;  // for the ages
};

std::string render_metrics(const MetricsSources& sources);

// adapterd_mapping_pending and adapterd_mapping_oldest_pending_age_seconds; NaN for both when
// the store could not be read (nothing).
void append_mapping_backlog_prometheus(std::string& out,
                                       const std::optional<store::MappingBacklog>& backlog,
                                       std::int64_t now_us);

}  // namespace adapter::app
