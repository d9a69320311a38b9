// A latency histogram for /metrics (Prometheus "histogram": cumulative buckets, sum, count).
// Lock-free: relaxed atomics, observed from any thread, read by the metrics endpoint.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "app/prometheus_text.h"

namespace adapter::app {

class LatencyHistogram {
 public:
  // Upper bounds in seconds: from sub-millisecond ACKs to deliveries that waited out an outage.
  static constexpr std::array<double, 16> kBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 300};

  void observe_us(std::int64_t us) {
    if (us < 0) us = 0;
    const double seconds = static_cast<double>(us) / 1e6;
    std::size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);  // i == size: only in +Inf
    sum_us_.fetch_add(static_cast<std::uint64_t>(us), std::memory_order_relaxed);
  }

  // Appends one histogram family, each labelled instance's lines together:
  //   name_bucket{listener="mllp",le="0.001"} 12 ... name_sum{...} 0.4 name_count{...} 40
  static void append_prometheus(
      std::string& out, std::string_view name, std::string_view help, std::string_view label,
      const std::vector<std::pair<std::string, const LatencyHistogram*>>& all) {
    if (all.empty()) return;
    append_family_header(out, name, help, "histogram");
    for (const auto& [value, h] : all) {
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i <= kBounds.size(); ++i) {
        cumulative += h->buckets_[i].load(std::memory_order_relaxed);
        // A bucket carries a second label, le: name_bucket{label="value",le="0.001"} n
        out += name;
        out += "_bucket{";
        out += label;
        out += "=\"";
        out += value;
        out += "\",le=\"";
        out += i < kBounds.size() ? format(kBounds[i]) : std::string("+Inf");
        out += "\"} ";
        out += std::to_string(cumulative);
        out += '\n';
      }
      append_sample(out, std::string(name) + "_sum", label, value,
                    format(static_cast<double>(h->sum_us_.load(std::memory_order_relaxed)) / 1e6));
      append_sample(out, std::string(name) + "_count", label, value, std::to_string(cumulative));
    }
  }

 private:
  static std::string format(double v) {
    std::string s = std::to_string(v);  // "0.000500"
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }

  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> sum_us_{0};
};

}  // namespace adapter::app
