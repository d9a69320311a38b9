// What the benchmarks share: timing like the peers' bench.mjs (so rates compare), allocation
// counts (support/alloc_counter.cpp replaces the global allocation functions), and the benchmark
// message read as the peer scripts send it.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>

namespace adapter::bench {

struct AllocCounters {
  std::uint64_t allocs = 0;
  std::uint64_t bytes = 0;
  std::uint64_t frees = 0;
};
// Counts since the program started (defined in alloc_counter.cpp).
AllocCounters alloc_counts();

using Clock = std::chrono::steady_clock;

// Like bench.mjs opsPerSec: batches of 100 until `ms` have passed.
template <class F>
double ops_per_sec(F&& fn, double ms) {
  std::uint64_t n = 0;
  const auto t0 = Clock::now();
  double elapsed_ms = 0;
  do {
    for (int i = 0; i < 100; ++i) fn();
    n += 100;
    elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  } while (elapsed_ms < ms);
  return static_cast<double>(n) * 1000.0 / elapsed_ms;
}

struct Trials {
  double median, min, max;
};

// Like bench.mjs measure: a 400 ms warm-up, then the median of 5 trials of 1 s.
template <class F>
Trials measure(F&& fn) {
  ops_per_sec(fn, 400);
  std::array<double, 5> runs{};
  for (double& r : runs) r = ops_per_sec(fn, 1000);
  std::sort(runs.begin(), runs.end());
  return {runs[2], runs[0], runs[4]};
}

struct PerMessage {
  double allocs, bytes, frees;
};

// Allocations per call of `fn`, averaged over `n` calls after one untimed call (which lets
// reused buffers reach their final size, as they do in a long-running process).
template <class F>
PerMessage allocations(F&& fn, int n) {
  fn();
  const AllocCounters before = alloc_counts();
  for (int i = 0; i < n; ++i) fn();
  const AllocCounters after = alloc_counts();
  const auto per = [n](std::uint64_t a, std::uint64_t b) {
    return static_cast<double>(b - a) / static_cast<double>(n);
  };
  return {per(before.allocs, after.allocs), per(before.bytes, after.bytes),
          per(before.frees, after.frees)};
}

inline std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The message as the peer scripts send it: LF (or CRLF) line ends become CR, trailing CRs go.
inline std::string load_message(const char* path) {
  const std::string raw = read_file(path);
  std::string text;
  text.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n') continue;
    text.push_back(raw[i] == '\n' ? '\r' : raw[i]);
  }
  while (!text.empty() && text.back() == '\r') text.pop_back();
  return text;
}

}  // namespace adapter::bench
