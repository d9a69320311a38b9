// translate_bench: HL7 v2 -> FHIR translation throughput and allocations on the benchmark ORU^R01
// (issue 3, point 7: at least 20,000 translations per second on one core).
//
//   translate_bench [--expect CLI_OUTPUT] [--mappings DIR] [--loop SECONDS | --count N] [FILE]
//       FILE      default fixtures/hl7v2/samples/bench_oru_r01_genomics.hl7; line ends become CR
//                 as parse_bench and the peers' bench.mjs send it, so the parse stage times the
//                 same bytes as parse_bench's parse figure
//       DIR       default the repository's mappings/ (the shipped templates)
//       --expect  what `adapterd translate` printed for FILE with CR line ends; the Bundle made
//                 here must equal it (whitespace aside), or nothing is timed
//       --loop    only translate, for SECONDS, and print the rate: for a profiler
//                 (perf record -g translate_bench --loop 10), with no other workload mixed in
//       --count   only translate, exactly N times, and print the allocations per translation: an
//                 exact, noise-free workload for valgrind --tool=callgrind (instruction counts)
//
// One translation is what `adapterd translate` and the daemon's mapping worker do per message,
// through the same code (app::Mapper::map), with the CLI's default settings (the configuration
// compiled into adapterd) and a fixed receipt (no arrival time: $source.received_at comes from
// MSH-7, message id 0), so the output is deterministic. Workloads, all but the last from the bytes:
//   parse        hl7v2::Message::parse only
//   parse+route  parse, header_of, route_hl7
//   parse+map    Mapper::map: parse, route, $source (SHA-256 of the bytes), map_hl7 -> Bundle tree
//   translate    parse+map, then Json::dump() (compact, as the mapping worker stores it)
//   serialize    Json::dump() alone, of one Bundle made beforehand (the tree is immutable)
// Timed like parse_bench and bench.mjs (batches of 100, 400 ms warm-up, then the median of 5 trials
// of 1 s), single thread. Allocations are counted by replacing the global operator new/delete,
// over a separate run.
//
// Prints a human-readable report, then one "RESULT translate_bench k=v ..." line for bench/run.sh.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "app/config.h"
#include "app/translate.h"
#include "hl7v2/header.h"
#include "hl7v2/message.h"
#include "mapping/engine.h"
#include "mapping/json.h"
#include "mapping/source_text.h"
#include "support/measure.h"

#ifndef ADAPTER_BENCH_MESSAGE
#define ADAPTER_BENCH_MESSAGE "fixtures/hl7v2/samples/bench_oru_r01_genomics.hl7"
#endif
#ifndef ADAPTER_BENCH_MAPPINGS
#define ADAPTER_BENCH_MAPPINGS "mappings"
#endif

namespace {

using adapter::app::Arrival;
using adapter::app::MappedMessage;
using adapter::app::Mapper;
using adapter::bench::allocations;
using adapter::bench::load_message;
using adapter::bench::measure;
using adapter::bench::ops_per_sec;
using adapter::bench::PerMessage;
using adapter::bench::read_file;
using adapter::bench::Trials;
using adapter::hl7v2::Message;
using adapter::mapping::Issue;
using adapter::mapping::Json;

constexpr double kTarget = 20000;  // translations per second on one core (issue 3, point 7)

// The Bundle must be the CLI's, or the figures time something else (another template, another
// setting, an early error). `adapterd translate` pretty-prints; both sides are compared as JSON
// values and as compact text, which also catches a number whose text changed (0.480 vs 0.48).
bool same_as_cli(const Json& output, const char* expect_path) {
  const std::string text = read_file(expect_path);
  if (text.empty()) {
    std::fprintf(stderr, "translate_bench: cannot read %s\n", expect_path);
    return false;
  }
  auto expected = adapter::mapping::parse_json(text, expect_path);
  if (!expected) {
    std::fprintf(stderr, "translate_bench: %s\n", expected.error().to_string().c_str());
    return false;
  }
  if (*expected == output && expected->dump() == output.dump()) return true;
  std::fprintf(stderr, "translate_bench: the Bundle differs from %s (adapterd translate):\n",
               expect_path);
  for (const std::string& d : adapter::mapping::json_diff(*expected, output, 20)) {
    std::fprintf(stderr, "  %s\n", d.c_str());
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const char* path = ADAPTER_BENCH_MESSAGE;
  const char* mappings = ADAPTER_BENCH_MAPPINGS;
  const char* expect = nullptr;
  double loop_seconds = 0;
  int count = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--expect") == 0 && i + 1 < argc) {
      expect = argv[++i];
    } else if (std::strcmp(argv[i], "--mappings") == 0 && i + 1 < argc) {
      mappings = argv[++i];
    } else if (std::strcmp(argv[i], "--loop") == 0 && i + 1 < argc) {
      loop_seconds = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
      count = std::atoi(argv[++i]);
    } else if (argv[i][0] == '-') {
      std::fprintf(stderr,
                   "usage: translate_bench [--expect CLI_OUTPUT] [--mappings DIR] "
                   "[--loop SECONDS | --count N] [FILE]\n");
      return 2;
    } else {
      path = argv[i];
    }
  }
  const std::string text = load_message(path);
  if (text.empty()) {
    std::fprintf(stderr, "translate_bench: cannot read %s\n", path);
    return 2;
  }

