// HTTP ingress decisions against a real SQLite store: what each body is answered, what is kept,
// deduplication by document identifier or SHA-256, credentials, and the status document.
#include "app/feed_intake.h"

#include <stdlib.h>
#include <catch2/catch.hpp>

#include <future>

#include "../mapping/memory_files.h"
#include "support/temp_store.h"

using namespace adapter;

namespace {

using test::TempStore;

// Two XML routes: <report> identified by its <accession>, <note> by nothing (its SHA-256).
std::shared_ptr<app::MapperHolder> small_mapper() {
  mapping::test::MemoryFiles files;
  files.add("routes.json", R"({"routes": [
      {"name": "report", "match": {"xml_root": "report"}, "template": "report.json"},
      {"name": "note", "match": {"xml_root": "note"}, "template": "note.json"}]})");
  files.add("report.json",
            R"({"$template": "report", "$version": "1", "$document_id": "/report/accession",
      "resourceType": "Bundle", "type": "transaction"})");
  files.add(
      "note.json",
      R"({"$template": "note", "$version": "1", "resourceType": "Bundle", "type": "transaction"})");
  auto set = mapping::load_template_set(files);
  REQUIRE(set);
  return std::make_shared<app::MapperHolder>(
      std::make_shared<const app::Mapper>(*set, app::MappingConfig{}));
}

app::HttpListenerConfig listener() {
  app::HttpListenerConfig c;
  c.max_body_bytes = 4096;
  app::HttpFeedConfig lab;
  lab.name = "lab";
  lab.api_key = "lab-key-123";
  app::HttpFeedConfig other;
  other.name = "other";
  other.client_certificate_cn = "other-client";
  c.feeds = {lab, other};
  return c;
}

struct FeedFixture {
  TempStore store;
  app::HttpListenerConfig config = listener();
  app::HttpStats stats;
  app::FeedIntake intake{config, "adapterd", *store, *store, small_mapper(), stats};

  app::HttpAnswer post(std::string body, std::string type = "application/xml",
                       std::string_view feed = "lab") {
    app::FeedRequest r;
    r.feed = feed == "lab" ? &config.feeds[0] : &config.feeds[1];
    r.content_type = std::move(type);
    r.body = std::move(body);
    r.peer = "127.0.0.1:1";
    r.received_at_us = app::now_us();
    std::promise<app::HttpAnswer> p;
    auto f = p.get_future();
    intake.submit(std::move(r), [&p](app::HttpAnswer a) { p.set_value(std::move(a)); });
    return f.get();
  }
};

std::string diagnostics(const app::HttpAnswer& a) {
  const auto at = a.body.find("\"diagnostics\":\"");
  REQUIRE(at != std::string::npos);
  const auto start = at + 15;
  return a.body.substr(start, a.body.find('"', start) - start);
}

}  // namespace

TEST_CASE("Content-Type decides how a body is read", "[app][feed_intake]") {
  CHECK(app::body_kind("application/xml") == app::BodyKind::xml);
  CHECK(app::body_kind("Text/XML; charset=UTF-8") == app::BodyKind::xml);
  CHECK(app::body_kind("application/fhir+xml") == app::BodyKind::xml);
  CHECK(app::body_kind("x-application/hl7-v2+er7") == app::BodyKind::hl7v2);
  CHECK(app::body_kind("application/hl7-v2; charset=utf-8") == app::BodyKind::hl7v2);
  CHECK(app::body_kind("text/plain") == app::BodyKind::unsupported);
  CHECK(app::body_kind("") == app::BodyKind::unsupported);
  CHECK(app::body_kind("application/xmlx") == app::BodyKind::unsupported);
}

