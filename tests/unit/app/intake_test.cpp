// Intake against a real SQLite store and against a store that fails: the ACK follows the commit,
// and a message that is not durable never gets a positive ACK.
#include "app/intake.h"

#include <stdlib.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <future>

#include "hl7v2/message.h"
#include "store/sqlite/sqlite_store.h"
#include "support/fake_store.h"
#include "support/temp_store.h"

using namespace adapter;

namespace {

using test::TempStore;

app::Receipt submit(app::Intake& intake, std::string payload) {
  std::promise<app::Receipt> p;
  auto f = p.get_future();
  intake.submit(app::Inbound{std::move(payload), "127.0.0.1:5555", app::now_us()},
                [&p](app::Receipt r) { p.set_value(std::move(r)); });
  return f.get();
}

std::string msa(const std::string& ack, int field) {
  auto m = hl7v2::Message::parse(ack);
  REQUIRE(m);
  return m->get("MSA-" + std::to_string(field))->text();
}

const std::string kGood =
    "MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20260101120000||ORU^R01^ORU_R01|C-1|P|2.5.1\rPID|1||M1\r";

}  // namespace

TEST_CASE("a stored message is acknowledged AA with its control ID", "[app][intake]") {
  TempStore st;
  app::MllpStats stats;
  app::Intake intake({"lab", {}, hl7v2::Charset::utf8, "adapterd"}, *st, stats);

  const app::Receipt r = submit(intake, kGood);
  CHECK(r.positive);
  CHECK(msa(r.ack, 1) == "AA");
  CHECK(msa(r.ack, 2) == "C-1");
  auto rows = st->find({});
  REQUIRE(rows);
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0].message.raw == kGood);
  CHECK((*rows)[0].message.peer == "127.0.0.1:5555");
  CHECK((*rows)[0].message.listener == "lab");
  CHECK(stats.messages_accepted == 1);

  // The same message again: same positive answer, nothing new stored.
  const app::Receipt again = submit(intake, kGood);
  CHECK(msa(again.ack, 1) == "AA");
  CHECK(*st->count(std::nullopt) == 1);
  CHECK(stats.messages_duplicate == 1);
}

TEST_CASE("a store failure never yields a positive ACK", "[app][intake]") {
  test::FakeStore failing(test::FakeStore::Mode::fail);
  app::MllpStats stats;
  app::Intake intake({"lab", {}, hl7v2::Charset::utf8, "adapterd"}, failing, stats);

  const app::Receipt r = submit(intake, kGood);
  CHECK_FALSE(r.positive);
  CHECK(msa(r.ack, 1) == "AE");
  auto ack = hl7v2::Message::parse(r.ack);
  REQUIRE(ack);
  CHECK(ack->get("ERR-3.1")->text() == "207");
  CHECK(ack->get("ERR-4")->text() == "E");
  CHECK(ack->get("ERR-8")->text().find("could not be stored") != std::string::npos);
  CHECK(stats.store_failures == 1);
  CHECK(stats.messages_accepted == 0);
  CHECK(failing.appended() == 1);

  // Enhanced mode: CE instead of AE.
  std::string enhanced = kGood;
  enhanced.replace(enhanced.find("|2.5.1"), 6, "|2.5.1|||AL|NE");
  CHECK(msa(submit(intake, enhanced).ack, 1) == "CE");
}

TEST_CASE("a batch is stored atomically and answered with a batch of ACKs", "[app][intake]") {
  TempStore st;
  app::MllpStats stats;
  app::Intake intake({"lab", {}, hl7v2::Charset::utf8, "adapterd"}, *st, stats);
  const std::string batch =
      "BHS|^~\\&|LAB|LABFAC|||20260101||||B-1\r" + kGood +
      "MSH|^~\\&|LAB|LABFAC|EHR|HOSP|20260101120000||ORU^R01^ORU_R01|C-2|P|2.5.1\rPID|1||M2\r"
      "BTS|2\r";
  const app::Receipt r = submit(intake, batch);
  CHECK(r.positive);
  CHECK(r.ack.rfind("BHS|", 0) == 0);
  CHECK(r.ack.find("MSA|AA|C-1\r") != std::string::npos);
  CHECK(r.ack.find("MSA|AA|C-2\r") != std::string::npos);
  CHECK(r.ack.find("BTS|2\r") != std::string::npos);
  CHECK(r.ack.find("|B-1") != std::string::npos);  // BHS-11 echoes the batch control ID
  CHECK(*st->count(store::MessageState::received) == 2);

  // A malformed envelope is rejected whole and kept as one record.
  const app::Receipt bad = submit(intake, "BHS|^~\\&|LAB\r" + kGood + "BTS|5\r");
  CHECK_FALSE(bad.positive);
  CHECK(msa(bad.ack, 1) == "AR");
  CHECK(*st->count(store::MessageState::rejected) == 1);
}
