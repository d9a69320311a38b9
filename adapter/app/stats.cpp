#include "app/stats.h"

namespace adapter::app {

void append_prometheus(std::string& out, std::string_view listener, const MllpStats& stats,
                       bool with_help) {
  const std::string label = "{listener=\"" + std::string(listener) + "\"} ";
  auto line = [&](std::string_view name, std::string_view help, std::string_view type,
                  const std::string& value) {
    const std::string metric = "adapterd_mllp_" + std::string(name);
    if (with_help) {
      out += "# HELP " + metric + " " + std::string(help) + "\n";
      out += "# TYPE " + metric + " " + std::string(type) + "\n";
    }
    out += metric + label + value + "\n";
  };
#define ADAPTER_PRINT_COUNTER(name, help) \
  line(#name "_total", help, "counter", std::to_string(stats.name.load(std::memory_order_relaxed)));
  ADAPTER_MLLP_COUNTERS(ADAPTER_PRINT_COUNTER)
#undef ADAPTER_PRINT_COUNTER
  line("connections_active", "connections open now", "gauge",
       std::to_string(stats.connections_active.load(std::memory_order_relaxed)));
}

}  // namespace adapter::app
