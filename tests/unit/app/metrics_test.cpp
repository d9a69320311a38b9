// render_metrics: the whole /metrics text from counters filled by hand and a real SQLite store,
// read back the way Prometheus reads it (text format 0.0.4): every sample line parses, each
// family's # HELP / # TYPE comes once, and its lines are together.
#include "app/metrics.h"

#include <stdlib.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "app/intake.h"
#include "common/sha256.h"
#include "support/temp_dir.h"
#include "support/temp_store.h"

using namespace adapter;

namespace {

struct Family {
  std::string type;
  int help_lines = 0;
  int type_lines = 0;
  std::vector<std::string> samples;  // "name{labels}" in order
};

// The text as Prometheus reads it, with what breaks the text format 0.0.4: a line that is
// neither a # HELP, a # TYPE nor a sample `name{labels} value`; a family's # HELP or # TYPE
// missing or repeated; a sample outside its family's block (each family's lines together); a
// sample twice; a counter not named *_total.
struct Parsed {
  std::map<std::string, Family> families;
  std::vector<std::string> family_order;      // in order of first appearance
  std::map<std::string, std::string> values;  // "name{labels}" -> value text
  std::vector<std::string> problems;

  const std::string& value(const std::string& sample) const {
    INFO("sample " << sample);
    const auto it = values.find(sample);
    REQUIRE(it != values.end());
    return it->second;
  }
};

// The family a sample belongs to: its own name, or for a histogram the name without _bucket,
// _sum or _count.
bool belongs_to(const std::string& sample_name, const std::string& family, const Family& f) {
  if (sample_name == family) return f.type != "histogram";
  if (f.type != "histogram") return false;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    if (sample_name == family + suffix) return true;
  }
  return false;
}

Parsed parse(const std::string& text) {
  static const std::regex kHelp(R"re(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$)re");
  static const std::regex kType(
      R"re(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$)re");
  // name, optional {label="value",...} (no quote, backslash or newline inside), one value.
  static const std::regex kSample(
      R"re(^([a-zA-Z_:][a-zA-Z0-9_:]*))re"
      R"re((\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})?)re"
      R"re( (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|\+Inf|-Inf)$)re");
  Parsed p;
  if (!text.empty() && text.back() != '\n') p.problems.push_back("no newline at the end");
  std::istringstream in(text);
  std::string line;
  std::string current;           // the family whose block we are in
  std::set<std::string> closed;  // families whose block has ended
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      const std::string name = m[1];
      if (closed.count(name) != 0) p.problems.push_back("a second block: " + line);
      if (name != current && !current.empty()) closed.insert(current);
      if (p.families.count(name) == 0) p.family_order.push_back(name);
      ++p.families[name].help_lines;
      current = name;
    } else if (std::regex_match(line, m, kType)) {
      const std::string name = m[1];
      Family& f = p.families[name];
      if (name != current || !f.samples.empty()) {
        p.problems.push_back("# TYPE not right after its # HELP: " + line);
      }
      ++f.type_lines;
      f.type = m[2];
    } else if (std::regex_match(line, m, kSample)) {
      const std::string key = std::string(m[1]) + std::string(m[2]);
      if (current.empty() || !belongs_to(m[1], current, p.families[current])) {
        p.problems.push_back("outside its family's block: " + line);
      }
      if (p.values.count(key) != 0) p.problems.push_back("a second time: " + line);
      p.values[key] = m[4];
      if (!current.empty()) p.families[current].samples.push_back(key);
    } else {
      p.problems.push_back("not a Prometheus text line: " + line);
    }
  }
  for (const auto& [name, f] : p.families) {
    if (f.help_lines != 1)
      p.problems.push_back(name + ": # HELP lines: " + std::to_string(f.help_lines));
    if (f.type_lines != 1)
      p.problems.push_back(name + ": # TYPE lines: " + std::to_string(f.type_lines));
    if (f.type == "counter" &&
        (name.size() <= 6 || name.compare(name.size() - 6, 6, "_total") != 0)) {
      p.problems.push_back(name + ": a counter not named *_total");
    }
  }
  return p;
}

