// Replay previews against a real SQLite store and real template sets: what a replay with other
// mappings would change, and that asking changes nothing.
#include "app/replay_preview.h"

#include <catch2/catch.hpp>

#include <string>

#include "../mapping/memory_files.h"
#include "app/admin_api.h"
#include "app/mapping_worker.h"
#include "support/temp_store.h"

using namespace adapter;

namespace {

const char kMessage[] =
    "MSH|^~\\&|LAB|FAC|EHR|HOSP|20240315143000-0500||ORU^R01|MSG-1|P|2.5.1\r"
    "PID|1||MRN1\r"
    "OBR|1||ACC-1\r"
    "OBX|1|NM|81258-6^VAF^LN||0.48|1^^UCUM\r";

// A template set: `value` is the template's expression for the Observation's value; the
// Bundle names the set (as the shipped Provenance does) so that a change of set shows there.
std::shared_ptr<const app::Mapper> mapper(const std::string& value, const std::string& comment) {
  mapping::test::MemoryFiles files;
  files.add("routes.json", R"({"routes": [
      {"name": "oru", "match": {"message_type": "ORU^R01"}, "template": "oru.json"}]})");
  std::string body = "// " + comment + "\n";
  body += R"({"$template": "oru", "$version": "1",
      "$ignore": ["MSH", "PID", "OBR", "OBX-1", "OBX-2"],
      "resourceType": "Bundle", "type": "transaction",
      "meta": {"tag": [{"code": "{{ $template.set }}"}]},
      "entry": [{"$each": "OBX", "$as": "o",
        "fullUrl": "{{ uuid('Observation', OBX-3.1) }}",
        "resource": {"resourceType": "Observation", "status": "final",
          "identifier": [{"system": "urn:test", "value": "{{ OBX-3.1 }}"}],
          "category": [{"coding": [{"system":
            "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
          "code": {"text": "{{ OBX-3.1 }}"}, "valueString": "VALUE"},
        "request": {"method": "POST", "url": "Observation",
                    "ifNoneExist": "{{ 'identifier=' + token('urn:test', OBX-3.1) }}"}}]})";
  body.replace(body.find("VALUE"), 5, value);
  files.add("oru.json", body);
  auto set = mapping::load_template_set(files);
  REQUIRE(set);
  return std::make_shared<const app::Mapper>(*set, app::MappingConfig{});
}

// A report of accession ACC-1 issued (OBR-22) at `issued`, and a template that sends it as a
// DiagnosticReport: what MappingWorker::map_stored tells versions apart by.
std::string report_issued_at(const std::string& issued) {
  return "MSH|^~\\&|LAB|FAC|EHR|HOSP|20240315143000-0500||ORU^R01|MSG-1|P|2.5.1\r"
         "PID|1||MRN1\r"
         "OBR|1||ACC-1" +
         std::string(19, '|') + issued + "\r";
}

std::shared_ptr<const app::Mapper> report_mapper() {
  mapping::test::MemoryFiles files;
  files.add("routes.json", R"({"routes": [
      {"name": "oru", "match": {"message_type": "ORU^R01"}, "template": "oru.json"}]})");
  files.add("oru.json", R"({"$template": "report", "$version": "1",
      "$ignore": ["MSH", "PID", "OBR-1"],
      "resourceType": "Bundle", "type": "transaction",
      "entry": [{"fullUrl": "{{ uuid('DiagnosticReport', OBR-3.1) }}",
        "resource": {"resourceType": "DiagnosticReport", "status": "final",
          "identifier": [{"system": "urn:test", "value": "{{ OBR-3.1 }}"}],
          "code": {"text": "report"}, "issued": "{{ datetime(OBR-22) }}"},
        "request": {"method": "POST", "url": "DiagnosticReport",
                    "ifNoneExist": "{{ 'identifier=' + token('urn:test', OBR-3.1) }}"}}]})");
  auto set = mapping::load_template_set(files);
  REQUIRE(set);
  return std::make_shared<const app::Mapper>(*set, app::MappingConfig{});
}