TEST_CASE("a feed is authenticated by its own key or its client certificate only",
          "[app][feed_intake]") {
  FeedFixture fx;
  CHECK(fx.intake.authenticate("lab", "Bearer lab-key-123", "") == &fx.config.feeds[0]);
  CHECK(fx.intake.authenticate("lab", "bearer  lab-key-123 ", "") == &fx.config.feeds[0]);
  CHECK(fx.intake.authenticate("lab", "Bearer lab-key-12", "") == nullptr);
  CHECK(fx.intake.authenticate("lab", "Basic bGFiOmxhYi1rZXktMTIz", "") == nullptr);
  CHECK(fx.intake.authenticate("lab", "", "") == nullptr);
  CHECK(fx.intake.authenticate("lab", "", "other-client") == nullptr);  // another feed's CN
  CHECK(fx.intake.authenticate("other", "", "other-client") == &fx.config.feeds[1]);
  CHECK(fx.intake.authenticate("other", "Bearer lab-key-123", "") == nullptr);
  CHECK(fx.intake.authenticate("nobody", "Bearer lab-key-123", "") == nullptr);
  CHECK(fx.intake.authenticate_any("Bearer lab-key-123", "") == &fx.config.feeds[0]);
  CHECK(fx.intake.authenticate_any("", "other-client") == &fx.config.feeds[1]);
  CHECK(fx.intake.authenticate_any("Bearer x", "someone") == nullptr);
}

TEST_CASE("a document is stored once per identifier, and other content under it is a conflict",
          "[app][feed_intake]") {
  FeedFixture fx;
  const std::string v1 = "<report><accession>A-1</accession><v>1</v></report>";
  const app::HttpAnswer first = fx.post(v1);
  REQUIRE(first.status == 202);
  CHECK(first.body.find("\"document_id\":\"A-1\"") != std::string::npos);
  CHECK(first.location == "/messages/1");

  const app::HttpAnswer again = fx.post(v1, "text/xml");
  CHECK(again.status == 200);
  CHECK(again.location == "/messages/1");
  CHECK(again.body.find("\"duplicate\":true") != std::string::npos);

  const app::HttpAnswer changed = fx.post("<report><accession>A-1</accession><v>2</v></report>");
  CHECK(changed.status == 409);
  CHECK(diagnostics(changed).find("document 'A-1' was already accepted (message 1)") == 0);

  // Without a declared identifier, the SHA-256 is the identity.
  const app::HttpAnswer note = fx.post("<note>hello</note>");
  REQUIRE(note.status == 202);
  CHECK(note.body.find("document_id") == std::string::npos);
  CHECK(fx.post("<note>hello</note>").location == note.location);
  CHECK(fx.post("<note>hello again</note>").status == 202);

  auto rows = fx.store->find({});
  REQUIRE(rows);
  REQUIRE(rows->size() == 4);  // A-1, its conflict (rejected), two notes
  CHECK((*rows)[0].message.listener == "lab");
  CHECK((*rows)[0].message.control_id == "A-1");
  CHECK((*rows)[0].message.message_type == "XML report");
  CHECK((*rows)[0].duplicate_count == 1);
  CHECK((*rows)[1].message.state == store::MessageState::rejected);
  CHECK((*rows)[2].message.control_id.rfind("sha256:", 0) == 0);
  CHECK(fx.stats.documents_accepted == 3);
  CHECK(fx.stats.documents_duplicate == 2);
  CHECK(fx.stats.documents_rejected == 1);
}

TEST_CASE("refused bodies are kept as rejected and answered with what and where",
          "[app][feed_intake]") {
  FeedFixture fx;
  const app::HttpAnswer broken = fx.post("<report>\n  <accession>A</report>");
  CHECK(broken.status == 400);
  CHECK(broken.content_type == "application/fhir+json");
  CHECK(diagnostics(broken).find("not well-formed") == 0);
  CHECK(broken.body.find("\"expression\":[\"XML line 2") != std::string::npos);

  CHECK(diagnostics(fx.post("<invoice/>")) ==
        "no route for XML root element <invoice> (no namespace)");
  CHECK(diagnostics(fx.post("<report><other/></report>"))
            .find("the document has no identifier where its template (report.json) expects one") ==
        0);
  CHECK(fx.post("<report/>", "application/pdf").status == 415);
  CHECK(fx.post("<!DOCTYPE r [<!ENTITY e 'x'>]><report>&e;</report>").status == 400);

  std::promise<app::HttpAnswer> p;
  fx.intake.submit_too_large(fx.config.feeds[0], "127.0.0.1:2", 1 << 20, app::now_us(),
                             [&p](app::HttpAnswer a) { p.set_value(std::move(a)); });
  const app::HttpAnswer big = p.get_future().get();
  CHECK(big.status == 413);
  CHECK(diagnostics(big) ==
        "the body (1048576 bytes) is larger than this listener accepts (max_body_bytes 4096); it "
        "was not read");

  auto rows = fx.store->find({});
  REQUIRE(rows);
  REQUIRE(rows->size() == 6);
  for (const auto& r : *rows) CHECK(r.message.state == store::MessageState::rejected);
  CHECK((*rows)[0].message.raw == "<report>\n  <accession>A</report>");  // kept as sent
  CHECK((*rows)[0].message.error.find("not_xml at XML line 2") == 0);
  CHECK((*rows)[3].message.ack_code == "415");
  CHECK((*rows)[5].message.ack_code == "413");
  CHECK(fx.stats.documents_rejected == 5);
  CHECK(fx.stats.bodies_too_large == 1);
}

