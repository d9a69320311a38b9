// The mapping step with the shipped mappings and a real SQLite store: a later message about a
// report an earlier message queued (a final result after a preliminary one) is mapped with
// $source.supersedes, so its results update what the earlier one created.
#include "app/mapping_worker.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "app/translate.h"
#include "support/temp_store.h"

using namespace adapter;

namespace {

std::string read_fixture(const std::string& relative) {
  std::ifstream in(std::string(ADAPTER_FIXTURES_DIR) + "/" + relative, std::ios::binary);
  REQUIRE(in);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The shipped mappings, with `result_updates` and `older_versions` as given.
std::shared_ptr<const app::Mapper> shipped_mapper(const std::string& result_updates,
                                                  const std::string& older_versions = "hold") {
  app::MappingConfig config;
  config.directory = std::string(ADAPTER_FIXTURES_DIR) + "/../mappings";
  mapping::JsonObject feed = config.feed.object_members();
  mapping::set_member(feed, "result_updates", mapping::Json::string(result_updates));
  mapping::set_member(feed, "older_versions", mapping::Json::string(older_versions));
  config.feed = mapping::Json::object(std::move(feed));
  auto set = app::load_mappings(config);
  REQUIRE(set);
  return std::make_shared<const app::Mapper>(*set, config);
}

// The benchmark's BRCA report (LF segment ends), as a preliminary (OBR-25 and OBX-11 "P") or
// final message, issued (OBR-22) at `issued` (HL7 DTM).
std::string brca_report(const std::string& control_id, char status,
                        const std::string& issued = "20240315140000-0500") {
  std::string raw = read_fixture("mappings/genetic-brca-subid-dot-form/input.hl7");
  const auto replace_all = [&](const std::string& from, const std::string& to) {
    for (std::size_t at = raw.find(from); at != std::string::npos; at = raw.find(from, at)) {
      raw.replace(at, from.size(), to);
      at += to.size();
    }
  };
  replace_all("|MSG-000123|", "|" + control_id + "|");
  replace_all("|F\n", std::string("|") + status + "\n");     // every OBX-11, and OBR-25
  replace_all("|20240315140000-0500|", "|" + issued + "|");  // OBR-22 only
  return raw;
}

// When the test messages were received: 2024-03-15T22:00:00Z, after the reports were issued
// (an issued time more than a day after the receipt is taken for a mistake).
constexpr std::int64_t kWorkerReceived = 1'710'540'000'000'000;

// Versions of the BRCA report, stored in list order and received a second apart (the first one
// second after kWorkerReceived).
struct BrcaVersion {
  std::string control_id;
  char status;
  std::string issued = "20240315140000-0500";
};
void store_brca_versions(test::TempStore& st, const std::vector<BrcaVersion>& versions) {
  std::vector<store::InboundMessage> messages;
  std::int64_t received = kWorkerReceived;
  for (const BrcaVersion& v : versions) {
    received += 1'000'000;
    messages.push_back(test::accepted_message(
        v.control_id, brca_report(v.control_id, v.status, v.issued), received));
  }
  REQUIRE(store::append_and_wait(*st, std::move(messages)));
}

// "METHOD url" of each entry, by resource type: {"Patient POST Patient", ...}.
std::vector<std::string> requests(const std::string& bundle_json) {
  auto bundle = mapping::parse_json(bundle_json, "bundle");
  REQUIRE(bundle);
  std::vector<std::string> out;
  for (const mapping::Json& e : bundle->find("entry")->as_array()) {
    const mapping::Json& request = *e.find("request");
    std::string url(request.find("url")->as_string());
    url = url.substr(0, url.find('|'));  // the type, and for a PUT its search up to the token
    out.push_back(std::string(e.find("resource")->find("resourceType")->as_string()) + " " +
                  std::string(request.find("method")->as_string()) + " " + url);
  }
  return out;
}

const std::vector<std::string> kCreates = {
    "Patient POST Patient",         "ServiceRequest POST ServiceRequest",
    "Specimen POST Specimen",       "Observation POST Observation",
    "Observation POST Observation", "Observation POST Observation",
    "Observation POST Observation", "DiagnosticReport POST DiagnosticReport",
    "Provenance POST Provenance"};
const std::vector<std::string> kUpdates = {
    "Patient POST Patient",  // the EHR's: never updated
    "ServiceRequest PUT ServiceRequest?identifier=urn:adapterd:identifier/genelab",
    "Specimen PUT Specimen?identifier=urn:adapterd:identifier/genelab",
    "Observation PUT Observation?identifier=urn:adapterd:identifier/genelab",
    "Observation PUT Observation?identifier=urn:adapterd:identifier/genelab",
    "Observation PUT Observation?identifier=urn:adapterd:identifier/genelab",
    "Observation PUT Observation?identifier=urn:adapterd:identifier/genelab",
    "DiagnosticReport PUT DiagnosticReport?identifier=urn:adapterd:identifier/genelab",
    "Provenance POST Provenance"};  // one per message

// Stored message `id` mapped by MappingWorker::map_stored at `now_us`, which must succeed.
store::MappingRecord map_stored_ok(const app::Mapper& mapper, store::InboxStore& st,
                                   std::int64_t id, std::int64_t now_us = 5'000'000) {
  auto m = st.get(id);
  REQUIRE(m);
  REQUIRE(*m);
  auto r = app::MappingWorker::map_stored(mapper, st, **m, now_us);
  REQUIRE(r);
  INFO(r->issues_json);
  REQUIRE(r->state == store::MappingState::mapped);
  return std::move(*r);
}

}  // namespace

TEST_CASE("a final result after a preliminary one is mapped to update what the first created",
          "[app][mapping]") {
  test::TempStore st;
  store_brca_versions(st, {{"PRELIM", 'P'}, {"FINAL", 'F'}, {"OTHER", 'F'}});
  const auto mapper = shipped_mapper("corrections");
  auto message = [&](std::int64_t id) {
    auto m = st->get(id);
    REQUIRE(m);
    REQUIRE(*m);
    return **m;
  };
  auto map = [&](std::int64_t id) { return map_stored_ok(*mapper, *st, id); };

  store::MappingRecord preliminary = map(1);
  CHECK(requests(preliminary.bundle_json) == kCreates);
  CHECK(preliminary.bundle_json.find("\"status\":\"preliminary\"") != std::string::npos);

  SECTION("queued for delivery: the final one updates") {
    preliminary.deliver_to = {"ehr"};
    REQUIRE(store::record_mapping_and_wait(*st, preliminary));
    const store::MappingRecord final_one = map(2);
    CHECK(requests(final_one.bundle_json) == kUpdates);
    CHECK(final_one.order_key == preliminary.order_key);
    CHECK(final_one.bundle_json.find("\"status\":\"preliminary\"") == std::string::npos);
    // Replayed, the preliminary one stays a create: it does not turn the final one back.
    CHECK(requests(map(1).bundle_json) == kCreates);

    SECTION("and so does the next, whatever the message before it was") {
      store::MappingRecord queued = final_one;
      queued.deliver_to = {"ehr"};
      REQUIRE(store::record_mapping_and_wait(*st, queued));
      store::MappingRecord next = map(3);
      CHECK(requests(next.bundle_json) == kUpdates);
      // Once a later message was queued, a replay of the one before it creates only: as an
      // update it would put the older results back over the newer ones.
      next.deliver_to = {"ehr"};
      REQUIRE(store::record_mapping_and_wait(*st, next));
      CHECK(requests(map(2).bundle_json) == kCreates);
      CHECK(requests(map(3).bundle_json) == kUpdates);  // the last one, replayed, still updates
    }
    SECTION("unless the feed says results are only created") {
      const auto creates_only = shipped_mapper("never");
      auto r = app::MappingWorker::map_stored(*creates_only, *st, message(2), 5'000'000);
      REQUIRE(r);
      CHECK(requests(r->bundle_json) == kCreates);
    }
  }
  SECTION("mapped but queued for no destination: nothing to supersede") {
    REQUIRE(store::record_mapping_and_wait(*st, preliminary));
    CHECK(requests(map(2).bundle_json) == kCreates);
  }
}

TEST_CASE("an older version of a report than one already sent is held back, not sent",
          "[app][mapping]") {
  // The lab's final result (issued 11:00) reaches us before its preliminary one (10:00): resent,
  // or delayed by an interface engine in between, or mapped only after a fix and a replay.
  test::TempStore st;
  store_brca_versions(st, {{"FINAL", 'F', "20240315110000-0500"},
                           {"PRELIM", 'P', "20240315100000-0500"},
                           {"AMENDED", 'F', "20240315120000-0500"},
                           {"UNTIMED", 'F', ""}});
  const auto mapper = shipped_mapper("corrections");
  auto map = [&](std::int64_t id) { return map_stored_ok(*mapper, *st, id); };
  // Queued for the EHR; returns how many open deliveries of older versions that discarded.
  auto queue = [&](store::MappingRecord r) {
    r.deliver_to = {"ehr"};
    auto recorded = store::record_mapping_and_wait(*st, r);
    REQUIRE(recorded);
    return recorded->superseded;
  };
  auto delivery_state = [&](std::int64_t id) {
    auto d = st->deliveries_of(id);
    REQUIRE(d);
    REQUIRE(d->size() == 1);
    return d->front().state;
  };

  const store::MappingRecord final_one = map(1);
  CHECK_FALSE(final_one.held_back);
  CHECK(final_one.versions_by_issued);
  REQUIRE(final_one.report_keys.size() == 1);
  CHECK(final_one.report_keys[0].issued_us == 1710518400000000);  // 16:00Z
  queue(final_one);

  const store::MappingRecord preliminary = map(2);
  CHECK(preliminary.held_back);
  CHECK(requests(preliminary.bundle_json) == kCreates);
  CHECK(preliminary.issues_json.find(
            R"("severity":"warning","message":"not sent: message 1 sent a newer version of )"
            R"(DiagnosticReport?identifier=)") != std::string::npos);
  CHECK(preliminary.issues_json.find("(issued 2024-03-15T16:00:00.000000+00:00); this one was "
                                     "issued 2024-03-15T15:00:00.000000+00:00") !=
        std::string::npos);
  auto history = st->report_history(final_one.report_keys[0].key);
  REQUIRE(history);
  REQUIRE(*history);
  CHECK((*history)->latest_issued_message_id == 1);