store::InboundMessage inbound(const std::string& control_id) {
  return test::accepted_message(control_id, kMessage, 1'800'000'000'000'000);
}

const mapping::Json& member(const mapping::Json& j, std::string_view name) {
  const mapping::Json* m = j.find(name);
  REQUIRE(m != nullptr);
  return *m;
}

mapping::Json preview(store::InboxStore& st, const app::Mapper& m, const store::StoredMessage& msg,
                      const std::optional<store::MappingRecord>& recorded) {
  auto p = app::preview_replay(m, st, msg, recorded, 2000);
  REQUIRE(p);
  return p->answer;
}

std::vector<std::string> strings(const mapping::Json& list) {
  std::vector<std::string> out;
  for (const mapping::Json& s : list.as_array()) out.emplace_back(s.as_string());
  return out;
}

}  // namespace

TEST_CASE("a replay preview tells what other mappings would change, and writes nothing",
          "[app][replay]") {
  test::TempStore st;
  REQUIRE(store::append_and_wait(*st, {inbound("MSG-1"), inbound("MSG-2")}));
  const auto v1 = mapper("{{ OBX-5 }} {{ OBX-6.1 }}", "first");
  auto stored = st->get(1);
  REQUIRE(stored);
  REQUIRE(*stored);
  const store::MappingRecord first = app::MappingWorker::map_one(*v1, **stored, 1000);
  INFO(first.issues_json);
  REQUIRE(first.state == store::MappingState::mapped);
  REQUIRE(store::record_mapping_and_wait(*st, first));
  auto recorded = st->mapping_of(1);
  REQUIRE(recorded);

  SECTION("the same mappings: nothing changes") {
    const mapping::Json p = preview(*st, *v1, **stored, *recorded);
    CHECK_FALSE(member(p, "changed").as_bool());
    CHECK(member(p, "bundle").as_array().empty());
  }
  SECTION("another set that maps alike: its name in the Bundle is not a change") {
    const auto same = mapper("{{ OBX-5 }} {{ OBX-6.1 }}", "only this comment differs");
    REQUIRE(same->templates().version != v1->templates().version);
    const mapping::Json p = preview(*st, *same, **stored, *recorded);
    CHECK_FALSE(member(p, "changed").as_bool());
    CHECK(member(member(p, "replayed"), "template_set").as_string() == same->templates().version);
    CHECK(member(member(p, "recorded"), "template_set").as_string() == v1->templates().version);
  }
  SECTION("a changed value and a field no longer read") {
    const auto v2 = mapper("{{ OBX-5 }}", "second");
    const mapping::Json p = preview(*st, *v2, **stored, *recorded);
    CHECK(member(p, "changed").as_bool());
    CHECK(strings(member(p, "bundle")) ==
          std::vector<std::string>{"entry[0].resource.valueString: expected \"0.48 1\", got "
                                   "\"0.48\""});
    CHECK(strings(member(member(p, "unmapped"), "added")) ==
          std::vector<std::string>{"OBX-6.1 = 1"});
    CHECK(member(member(p, "unmapped"), "gone").as_array().empty());
  }
  SECTION("a template that now fails: the state and the issue") {
    const auto broken = mapper("{{ issue('error', 'no unit table', OBX-6) }}", "broken");
    const mapping::Json p = preview(*st, *broken, **stored, *recorded);
    CHECK(member(p, "changed").as_bool());
    CHECK(member(member(p, "replayed"), "state").as_string() == "mapping_failed");
    const auto added = member(member(p, "issues"), "added").as_array();
    REQUIRE(added.size() == 1);
    CHECK(member(added[0], "message").as_string() == "no unit table");
    CHECK(member(added[0], "source").as_string() == "OBX-6");
  }
  SECTION("a message never mapped: all of it is new") {
    auto never = st->get(2);
    REQUIRE(never);
    REQUIRE(*never);
    const mapping::Json p = preview(*st, *v1, **never, std::nullopt);
    CHECK(member(p, "changed").as_bool());
    CHECK(member(p, "recorded").is_null());
    CHECK(strings(member(p, "bundle")) ==
          std::vector<std::string>{"bundle: none was recorded; the replay makes one"});
  }

  // Through the admin API, one message and a search; the mapping on record is as it was.
  auto v2 = mapper("{{ OBX-5 }}", "second");
  app::AdminApi api(*st, *st, [&v2] { return v2; });
  const auto one = api.handle("GET", "/messages/1/replay-preview");
  REQUIRE(one);
  CHECK(one->status == 200);
  CHECK(one->body.find("\"changed\": true") != std::string::npos);
  const auto all = api.handle("GET", "/replay-preview?mapping=mapped");
  REQUIRE(all);
  CHECK(all->status == 200);
  CHECK(all->body.find("\"compared\": 1,") != std::string::npos);  // message 2 has no mapping
  CHECK(all->body.find("\"changed\": 1,") != std::string::npos);
  CHECK(all->body.find("\"failing\": 0,") != std::string::npos);
  CHECK(api.handle("POST", "/messages/1/replay-preview")->status == 405);
  CHECK(api.handle("GET", "/messages/9/replay-preview")->status == 404);
  CHECK(api.handle("GET", "/replay-preview?mapping=lost")->status == 400);
  app::AdminApi without(*st, *st);
  CHECK(without.handle("GET", "/messages/1/replay-preview")->status == 409);

  auto after = st->mapping_of(1);
  REQUIRE(after);
  REQUIRE(*after);
  CHECK((*after)->bundle_json == first.bundle_json);
  CHECK((*after)->template_set == v1->templates().version);
  CHECK((*after)->attempts == 1);
  CHECK((*after)->state == store::MappingState::mapped);
}