// parse(), requiring a text Prometheus accepts.
Parsed parse_valid(const std::string& text) {
  Parsed p = parse(text);
  CHECK(p.problems == std::vector<std::string>{});
  return p;
}

// Never called: the worker is not started; it is here for its snapshot and counters.
class IdleClient : public delivery::FhirClient {
 public:
  void post_bundle(std::string, Done done) override {
    done(make_error(Errc::internal, "not expected in this test"));
  }
  std::string describe() const override { return "idle"; }
};

std::int64_t append(store::SqliteStore& s, const std::string& control_id,
                    std::int64_t received_at_us) {
  store::InboundMessage m;
  m.raw = "MSH|^~\\&|LAB|HOSP|||20260101||ORU^R01|" + control_id + "|P|2.5.1\r";
  m.received_at_us = received_at_us;
  m.listener = "lab";
  m.sender_application = "LAB";
  m.sender_facility = "HOSP";
  m.control_id = control_id;
  m.content_sha256 = sha256_hex(m.raw);
  auto appended = store::append_and_wait(s, {m});
  REQUIRE(appended);
  return appended->front().id;
}

using adapter::test::TempDir;

void write_bytes(const std::string& path, std::size_t n) {
  std::ofstream(path, std::ios::binary) << std::string(n, 'x');
}

}  // namespace

