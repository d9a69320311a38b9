// parse_bench: HL7 v2 parse throughput and allocations on the benchmark ORU^R01.
//
//   parse_bench [FILE]      (default: fixtures/hl7v2/samples/bench_oru_r01_genomics.hl7)
//
// Three workloads, each timed like the peers' bench.mjs (batches of 100, 400 ms warm-up, then the
// median of 5 trials of 1 s) so the figures sit beside its hl7parser line:
//   parse       Message::parse only (the daemon's intake does this for every frame)
//   parse+walk  parse, then read every field, repetition, component and subcomponent and decode
//               each leaf into one reused std::string (full escape decoding), field by field with
//               Message::for_each_leaf: the target workload
//   parse+ranges the same reads through nested repetitions()/components()/subcomponents() ranges
//   parse+get3  parse, then the three reads bench.mjs does (PID-3.1, OBX[15]-5.1, OBX count)
// Allocations are counted by replacing the global operator new/delete, over a separate run.
//
// Prints a human-readable report, then one "RESULT parse_bench k=v ..." line for bench/run.sh.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <new>
#include <string>
#include <string_view>

#include "hl7v2/message.h"
#include "support/measure.h"

#ifndef ADAPTER_BENCH_MESSAGE
#define ADAPTER_BENCH_MESSAGE "fixtures/hl7v2/samples/bench_oru_r01_genomics.hl7"
#endif

namespace {

using adapter::bench::allocations;
using adapter::bench::load_message;
using adapter::bench::measure;
using adapter::bench::PerMessage;
using adapter::bench::Trials;
using adapter::hl7v2::Message;
using adapter::hl7v2::Segment;
using adapter::hl7v2::Value;

// What a walk saw. Folded into the printed checksum so that no decode can be optimised away.
struct Tally {
  std::uint64_t fields = 0;      // fields visited (empty ones included)
  std::uint64_t leaves = 0;      // non-empty subcomponents decoded
  std::uint64_t text_bytes = 0;  // decoded bytes
  std::uint64_t checksum = 0;
  std::uint64_t positions = 0;  // walk_leaves only: sum of leaf positions