TEST_CASE("a mapping pending again (replayed, not yet mapped) is compared with its last outcome",
          "[app][replay]") {
  test::TempStore st;
  REQUIRE(store::append_and_wait(*st, {inbound("MSG-1")}));
  const auto v1 = mapper("{{ OBX-5 }} {{ OBX-6.1 }}", "first");
  auto stored = st->get(1);
  REQUIRE(stored);
  REQUIRE(*stored);
  REQUIRE(store::record_mapping_and_wait(*st, app::MappingWorker::map_one(*v1, **stored, 1000)));
  REQUIRE(st->requeue_mappings(1));
  auto pending = st->mapping_of(1);
  REQUIRE(pending);
  REQUIRE(*pending);
  REQUIRE((*pending)->state == store::MappingState::pending);
  CHECK_FALSE(member(preview(*st, *v1, **stored, *pending), "changed").as_bool());
  const auto v2 = mapper("{{ OBX-5 }}", "second");
  CHECK(member(preview(*st, *v2, **stored, *pending), "changed").as_bool());
}

TEST_CASE("messages are found, and replayed, by the state of their mapping", "[app][admin]") {
  test::TempStore st;
  REQUIRE(store::append_and_wait(*st, {inbound("A"), inbound("B"), inbound("C")}));
  const auto ok = mapper("{{ OBX-5 }}", "ok");
  const auto broken = mapper("{{ issue('error', 'no', OBX-6) }}", "broken");
  for (std::int64_t id : {1, 2}) {
    auto m = st->get(id);
    REQUIRE(m);
    REQUIRE(*m);
    REQUIRE(store::record_mapping_and_wait(
        *st, app::MappingWorker::map_one(id == 1 ? *ok : *broken, **m, 1000)));
  }
  app::AdminApi api(*st, *st);
  auto ids = [&](std::string_view target) {
    const auto r = api.handle("GET", target);
    REQUIRE(r);
    REQUIRE(r->status == 200);
    std::string found;
    for (std::size_t at = r->body.find("\"id\": "); at != std::string::npos;
         at = r->body.find("\"id\": ", at + 1)) {
      found += r->body.substr(at + 6, 1);
    }
    return found;
  };
  CHECK(ids("/messages") == "123");
  CHECK(ids("/messages?mapping=mapped") == "1");
  CHECK(ids("/messages?mapping=mapping_failed") == "2");
  CHECK(ids("/messages?mapping=pending").empty());  // C was never mapped: no mapping at all
  CHECK(api.handle("GET", "/messages?mapping=done")->status == 400);

  // The same filters choose what POST /replay maps again; without one it refuses.
  CHECK(api.handle("POST", "/replay")->status == 400);
  CHECK(api.handle("GET", "/replay?mapping=mapping_failed")->status == 405);
  const auto replayed = api.handle("POST", "/replay?mapping=mapping_failed");
  REQUIRE(replayed);
  CHECK(replayed->status == 200);
  CHECK(replayed->body.find("\"found\": 1,") != std::string::npos);
  CHECK(replayed->body.find("\"replayed\": 1") != std::string::npos);
  CHECK(ids("/messages?mapping=pending") == "2");
  CHECK(ids("/messages?mapping=mapped") == "1");  // untouched
  // Messages without a mapping yet are found and left to the worker.
  const auto unmapped = api.handle("POST", "/replay?control_id=C");
  REQUIRE(unmapped);
  CHECK(unmapped->body.find("\"replayed\": 0") != std::string::npos);
}