TEST_CASE("HL7 v2 bodies go through the MLLP intake under the feed's name", "[app][feed_intake]") {
  FeedFixture fx;
  const std::string msg =
      "MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20260101120000||ORU^R01^ORU_R01|C-9|P|2.5.1\rPID|1||M1\r";
  const app::HttpAnswer ok = fx.post(msg, "x-application/hl7-v2+er7");
  CHECK(ok.status == 202);
  CHECK(fx.post(msg, "x-application/hl7-v2+er7").status == 200);  // a resend
  const app::HttpAnswer bad = fx.post("PID|1||M1\r", "x-application/hl7-v2+er7");
  CHECK(bad.status == 400);
  CHECK(diagnostics(bad) == "the message does not start with an MSH segment");
  auto rows = fx.store->find({});
  REQUIRE(rows);
  REQUIRE(rows->size() == 2);
  CHECK((*rows)[0].message.listener == "lab");
  CHECK((*rows)[0].message.control_id == "C-9");
}

TEST_CASE("the status document follows the message and hides other feeds' messages",
          "[app][feed_intake]") {
  FeedFixture fx;
  REQUIRE(fx.post("<report><accession>A-7</accession></report>").status == 202);
  CHECK(fx.intake.status(1, fx.config.feeds[1]).status == 404);
  CHECK(fx.intake.status(99, fx.config.feeds[0]).status == 404);
  app::HttpAnswer s = fx.intake.status(1, fx.config.feeds[0]);
  REQUIRE(s.status == 200);
  CHECK(s.body.find("\"state\": \"received\"") != std::string::npos);
  CHECK(s.body.find("\"document_id\": \"A-7\"") != std::string::npos);

  store::MappingRecord rec;
  rec.message_id = 1;
  rec.state = store::MappingState::mapped;
  rec.template_name = "report";
  rec.template_version = "1";
  rec.issues_json = R"([{"severity":"warning","message":"w"}])";
  rec.bundle_json =
      R"({"resourceType":"Bundle","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","identifier":[{"system":"s","value":"v"}]}}]})";
  REQUIRE(store::record_mapping_and_wait(*fx.store, rec));
  s = fx.intake.status(1, fx.config.feeds[0]);
  CHECK(s.body.find("\"state\": \"mapped\"") != std::string::npos);
  CHECK(s.body.find("\"identifier\": \"s|v\"") != std::string::npos);
  CHECK(s.body.find("\"message\": \"w\"") != std::string::npos);
}

TEST_CASE("message states as a client sees them", "[app][feed_intake]") {
  store::StoredMessage m;
  std::optional<store::MappingRecord> none;
  CHECK(app::message_state(m, none, {}) == "received");
  m.message.state = store::MessageState::rejected;
  CHECK(app::message_state(m, none, {}) == "rejected");
  m.message.state = store::MessageState::received;
  store::MappingRecord rec;
  rec.state = store::MappingState::mapping_failed;
  CHECK(app::message_state(m, rec, {}) == "mapping-failed");
  rec.state = store::MappingState::mapped;
  CHECK(app::message_state(m, rec, {}) == "mapped");
  store::DeliveryRecord a;
  store::DeliveryRecord b;
  a.state = store::DeliveryState::delivered;
  b.state = store::DeliveryState::pending;
  CHECK(app::message_state(m, rec, {a, b}) == "mapped");
  b.state = store::DeliveryState::delivered;
  CHECK(app::message_state(m, rec, {a, b}) == "delivered");
  b.state = store::DeliveryState::dead_letter;
  CHECK(app::message_state(m, rec, {a, b}) == "dead-letter");
  b.state = store::DeliveryState::discarded;
  CHECK(app::message_state(m, rec, {a, b}) == "discarded");
}
