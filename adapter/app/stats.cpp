#include "app/stats.h"

#include "app/prometheus_text.h"

namespace adapter::app {

namespace {

// One family of a listener's counter: # HELP and # TYPE once, then one line per listener.
template <class Stats, class Value>
void append_listener_family(std::string& out, std::string_view metric, std::string_view help,
                            std::string_view type,
                            const std::vector<std::pair<std::string, const Stats*>>& all,
                            Value value) {
  append_family_header(out, metric, help, type);
  for (const auto& [listener, stats] : all) {
    append_sample(out, metric, "listener", listener, std::to_string(value(*stats)));
  }
}

}  // namespace

void append_mllp_prometheus(std::string& out,
                            const std::vector<std::pair<std::string, const MllpStats*>>& all) {
  if (all.empty()) return;
#define ADAPTER_PRINT_COUNTER(name, help)                         \
  append_listener_family(                                         \
      out, "adapterd_mllp_" #name "_total", help, "counter", all, \
      [](const MllpStats& s) { return s.name.load(std::memory_order_relaxed); });
  ADAPTER_MLLP_COUNTERS(ADAPTER_PRINT_COUNTER)
#undef ADAPTER_PRINT_COUNTER
  append_listener_family(
      out, "adapterd_mllp_connections_active", "connections open now", "gauge", all,
      [](const MllpStats& s) { return s.connections_active.load(std::memory_order_relaxed); });
}

void append_http_prometheus(std::string& out,
                            const std::vector<std::pair<std::string, const HttpStats*>>& all) {
  if (all.empty()) return;
#define ADAPTER_PRINT_COUNTER(name, help)                         \
  append_listener_family(                                         \
      out, "adapterd_http_" #name "_total", help, "counter", all, \
      [](const HttpStats& s) { return s.name.load(std::memory_order_relaxed); });
  ADAPTER_HTTP_COUNTERS(ADAPTER_PRINT_COUNTER)
#undef ADAPTER_PRINT_COUNTER
  append_listener_family(
      out, "adapterd_http_connections_active", "connections open now", "gauge", all,
      [](const HttpStats& s) { return s.connections_active.load(std::memory_order_relaxed); });
}

void append_mapping_prometheus(
    std::string& out,
    const std::vector<std::pair<std::string, MappingWorker::TemplateCounts>>& counts) {
  struct Family {
    const char* name;
    const char* help;
    std::uint64_t MappingWorker::TemplateCounts::*count;
  };
  static const Family kFamilies[] = {
      {"adapterd_mapping_mapped_total", "messages mapped, per template",
       &MappingWorker::TemplateCounts::mapped},
      {"adapterd_mapping_failed_total",
       "messages whose mapping failed (kept, replayable), per template",
       &MappingWorker::TemplateCounts::failed},
      {"adapterd_mapping_held_back_total",
       "messages mapped and not sent: an older version of a report already sent, per template",
       &MappingWorker::TemplateCounts::held_back},
      {"adapterd_mapping_superseded_deliveries_total",
       "open deliveries (pending, dead letters) of older versions of a report, discarded when a "
       "newer version was queued, per template of the newer one",
       &MappingWorker::TemplateCounts::superseded},
  };
  for (const Family& f : kFamilies) {
    append_family_header(out, f.name, f.help, "counter");
    for (const auto& [tmpl, c] : counts) {
      append_sample(out, f.name, "template", tmpl, std::to_string(c.*f.count));
    }
  }
}

void append_delivery_prometheus(std::string& out, const std::vector<DestinationMetrics>& all) {
  if (all.empty()) return;
  struct Family {
    const char* name;
    const char* type;
    const char* help;
    std::string (*value)(const DestinationMetrics&);
  };
  static const Family kFamilies[] = {
      {"adapterd_delivery_attempts_total", "counter", "requests sent to the destination",
       [](const DestinationMetrics& m) { return std::to_string(m.counters->attempts.load()); }},
      {"adapterd_delivery_delivered_total", "counter", "Bundles the destination accepted (2xx)",
       [](const DestinationMetrics& m) { return std::to_string(m.counters->delivered.load()); }},
      {"adapterd_delivery_retried_total", "counter",
       "attempts that failed and will be tried again (no answer, 408, 429, 5xx)",
       [](const DestinationMetrics& m) { return std::to_string(m.counters->retried.load()); }},
      {"adapterd_delivery_dead_lettered_total", "counter",
       "deliveries refused (other 4xx) or given up at a retry limit",
       [](const DestinationMetrics& m) {
         return std::to_string(m.counters->dead_lettered.load());
       }},
      {"adapterd_delivery_in_flight", "gauge", "requests sent and not yet answered and recorded",
       [](const DestinationMetrics& m) { return std::to_string(m.snapshot.in_flight); }},
      {"adapterd_delivery_circuit_state", "gauge",
       "the destination's circuit breaker: 0 closed, 1 half-open (probing), 2 open",
       [](const DestinationMetrics& m) {
         switch (m.snapshot.circuit) {
           case delivery::CircuitBreaker::State::closed:
             return std::string("0");
           case delivery::CircuitBreaker::State::half_open:
             return std::string("1");
           case delivery::CircuitBreaker::State::open:
             return std::string("2");
         }
         return std::string("0");
       }},
      {"adapterd_delivery_circuit_opened_total", "counter", "times the circuit breaker opened",
       [](const DestinationMetrics& m) { return std::to_string(m.snapshot.circuit_opened); }},
      {"adapterd_outbox_pending", "gauge", "deliveries waiting for their first or next attempt",
       [](const DestinationMetrics& m) {
         return m.outbox ? std::to_string(m.outbox->pending) : std::string("NaN");
       }},
      {"adapterd_outbox_dead_letters", "gauge", "dead letters waiting for an operator",
       [](const DestinationMetrics& m) {
         return m.outbox ? std::to_string(m.outbox->dead_letter) : std::string("NaN");
       }},
      {"adapterd_outbox_oldest_pending_age_seconds", "gauge",
       "age of the oldest pending delivery (0 when none)",
       [](const DestinationMetrics& m) {
         if (!m.outbox) return std::string("NaN");
         if (m.outbox->oldest_pending_queued_at_us == 0) return std::string("0");
         const double age =
             static_cast<double>(m.now_us - m.outbox->oldest_pending_queued_at_us) / 1e6;
         return std::to_string(age < 0 ? 0.0 : age);
       }},
  };
  for (const Family& f : kFamilies) {
    append_family_header(out, f.name, f.help, f.type);
    for (const DestinationMetrics& m : all) {
      append_sample(out, f.name, "destination", m.snapshot.name, f.value(m));
    }
  }
}

}  // namespace adapter::app