TEST_CASE("a replay preview says when a newer version of its report would hold the message back",
          "[app][replay]") {
  // Received after both were issued (an issued time after receipt would count as unknown).
  constexpr std::int64_t kReceived = 1710522000000000;  // 2024-03-15T17:00:00Z
  test::TempStore st;
  REQUIRE(store::append_and_wait(
      *st, {test::accepted_message("OLD", report_issued_at("20240315100000-0500"), kReceived),
            test::accepted_message("NEW", report_issued_at("20240315110000-0500"),
                                   kReceived + 1'000'000)}));
  auto m = report_mapper();
  for (std::int64_t id : {1, 2}) {  // mapped and queued in the order they came
    auto stored = st->get(id);
    REQUIRE(stored);
    REQUIRE(*stored);
    auto r = app::MappingWorker::map_stored(*m, *st, **stored, kReceived + 2'000'000);
    REQUIRE(r);
    INFO(r->issues_json);
    REQUIRE(r->state == store::MappingState::mapped);
    REQUIRE_FALSE(r->held_back);
    r->deliver_to = {"ehr"};
    REQUIRE(store::record_mapping_and_wait(*st, *r));
  }
  auto old_one = st->get(1);
  auto old_recorded = st->mapping_of(1);
  REQUIRE(old_one);
  REQUIRE(old_recorded);
  const mapping::Json p = preview(*st, *m, **old_one, *old_recorded);
  CHECK(member(p, "changed").as_bool());
  CHECK(member(p, "held_back").as_bool());
  const auto added = member(member(p, "issues"), "added").as_array();
  REQUIRE(added.size() == 1);
  CHECK(std::string(member(added[0], "message").as_string())
            .starts_with("not sent: message 2 sent a newer version of DiagnosticReport?"));

  auto new_one = st->get(2);
  auto new_recorded = st->mapping_of(2);
  REQUIRE(new_one);
  REQUIRE(new_recorded);
  CHECK(preview(*st, *m, **new_one, *new_recorded).find("held_back") == nullptr);

  app::AdminApi api(*st, *st, [&m] { return m; });
  const auto all = api.handle("GET", "/replay-preview?mapping=mapped");
  REQUIRE(all);
  CHECK(all->status == 200);
  CHECK(all->body.find("\"compared\": 2,") != std::string::npos);
  CHECK(all->body.find("\"held_back\": 1,") != std::string::npos);
}