TEST_CASE("metrics: several listeners print each family once, its lines together",
          "[app][metrics]") {
  test::TempStore store("metrics-test");
  constexpr std::int64_t kNow = 1'800'000'000'000'000;

  // Two MLLP listeners and an HL7 v2 feed over HTTP, counting different things.
  app::MllpStats lab, blood, feed;
  lab.frames_received = 7;
  lab.messages_accepted = 5;
  lab.messages_rejected = 2;
  lab.connections_active = 3;
  lab.ack_latency.observe_us(300);  // 0.0003 s: in the first bucket
  blood.frames_received = 11;
  blood.messages_accepted = 11;
  blood.acks_suppressed = 4;
  blood.ack_latency.observe_us(2'000'000);  // 2 s
  blood.ack_latency.observe_us(2'000'000);
  feed.messages_duplicate = 1;
  app::HttpStats http, folders;
  http.documents_accepted = 9;
  folders.documents_rejected = 1;

  // The outbox: one message mapped and queued for "ehr"; the backlog: two received after it,
  // 5 s and 2 s ago, and a rejected one (never mapped, so never waiting).
  const std::int64_t mapped_id = append(*store, "M1", kNow - 60'000'000);
  store::MappingRecord r;
  r.message_id = mapped_id;
  r.state = store::MappingState::mapped;
  r.issues_json = "[]";
  r.bundle_json = "{}";
  r.mapped_at_us = kNow - 59'000'000;
  r.deliver_to = {"ehr"};
  r.order_key = "k";
  REQUIRE(store::record_mapping_and_wait(*store, r).ok());
  append(*store, "W1", kNow - 5'000'000);
  append(*store, "W2", kNow - 2'000'000);
  store::InboundMessage rejected;
  rejected.raw = "garbage";
  rejected.received_at_us = kNow - 100'000'000;
  rejected.state = store::MessageState::rejected;
  REQUIRE(store::append_and_wait(*store, {rejected}));

  app::DestinationConfig ehr_config;
  ehr_config.name = "ehr";
  app::DeliveryWorker ehr(*store, std::make_shared<IdleClient>(), ehr_config);
  app::MappingWorker mapping(*store, std::shared_ptr<const app::Mapper>());
  app::RetentionWorker retention(*store, app::RetentionConfig{});

  app::MetricsSources sources;
  sources.hl7 = {{"lab", &lab}, {"blood", &blood}, {"feed", &feed}};
  sources.http = {{"http", &http}, {"folders", &folders}};
  sources.destinations = {&ehr};
  sources.mapping = &mapping;
  sources.inbox = &*store;
  sources.outbox = &*store;
  sources.retention = &retention;
  sources.now_us = kNow;
  const std::string text = app::render_metrics(sources);
  const Parsed p = parse_valid(text);
  REQUIRE(p.problems.empty());

  SECTION("each MLLP family lists every listener, in order, in one block") {
    for (const char* family_name :
         {"adapterd_mllp_frames_received_total", "adapterd_mllp_messages_accepted_total",
          "adapterd_mllp_acks_suppressed_total", "adapterd_mllp_connections_active"}) {
      const std::string family = family_name;
      INFO(family);
      REQUIRE(p.families.count(family) == 1);
      CHECK(p.families.at(family).samples ==
            std::vector<std::string>{family + "{listener=\"lab\"}", family + "{listener=\"blood\"}",
                                     family + "{listener=\"feed\"}"});
    }
    CHECK(p.families.at("adapterd_mllp_frames_received_total").type == "counter");
    CHECK(p.families.at("adapterd_mllp_connections_active").type == "gauge");
    CHECK(p.value("adapterd_mllp_frames_received_total{listener=\"lab\"}") == "7");
    CHECK(p.value("adapterd_mllp_frames_received_total{listener=\"blood\"}") == "11");
    CHECK(p.value("adapterd_mllp_frames_received_total{listener=\"feed\"}") == "0");
    CHECK(p.value("adapterd_mllp_messages_rejected_total{listener=\"lab\"}") == "2");
    CHECK(p.value("adapterd_mllp_acks_suppressed_total{listener=\"blood\"}") == "4");
    CHECK(p.value("adapterd_mllp_messages_duplicate_total{listener=\"feed\"}") == "1");
    CHECK(p.value("adapterd_mllp_connections_active{listener=\"lab\"}") == "3");
    // Every counter of the X-macro, once per listener.
    std::size_t mllp_families = 0;
    for (const auto& [name, f] : p.families) {
      if (name.rfind("adapterd_mllp_", 0) == 0 && f.type != "histogram") {
        ++mllp_families;
        CHECK(f.samples.size() == 3);
      }
    }
    CHECK(mllp_families == 18);  // 17 counters and connections_active
  }

  SECTION("the HTTP, delivery, mapping, retention families keep their names and labels") {
    CHECK(p.value("adapterd_http_documents_accepted_total{listener=\"http\"}") == "9");
    CHECK(p.value("adapterd_http_documents_rejected_total{listener=\"folders\"}") == "1");
    CHECK(p.value("adapterd_delivery_delivered_total{destination=\"ehr\"}") == "0");
    CHECK(p.value("adapterd_delivery_circuit_state{destination=\"ehr\"}") == "0");
    CHECK(p.value("adapterd_outbox_pending{destination=\"ehr\"}") == "1");
    CHECK(p.value("adapterd_outbox_dead_letters{destination=\"ehr\"}") == "0");
    // Queued when mapped, 59 s before now.
    CHECK(p.value("adapterd_outbox_oldest_pending_age_seconds{destination=\"ehr\"}") ==
          "59.000000");
    CHECK(p.families.at("adapterd_mapping_mapped_total").type == "counter");
    CHECK(p.families.at("adapterd_mapping_failed_total").type == "counter");
    CHECK(p.value("adapterd_retention_purged_total") == "0");
    CHECK(p.families.count("adapterd_store_bytes") == 0);  // no store path given
  }

  SECTION("the mapping backlog: received, not yet mapped, aged from the oldest receipt") {
    CHECK(p.families.at("adapterd_mapping_pending").type == "gauge");
    CHECK(p.families.at("adapterd_mapping_oldest_pending_age_seconds").type == "gauge");
    CHECK(p.value("adapterd_mapping_pending") == "2");
    CHECK(p.value("adapterd_mapping_oldest_pending_age_seconds") == "5.000000");
  }

  SECTION("the ACK latency histogram: one block, each listener's buckets cumulative") {
    const Family& f = p.families.at("adapterd_mllp_ack_latency_seconds");
    CHECK(f.type == "histogram");
    const std::string name = "adapterd_mllp_ack_latency_seconds";
    CHECK(p.value(name + "_bucket{listener=\"lab\",le=\"0.0005\"}") == "1");
    CHECK(p.value(name + "_bucket{listener=\"lab\",le=\"+Inf\"}") == "1");
    CHECK(p.value(name + "_count{listener=\"lab\"}") == "1");
    CHECK(p.value(name + "_bucket{listener=\"blood\",le=\"1\"}") == "0");
    CHECK(p.value(name + "_bucket{listener=\"blood\",le=\"2.5\"}") == "2");
    CHECK(p.value(name + "_sum{listener=\"blood\"}") == "4");
    CHECK(p.value(name + "_count{listener=\"feed\"}") == "0");
    // 17 buckets, a sum and a count per listener.
    CHECK(f.samples.size() == 3 * (app::LatencyHistogram::kBounds.size() + 1 + 2));
    CHECK(p.families.at("adapterd_delivery_latency_seconds").samples.size() ==
          app::LatencyHistogram::kBounds.size() + 1 + 2);
  }

  SECTION("families in a fixed order: listeners, delivery, mapping, latencies, store") {
    auto position = [&](const std::string& family) {
      const auto it = std::find(p.family_order.begin(), p.family_order.end(), family);
      REQUIRE(it != p.family_order.end());
      return it - p.family_order.begin();
    };
    CHECK(position("adapterd_mllp_connections_active") <
          position("adapterd_http_connections_accepted_total"));
    CHECK(position("adapterd_http_connections_active") <
          position("adapterd_delivery_attempts_total"));
    CHECK(position("adapterd_outbox_oldest_pending_age_seconds") <
          position("adapterd_mapping_mapped_total"));
    CHECK(position("adapterd_mapping_failed_total") < position("adapterd_mapping_pending"));
    CHECK(position("adapterd_mapping_oldest_pending_age_seconds") <
          position("adapterd_mllp_ack_latency_seconds"));
    CHECK(position("adapterd_delivery_latency_seconds") <
          position("adapterd_retention_purged_total"));
  }
}