  // The CLI's settings: the configuration compiled into adapterd (what `adapterd translate` uses
  // without --config), reading the templates from `mappings` (absolute, from CMake) instead of
  // ./mappings, so that the bench runs from any directory.
  auto config =
      adapter::app::parse_config(adapter::app::embedded_default_config(), "<embedded default>");
  if (!config) {
    std::fprintf(stderr, "translate_bench: %s", config.error().to_string().c_str());
    return 2;
  }
  config->mapping.directory = mappings;
  auto set = adapter::app::load_mappings(config->mapping);
  if (!set) {
    for (const auto& e : set.error()) {
      std::fprintf(stderr, "translate_bench: %s: %s\n", e.where.c_str(), e.message.c_str());
    }
    return 2;
  }
  const Mapper mapper(*set, config->mapping);
  const std::string label = path;
  const Arrival receipt{};  // fixed: received_at from MSH-7, no listener, message id 0

  // One translation, checked before anything is timed.
  std::vector<MappedMessage> once = mapper.map(text, label, receipt, false);
  if (once.size() != 1 || once.front().input_error) {
    std::fprintf(
        stderr, "translate_bench: %s was not mapped: %s\n", path,
        once.size() != 1 ? "not one message" : once.front().input_error->to_string().c_str());
    return 1;
  }
  const adapter::mapping::MappingResult& first = once.front().result;
  std::size_t counts[3] = {0, 0, 0};  // by Issue::Severity
  for (const Issue& i : first.issues) ++counts[static_cast<std::size_t>(i.severity)];
  if (first.failed()) {
    for (const Issue& i : first.issues) std::fprintf(stderr, "  %s\n", i.to_string().c_str());
    std::fprintf(stderr, "translate_bench: %zu error issue(s): the mapping fails\n", counts[0]);
    return 1;
  }
  const Json& bundle = first.output;
  const std::string bundle_text = bundle.dump();
  const Json* entry = bundle.find("entry");
  const std::size_t entries = entry && entry->is_array() ? entry->as_array().size() : 0;
  const Json* type = bundle.find("resourceType");
  if (entries == 0 || !type || !type->is_string() || type->as_string() != "Bundle") {
    std::fprintf(stderr, "translate_bench: the output is not a Bundle with entries\n");
    return 1;
  }
  if (expect && !same_as_cli(bundle, expect)) return 1;
  std::printf(
      "message %s (%zu bytes), mappings %s: template %s %s, Bundle of %zu entries, %zu bytes "
      "compact; issues: %zu error, %zu warning, %zu information; %zu value(s) not mapped\n",
      path, text.size(), mappings, first.template_name.c_str(), first.template_version.c_str(),
      entries, bundle_text.size(), counts[0], counts[1], counts[2], first.unmapped.size());
  std::printf("%s\n", expect ? "output equals adapterd translate's (compared as JSON)"
                             : "output NOT compared with adapterd translate (no --expect; "
                               "bench/run.sh passes one)");