  void add(std::string_view decoded) {
    ++leaves;
    text_bytes += decoded.size();
    // Size and last byte only, added: hashing every byte (or a multiply chain per leaf) would
    // time the checksum, not the parser. Still consumes every decoded value.
    checksum += (decoded.size() << 8) + static_cast<unsigned char>(decoded.back());
  }
};

// Reads every field, repetition, component and subcomponent of every segment and decodes each
// leaf (escapes, \X..\ hex, formatting sequences) into `buf`, which is reused so that decoding
// allocates only when a value is longer than any before it. Two ways, same result:
//   walk_leaves: Message::for_each_leaf, the API message.h offers for reading a whole message
//                in one pass over its text, and Value::text(scratch), which decodes into `buf`
//                only the values that contain escapes; the target workload.
//   walk_ranges: nested repetitions() / components() / subcomponents() ranges.
void walk_leaves(const Message& m, std::string& buf, Tally& t) {
  // Locals, folded into `t` at the end: decoding writes through char pointers, which may alias
  // anything, so counters kept in `t` would be reloaded and stored for every leaf.
  Tally local;
  m.for_each_leaf([&](Message::LeafAt at, Value leaf) {
    if (at.repetition == 1 && at.component == 1 && at.subcomponent == 1) ++local.fields;
    if (leaf.empty()) return;
    // Decoded text; a copy is made only for values that contain escapes.
    const std::string_view text = leaf.text(buf);
    if (text.empty()) return;
    local.add(text);
    local.positions += at.repetition + at.component + at.subcomponent;
  });
  t.fields += local.fields;
  t.leaves += local.leaves;
  t.text_bytes += local.text_bytes;
  t.checksum += local.checksum;
  t.positions += local.positions;
}

void walk_ranges(const Message& m, std::string& buf, Tally& t) {
  const std::size_t segments = m.segment_count();
  for (std::size_t i = 0; i < segments; ++i) {
    const Segment seg = m.segment(i);
    const std::size_t fields = seg.field_count();
    for (std::size_t f = 1; f <= fields; ++f) {
      ++t.fields;
      for (const Value rep : seg.field(f).repetitions()) {
        for (const Value comp : rep.components()) {
          for (const Value sub : comp.subcomponents()) {
            if (sub.empty()) continue;
            buf.clear();
            sub.append_text(buf);
            if (!buf.empty()) t.add(buf);
          }
        }
      }
    }
  }
}

// The reads bench.mjs does for its "parse+get" figure, with string paths as hl7parser takes them.
void get3(const Message& m, std::string& buf, Tally& t) {
  buf.clear();
  m.get("PID-3.1")->append_text(buf);
  t.add(buf);
  buf.clear();
  m.get("OBX[15]-5.1")->append_text(buf);
  t.add(buf);
  t.checksum += m.count("OBX");
}

// The fidelity probes of bench.mjs: a fast parser that decodes wrongly measures nothing.
bool probe(const Message& m) {
  struct Check {
    const char* path;
    std::string_view expect;
    bool prefix;
  };
  static constexpr Check kChecks[] = {
      {"PID-3.1", "MRN12345", false},
      {"PID-3[2].1", "98765", false},
      {"OBX[15]-5.1", "Pathogenic BRCA1 variant & BRCA2 VUS detected.", true},
      {"NTE-3", "Escapes: field | comp ^ rep ~ esc \\ sub & hex A end", false},
      {"ZGX-3[2]", "DEPTH=312", false},
  };
  bool ok = m.count("OBX") == 15;
  if (!ok) std::fprintf(stderr, "probe: OBX count %zu, expected 15\n", m.count("OBX"));
  for (const Check& c : kChecks) {
    auto v = m.get(c.path);
    const std::string got = v ? v->text() : "<bad path>";
    const bool pass = c.prefix ? got.starts_with(c.expect) : got == c.expect;
    if (!pass) {
      std::fprintf(stderr, "probe: %s = \"%s\", expected \"%.*s\"%s\n", c.path, got.c_str(),
                   static_cast<int>(c.expect.size()), c.expect.data(), c.prefix ? "..." : "");
      ok = false;
    }
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : ADAPTER_BENCH_MESSAGE;
  const std::string text = load_message(path);
  if (text.empty()) {
    std::fprintf(stderr, "parse_bench: cannot read %s\n", path);
    return 2;
  }
  auto first = Message::parse(text);
  if (!first) {
    std::fprintf(stderr, "parse_bench: %s does not parse: %s\n", path,
                 first.error().to_string().c_str());
    return 2;
  }
  if (!probe(*first)) return 1;

  std::string buf;
  Tally once;
  walk_leaves(*first, buf, once);
  // Both walks must see the same leaves with the same decoded text, or one of them is wrong.
  Tally check;
  walk_ranges(*first, buf, check);
  if (once.fields != check.fields || once.leaves != check.leaves ||
      once.text_bytes != check.text_bytes || once.checksum != check.checksum) {
    std::fprintf(stderr,
                 "parse_bench: for_each_leaf and nested ranges disagree (%llu vs %llu leaves, "
                 "%llu vs %llu bytes)\n",
                 static_cast<unsigned long long>(once.leaves),
                 static_cast<unsigned long long>(check.leaves),
                 static_cast<unsigned long long>(once.text_bytes),
                 static_cast<unsigned long long>(check.text_bytes));
    return 1;
  }
  std::printf(
      "message %s (%zu bytes, %zu segments): %llu fields, %llu non-empty leaf values, "
      "%llu decoded bytes per walk\n",
      path, text.size(), first->segment_count(), static_cast<unsigned long long>(once.fields),
      static_cast<unsigned long long>(once.leaves),
      static_cast<unsigned long long>(once.text_bytes));

  Tally sink;  // every timed call feeds it, and it is printed at the end
  auto parse_only = [&] {
    auto m = Message::parse(text);
    sink.checksum += m ? m->segment_count() : 0;
  };
  auto parse_walk = [&] {
    auto m = Message::parse(text);
    if (m) walk_leaves(*m, buf, sink);
  };
  auto parse_ranges = [&] {
    auto m = Message::parse(text);
    if (m) walk_ranges(*m, buf, sink);
  };
  auto parse_get3 = [&] {
    auto m = Message::parse(text);
    if (m) get3(*m, buf, sink);
  };

  const Trials p = measure(parse_only);
  const Trials w = measure(parse_walk);
  const Trials r = measure(parse_ranges);
  const Trials g = measure(parse_get3);
  constexpr int kAllocRuns = 20000;
  const PerMessage pa = allocations(parse_only, kAllocRuns);
  const PerMessage wa = allocations(parse_walk, kAllocRuns);
  const PerMessage ra = allocations(parse_ranges, kAllocRuns);
  const PerMessage ga = allocations(parse_get3, kAllocRuns);

  auto row = [&](const char* name, const Trials& t, const PerMessage& a) {
    std::printf(
        "%-12s %10.0f msg/s [%.0f-%.0f]  %5.0f ns/msg  %5.2f allocs/msg  %7.1f B/msg "
        "allocated  (%.2f frees/msg)\n",
        name, t.median, t.min, t.max, 1e9 / t.median, a.allocs, a.bytes, a.frees);
  };
  std::printf("median of 5 x 1 s after 400 ms warm-up; allocations averaged over %d calls\n",
              kAllocRuns);
  row("parse", p, pa);
  row("parse+walk", w, wa);
  row("parse+ranges", r, ra);
  row("parse+get3", g, ga);
  std::printf("checksum %016llx (%llu leaves)\n", static_cast<unsigned long long>(sink.checksum),
              static_cast<unsigned long long>(sink.leaves));
  std::printf(
      "RESULT parse_bench bytes=%zu segments=%zu fields=%llu leaves=%llu "
      "parse_msgs_per_s=%.0f parse_min=%.0f parse_max=%.0f "
      "walk_msgs_per_s=%.0f walk_min=%.0f walk_max=%.0f "
      "ranges_msgs_per_s=%.0f ranges_min=%.0f ranges_max=%.0f "
      "get3_msgs_per_s=%.0f get3_min=%.0f get3_max=%.0f "
      "parse_allocs_per_msg=%.2f parse_bytes_per_msg=%.1f "
      "walk_allocs_per_msg=%.2f walk_bytes_per_msg=%.1f "
      "ranges_allocs_per_msg=%.2f ranges_bytes_per_msg=%.1f "
      "get3_allocs_per_msg=%.2f get3_bytes_per_msg=%.1f\n",
      text.size(), first->segment_count(), static_cast<unsigned long long>(once.fields),
      static_cast<unsigned long long>(once.leaves), p.median, p.min, p.max, w.median, w.min, w.max,
      r.median, r.min, r.max, g.median, g.min, g.max, pa.allocs, pa.bytes, wa.allocs, wa.bytes,
      ra.allocs, ra.bytes, ga.allocs, ga.bytes);
  return 0;
}