TEST_CASE("metrics: what is not there is left out, and the store's size counts its WAL",
          "[app][metrics]") {
  SECTION("nothing configured: no text at all") {
    CHECK(app::render_metrics(app::MetricsSources{}).empty());
  }

  SECTION("one listener, no store: its families and nothing else") {
    app::MllpStats only;
    only.acks_sent = 2;
    app::MetricsSources sources;
    sources.hl7 = {{"mllp", &only}};
    const Parsed p = parse_valid(app::render_metrics(sources));
    CHECK(p.value("adapterd_mllp_acks_sent_total{listener=\"mllp\"}") == "2");
    CHECK(p.families.count("adapterd_mapping_pending") == 0);
    CHECK(p.families.count("adapterd_http_requests_total") == 0);
    CHECK(p.families.count("adapterd_delivery_latency_seconds") == 0);
  }

  SECTION("the store's size: the database and its WAL") {
    TempDir dir;
    const std::string db = dir.file("adapterd.db");
    write_bytes(db, 1234);
    write_bytes(db + "-wal", 66);
    app::MetricsSources sources;
    sources.store_path = db;
    const Parsed p = parse_valid(app::render_metrics(sources));
    CHECK(p.value("adapterd_store_bytes") == "1300");
  }
}

TEST_CASE("metrics: mapped, failed, held back and superseded per template", "[app][metrics]") {
  std::string out;
  app::MappingWorker::TemplateCounts oru;
  oru.mapped = 7;
  oru.failed = 2;
  oru.held_back = 1;
  oru.superseded = 4;
  app::append_mapping_prometheus(out, {{"oru-r01", oru}, {"", {0, 3, 0}}});
  const Parsed p = parse_valid(out);
  CHECK(p.value("adapterd_mapping_mapped_total{template=\"oru-r01\"}") == "7");
  CHECK(p.value("adapterd_mapping_failed_total{template=\"oru-r01\"}") == "2");
  CHECK(p.value("adapterd_mapping_held_back_total{template=\"oru-r01\"}") == "1");
  CHECK(p.value("adapterd_mapping_failed_total{template=\"\"}") == "3");
  CHECK(p.value("adapterd_mapping_held_back_total{template=\"\"}") == "0");
  CHECK(p.families.at("adapterd_mapping_held_back_total").type == "counter");
  CHECK(p.value("adapterd_mapping_superseded_deliveries_total{template=\"oru-r01\"}") == "4");
  CHECK(p.families.at("adapterd_mapping_superseded_deliveries_total").type == "counter");
}