  // The final one replayed is the newest version still: sent, as a create (nothing before it).
  const store::MappingRecord final_again = map(1);
  CHECK_FALSE(final_again.held_back);
  CHECK(requests(final_again.bundle_json) == kCreates);

  SECTION("unless the feed says older versions are sent: then arrival decides, as before") {
    const auto sends = shipped_mapper("corrections", "send");
    auto m = st->get(2);
    REQUIRE(m);
    auto r = app::MappingWorker::map_stored(*sends, *st, **m, 5'000'000);
    REQUIRE(r);
    CHECK_FALSE(r->held_back);
    CHECK(requests(r->bundle_json) == kUpdates);
    CHECK(r->issues_json == "[]");
    // Nor does the store discard the open delivery of an older version when a newer one is
    // queued: the last received wins.
    CHECK_FALSE(r->versions_by_issued);
    auto amended_message = st->get(3);
    REQUIRE(amended_message);
    auto amended = app::MappingWorker::map_stored(*sends, *st, **amended_message, 5'000'000);
    REQUIRE(amended);
    CHECK_FALSE(amended->versions_by_issued);
    CHECK(queue(*amended) == 0);
    CHECK(delivery_state(1) == store::DeliveryState::pending);
  }
  SECTION("a newer version updates, and then the older final one is held back too") {
    const store::MappingRecord amended = map(3);
    CHECK_FALSE(amended.held_back);
    CHECK(amended.versions_by_issued);  // mapped as a follow-up, the rule still applies
    CHECK(requests(amended.bundle_json) == kUpdates);
    // The final one, still waiting to go out, would overwrite it: discarded with its queuing.
    REQUIRE(delivery_state(1) == store::DeliveryState::pending);
    CHECK(queue(amended) == 1);
    CHECK(delivery_state(1) == store::DeliveryState::discarded);
    CHECK(st->deliveries_of(1)->front().discard_reason.starts_with(
        "superseded: message 3 sent a newer version of DiagnosticReport?identifier="));
    CHECK(map(1).held_back);
    CHECK(map(2).held_back);
    CHECK_FALSE(map(3).held_back);
    history = st->report_history(final_one.report_keys[0].key);
    REQUIRE(history);
    CHECK((*history)->latest_issued_us == 1710522000000000);
    CHECK((*history)->latest_issued_message_id == 3);
    // A message whose report has no issued time (OBR-22 empty) falls back to arrival order.
    const store::MappingRecord untimed = map(4);
    CHECK(untimed.report_keys[0].issued_us == 0);
    CHECK_FALSE(untimed.held_back);
    CHECK(requests(untimed.bundle_json) == kUpdates);
  }
}