  std::uint64_t sink = 0;  // every timed call feeds it, and it is printed at the end
  auto parse_only = [&] {
    auto m = Message::parse(text);
    sink += m ? m->segment_count() : 0;
  };
  auto parse_route = [&] {
    auto m = Message::parse(text);
    if (!m) return;
    auto route = adapter::mapping::route_hl7(mapper.templates(), adapter::hl7v2::header_of(*m));
    sink += route ? 1U : 0U;
  };
  // parse+map and translate both free the Bundle at the end of the call, so the difference
  // between them is the dump() alone.
  auto parse_map = [&] {
    auto r = mapper.map(text, label, receipt, false);
    sink += r.front().result.issues.size();
  };
  auto translate = [&] {
    auto r = mapper.map(text, label, receipt, false);
    sink += r.front().result.output.dump().size();
  };
  auto serialize = [&] { sink += bundle.dump().size(); };
  if (loop_seconds > 0) {
    const double rate = ops_per_sec(translate, loop_seconds * 1000);
    std::printf("translate only, %.0f s: %.0f /s (checksum %llu)\n", loop_seconds, rate,
                static_cast<unsigned long long>(sink));
    return 0;
  }
  if (count > 0) {
    const PerMessage a = allocations(translate, count);
    std::printf(
        "translate only, %d times: %.1f allocs, %.0f B allocated per translation "
        "(checksum %llu)\n",
        count, a.allocs, a.bytes, static_cast<unsigned long long>(sink));
    return 0;
  }

  const Trials p = measure(parse_only);
  const Trials r = measure(parse_route);
  const Trials m = measure(parse_map);
  const Trials t = measure(translate);
  const Trials s = measure(serialize);
  constexpr int kAllocRuns = 5000;
  const PerMessage pa = allocations(parse_only, kAllocRuns);
  const PerMessage ra = allocations(parse_route, kAllocRuns);
  const PerMessage ma = allocations(parse_map, kAllocRuns);
  const PerMessage ta = allocations(translate, kAllocRuns);
  const PerMessage sa = allocations(serialize, kAllocRuns);

  auto row = [&](const char* name, const Trials& x, const PerMessage& a) {
    std::printf(
        "%-12s %9.0f /s [%.0f-%.0f]  %7.2f us  %7.1f allocs  %9.0f B allocated  (%.1f frees)\n",
        name, x.median, x.min, x.max, 1e6 / x.median, a.allocs, a.bytes, a.frees);
  };
  std::printf(
      "median of 5 x 1 s after 400 ms warm-up, one thread; allocations per call averaged "
      "over %d calls\n",
      kAllocRuns);
  row("parse", p, pa);
  row("parse+route", r, ra);
  row("parse+map", m, ma);
  row("translate", t, ta);
  row("serialize", s, sa);
  // Stage costs as differences of the medians: what each step adds to one translation.
  const double us_p = 1e6 / p.median, us_r = 1e6 / r.median, us_m = 1e6 / m.median,
               us_t = 1e6 / t.median;
  std::printf(
      "stages: parse %.2f us (%.0f%%), route %.2f us (%.0f%%), map %.2f us (%.0f%%), "
      "serialize %.2f us (%.0f%%) of %.2f us per translation\n",
      us_p, 100 * us_p / us_t, us_r - us_p, 100 * (us_r - us_p) / us_t, us_m - us_r,
      100 * (us_m - us_r) / us_t, us_t - us_m, 100 * (us_t - us_m) / us_t, us_t);
  std::printf("target: %.0f translations/s on one core: %s (%.2fx the target)\n", kTarget,
              t.median >= kTarget ? "met" : "MISSED", t.median / kTarget);
  std::printf("checksum %llu\n", static_cast<unsigned long long>(sink));
  std::printf(
      "RESULT translate_bench bytes=%zu output_bytes=%zu entries=%zu warnings=%zu unmapped=%zu "
      "checked=%d parse_per_s=%.0f parse_min=%.0f parse_max=%.0f "
      "route_per_s=%.0f route_min=%.0f route_max=%.0f map_per_s=%.0f map_min=%.0f map_max=%.0f "
      "translate_per_s=%.0f translate_min=%.0f translate_max=%.0f "
      "serialize_per_s=%.0f serialize_min=%.0f serialize_max=%.0f "
      "parse_allocs=%.2f parse_bytes=%.0f route_allocs=%.2f route_bytes=%.0f "
      "map_allocs=%.2f map_bytes=%.0f translate_allocs=%.2f translate_bytes=%.0f "
      "serialize_allocs=%.2f serialize_bytes=%.0f\n",
      text.size(), bundle_text.size(), entries, counts[1], first.unmapped.size(), expect ? 1 : 0,
      p.median, p.min, p.max, r.median, r.min, r.max, m.median, m.min, m.max, t.median, t.min,
      t.max, s.median, s.min, s.max, pa.allocs, pa.bytes, ra.allocs, ra.bytes, ma.allocs, ma.bytes,
      ta.allocs, ta.bytes, sa.allocs, sa.bytes);
  return 0;
}