TEST_CASE("metrics: the mapping backlog reads NaN when the store cannot be read, 0 s when empty",
          "[app][metrics]") {
  std::string out;
  SECTION("unreadable") {
    app::append_mapping_backlog_prometheus(out, std::nullopt, 5);
    const Parsed p = parse_valid(out);
    CHECK(p.value("adapterd_mapping_pending") == "NaN");
    CHECK(p.value("adapterd_mapping_oldest_pending_age_seconds") == "NaN");
  }
  SECTION("nothing waits") {
    app::append_mapping_backlog_prometheus(out, store::MappingBacklog{}, 5'000'000);
    const Parsed p = parse_valid(out);
    CHECK(p.value("adapterd_mapping_pending") == "0");
    CHECK(p.value("adapterd_mapping_oldest_pending_age_seconds") == "0");
  }
  SECTION("a receipt in the future (the clock stepped back) is not a negative age") {
    store::MappingBacklog backlog;
    backlog.pending = 1;
    backlog.oldest_since_us = 9'000'000;
    app::append_mapping_backlog_prometheus(out, backlog, 5'000'000);
    CHECK(parse_valid(out).value("adapterd_mapping_oldest_pending_age_seconds") == "0.000000");
  }
}

TEST_CASE("metrics: the text check catches what Prometheus would refuse", "[app][metrics]") {
  // What one append_prometheus() call per listener printed before: the second listener's lines
  // after the first listener's whole block, away from their families.
  const std::string listener_after_listener =
      "# HELP adapterd_mllp_frames_received_total complete MLLP frames received\n"
      "# TYPE adapterd_mllp_frames_received_total counter\n"
      "adapterd_mllp_frames_received_total{listener=\"a\"} 1\n"
      "# HELP adapterd_mllp_connections_active connections open now\n"
      "# TYPE adapterd_mllp_connections_active gauge\n"
      "adapterd_mllp_connections_active{listener=\"a\"} 0\n"
      "adapterd_mllp_frames_received_total{listener=\"b\"} 2\n"
      "adapterd_mllp_connections_active{listener=\"b\"} 0\n";
  CHECK(parse(listener_after_listener).problems ==
        std::vector<std::string>{
            "outside its family's block: adapterd_mllp_frames_received_total{listener=\"b\"} 2"});

  const std::string help_twice =
      "# HELP adapterd_x_total x\n# TYPE adapterd_x_total counter\nadapterd_x_total 1\n"
      "# HELP adapterd_y y\n# TYPE adapterd_y gauge\nadapterd_y 1\n"
      "# HELP adapterd_x_total x\n# TYPE adapterd_x_total counter\n";
  CHECK(!parse(help_twice).problems.empty());

  for (const char* bad : {"adapterd_x{listener=lab} 1\n", "adapterd_x{listener=\"lab\"}\n",
                          "adapterd_x{listener=\"lab\"} one\n", "adapterd-x 1\n"}) {
    INFO(bad);
    CHECK(!parse(bad).problems.empty());
  }
  const std::string not_total = "# HELP adapterd_x x\n# TYPE adapterd_x counter\nadapterd_x 1\n";
  CHECK(parse(not_total).problems ==
        std::vector<std::string>{"adapterd_x: a counter not named *_total"});
}