TEST_CASE("a message about several reports is held back when one of them is an older version",
          "[app][mapping]") {
  // Two orders (a hemogram and a differential), each its own DiagnosticReport; the sample has its
  // time in OBR-23, moved here to OBR-22 (issued) and set per order.
  const std::string lab = read_fixture("mappings/lab-msfc-lab-oru-1/input.hl7");
  auto issued_at = [&](const std::string& first, const std::string& second) {
    std::string raw = lab;
    const std::string was = "DR|||||||20141006092900+0700|";
    for (const std::string& issued : {first, second}) {
      const std::size_t at = raw.find(was);
      REQUIRE(at != std::string::npos);
      raw.replace(at, was.size(), "DR||||||" + issued + "||");
    }
    return raw;
  };
  test::TempStore st;
  REQUIRE(store::append_and_wait(
      *st, {test::accepted_message("BOTH", issued_at("20141006092900+0700", "20141006092900+0700"),
                                   kWorkerReceived),
            test::accepted_message("OLDER", issued_at("20141006082900+0700", "20141006082900+0700"),
                                   kWorkerReceived + 1),
            test::accepted_message("ONE", issued_at("20141006082900+0700", "20141006102900+0700"),
                                   kWorkerReceived + 2)}));
  const auto mapper = shipped_mapper("corrections");
  auto map = [&](std::int64_t id) { return map_stored_ok(*mapper, *st, id, kWorkerReceived + 3); };
  store::MappingRecord both = map(1);
  REQUIRE(both.report_keys.size() == 2);
  CHECK(both.report_keys[1].issued_us == 1412562540000000);  // 2014-10-06T02:29:00Z
  CHECK_FALSE(both.held_back);
  both.deliver_to = {"ehr"};
  REQUIRE(store::record_mapping_and_wait(*st, both));

  auto warnings = [](const std::string& issues) {
    std::vector<std::string> found;
    for (std::size_t at = issues.find("not sent: message 1 sent a newer version of ");
         at != std::string::npos;
         at = issues.find("not sent: message 1 sent a newer version of ", at + 1)) {
      found.push_back(issues.substr(at, issues.find('"', at) - at));
    }
    return found;
  };
  const store::MappingRecord older = map(2);
  CHECK(older.held_back);
  const std::vector<std::string> named = warnings(older.issues_json);
  REQUIRE(named.size() == 2);  // each report named, not only the first
  CHECK(named[0].find(both.report_keys[0].key) != std::string::npos);
  CHECK(named[1].find(both.report_keys[1].key) != std::string::npos);

  // One report older, the other newer: still held back (one transaction would put the older one
  // back), and only the older one is named.
  const store::MappingRecord one = map(3);
  CHECK(one.held_back);
  const std::vector<std::string> only = warnings(one.issues_json);
  REQUIRE(only.size() == 1);
  CHECK(only[0].find(both.report_keys[0].key) != std::string::npos);
}

TEST_CASE("a report issued after its message was received is ordered by arrival, with a warning",
          "[app][mapping]") {
  // OBR-22 with a typo (2204 for 2024) would be the report's newest version for good: every real
  // version after it would be held back.
  test::TempStore st;
  store_brca_versions(st, {{"TYPO", 'P', "22040315110000-0500"},
                           {"FINAL", 'F', "20240315120000-0500"},
                           {"TYPO2", 'F', "22050315110000-0500"},
                           // 2024-03-16T20:00Z: 22 hours after its receipt, a clock set wrong
                           // but not a typo.
                           {"AHEAD", 'F', "20240316150000-0500"}});
  const auto mapper = shipped_mapper("corrections");
  auto map = [&](std::int64_t id) { return map_stored_ok(*mapper, *st, id); };
  auto queue = [&](store::MappingRecord r) {
    r.deliver_to = {"ehr"};
    REQUIRE(store::record_mapping_and_wait(*st, r));
  };
  auto warnings = [](const std::string& issues) {
    const std::string warning = "is after the message was received";
    std::size_t n = 0;
    for (std::size_t at = issues.find(warning); at != std::string::npos;
         at = issues.find(warning, at + 1)) {
      ++n;
    }
    return n;
  };

  const store::MappingRecord typo = map(1);
  CHECK_FALSE(typo.held_back);
  REQUIRE(typo.report_keys.size() == 1);
  CHECK(typo.report_keys[0].issued_us == 0);
  CHECK(typo.issues_json.find(
            R"("severity":"warning","message":"DiagnosticReport.issued 2204-03-15T16:00:00.000000)"
            R"(+00:00 is after the message was received (2024-03-15T22:00:01.000000+00:00): )"
            R"(versions of DiagnosticReport?identifier=)") != std::string::npos);
  CHECK(typo.issues_json.find("are ordered by arrival") != std::string::npos);
  queue(typo);
  auto history = st->report_history(typo.report_keys[0].key);
  REQUIRE(history);
  REQUIRE(*history);
  CHECK((*history)->latest_issued_us == 0);

  // The real final one is sent, a later version by arrival: it updates.
  const store::MappingRecord final_one = map(2);
  CHECK_FALSE(final_one.held_back);
  CHECK(final_one.report_keys[0].issued_us == 1710522000000000);
  CHECK(warnings(final_one.issues_json) == 0);
  CHECK(requests(final_one.bundle_json) == kUpdates);
  queue(final_one);

  // Mapped a second time as a follow-up, it still has the warning once, and no issued time.
  const store::MappingRecord typo2 = map(3);
  CHECK_FALSE(typo2.held_back);
  CHECK(requests(typo2.bundle_json) == kUpdates);
  CHECK(typo2.report_keys[0].issued_us == 0);
  CHECK(warnings(typo2.issues_json) == 1);

  const store::MappingRecord ahead = map(4);
  CHECK(ahead.report_keys[0].issued_us == 1710619200000000);
  CHECK(warnings(ahead.issues_json) == 0);
}

TEST_CASE("a Bundle's reports: each DiagnosticReport's key, else the order key", "[app][mapping]") {
  auto bundle = mapping::parse_json(R"({"resourceType": "Bundle", "entry": [
      {"resource": {"resourceType": "ServiceRequest"},
       "request": {"method": "POST", "url": "ServiceRequest", "ifNoneExist": "identifier=s|1"}},
      {"resource": {"resourceType": "DiagnosticReport", "issued": "2024-03-15T14:00:00-05:00"},
       "request": {"method": "POST", "url": "DiagnosticReport", "ifNoneExist": "identifier=s|R1"}},
      {"resource": {"resourceType": "DiagnosticReport", "issued": "2024-03-15"},
       "request": {"method": "PUT", "url": "DiagnosticReport?identifier=s|R2"}},
      {"resource": {"resourceType": "DiagnosticReport", "identifier": [{"system": "s", "value": "R3"}]},
       "request": {"method": "POST", "url": "DiagnosticReport"}}]})",
                                    "bundle");
  REQUIRE(bundle);
  // With each one's issued time where it is an instant (a bare date is not).
  CHECK(app::MappingWorker::report_keys_of(*bundle, 7) ==
        std::vector<store::ReportKey>{{"DiagnosticReport?identifier=s|R1", 1710529200000000},
                                      {"DiagnosticReport?identifier=s|R2", 0},
                                      {"DiagnosticReport?identifier=s|R3", 0}});
  CHECK(app::MappingWorker::order_key_of(*bundle, 7) == "DiagnosticReport?identifier=s|R1");
  auto no_report = mapping::parse_json(R"({"resourceType": "Bundle", "entry": []})", "b");
  REQUIRE(no_report);
  CHECK(app::MappingWorker::report_keys_of(*no_report, 7) ==
        std::vector<store::ReportKey>{{"message|7", 0}});
}
