// DeliveryWorker against a real SQLite outbox and a scripted FhirClient (a fake is how a unit
// test injects 503s, dropped connections and refusals; the integration tests use a real server).
#include "app/delivery_worker.h"

#include <stdlib.h>
#include <catch2/catch.hpp>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "app/intake.h"
#include "app/mapping_worker.h"
#include "common/sha256.h"
#include "store/sqlite/sqlite_store.h"
#include "support/temp_store.h"

using namespace adapter;
using namespace std::chrono_literals;

namespace {

// A real outbox, and messages queued in it as the mapping worker queues them.
class OutboxFixture {
 public:
  store::SqliteStore& store() { return *store_; }

  // A received message, mapped, queued for "ehr" under `order_key`; with `issued_us`, a version
  // of that report issued then (a newer one discards the older ones' open deliveries).
  std::int64_t queue(const std::string& control_id, const std::string& order_key,
                     std::int64_t issued_us = 0) {
    store::InboundMessage m;
    m.raw = "MSH|^~\\&|LAB|HOSP|||20260101||ORU^R01|" + control_id + "|P|2.5.1\r";
    m.received_at_us = app::now_us();
    m.listener = "lab";
    m.sender_application = "LAB";
    m.sender_facility = "HOSP";
    m.control_id = control_id;
    m.content_sha256 = sha256_hex(m.raw);
    auto appended = store::append_and_wait(*store_, {m});
    REQUIRE(appended);
    const std::int64_t id = appended->front().id;
    store::MappingRecord r;
    r.message_id = id;
    r.state = store::MappingState::mapped;
    r.issues_json = "[]";
    r.bundle_json = "{\"control\":\"" + control_id + "\"}";
    r.mapped_at_us = app::now_us();
    r.deliver_to = {"ehr"};
    r.order_key = order_key;
    if (issued_us > 0) r.report_keys = {{order_key, issued_us}};
    REQUIRE(store::record_mapping_and_wait(*store_, r).ok());
    return id;
  }

  store::DeliveryRecord delivery(std::int64_t id) {
    auto rows = store_->deliveries_of(id);
    REQUIRE(rows);
    REQUIRE(rows->size() == 1);
    return rows->front();
  }

 private:
  test::TempStore store_{"delivery-test"};
};

// Answers each POST with the next scripted answer (the last one repeats), from a thread of its
// own as a real client would, and records what was sent and when.
class ScriptedClient : public delivery::FhirClient {
 public:
  using Answer = std::function<Result<delivery::Response>(const std::string& body)>;
  explicit ScriptedClient(std::vector<Answer> script) : script_(std::move(script)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~ScriptedClient() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void post_bundle(std::string bundle_json, Done done) override {
    std::lock_guard lock(mu_);
    sent_.push_back(bundle_json);
    sent_at_.push_back(std::chrono::steady_clock::now());
    queue_.emplace_back(std::move(bundle_json), std::move(done));
    cv_.notify_all();
  }
  std::string describe() const override { return "scripted"; }

  std::vector<std::string> sent() {
    std::lock_guard lock(mu_);
    return sent_;
  }
  std::vector<std::chrono::steady_clock::time_point> sent_at() {
    std::lock_guard lock(mu_);
    return sent_at_;
  }
  // Holds answers back (to observe what is in flight) until released.
  void hold(bool on) {
    std::lock_guard lock(mu_);
    holding_ = on;
    cv_.notify_all();
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stopping_ || (!queue_.empty() && !holding_); });
      if (stopping_) return;
      auto [body, done] = std::move(queue_.front());
      queue_.pop_front();
      const Answer& answer = script_[std::min(next_++, script_.size() - 1)];
      lock.unlock();
      done(answer(body));
      lock.lock();
    }
  }

  std::vector<Answer> script_;
  std::size_t next_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, Done>> queue_;
  std::vector<std::string> sent_;
  std::vector<std::chrono::steady_clock::time_point> sent_at_;
  bool holding_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

ScriptedClient::Answer status(int code, std::string body = {}, std::string retry_after = {}) {
  return [=](const std::string&) {
    delivery::Response r;
    r.status = code;
    r.body = body;
    r.retry_after = retry_after;
    return Result<delivery::Response>(std::move(r));
  };
}

ScriptedClient::Answer dropped() {
  return [](const std::string&) {
    return Result<delivery::Response>(
        make_error(Errc::io_error, "connection reset by peer", "127.0.0.1:9"));
  };
}

app::DestinationConfig fast_destination() {
  app::DestinationConfig c;
  c.name = "ehr";
  c.base_url = "http://127.0.0.1:9/fhir";
  c.max_in_flight = 4;
  c.retry.initial_delay = 50ms;
  c.retry.max_delay = 200ms;
  c.retry.max_attempts = 4;
  c.circuit_breaker.failure_threshold = 100;  // out of the way unless a test wants it
  return c;
}

// Polls `ready` until it holds or 10 s pass.
bool eventually(const std::function<bool()>& ready) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return ready();
}

const std::string kTransactionResponse =
    R"({"resourceType":"Bundle","type":"transaction-response","entry":[)"
    R"({"response":{"status":"201 Created","location":"Observation/1/_history/1"}}]})";

}  // namespace

TEST_CASE("delivery: due Bundles are posted and recorded as delivered", "[delivery_worker]") {
  OutboxFixture f;
  const auto a = f.queue("A", "r1");
  const auto b = f.queue("B", "r2");
  auto client = std::make_shared<ScriptedClient>(
      std::vector<ScriptedClient::Answer>{status(200, kTransactionResponse)});
  app::DeliveryWorker worker(f.store(), client, fast_destination(), 10ms);
  worker.start();
  REQUIRE(eventually([&] { return worker.counters().delivered == 2; }));
  REQUIRE(eventually([&] { return f.delivery(b).state == store::DeliveryState::delivered; }));
  worker.stop();
  const auto d = f.delivery(a);
  CHECK(d.state == store::DeliveryState::delivered);
  CHECK(d.attempts == 1);
  CHECK(d.last_status == 200);
  CHECK(d.response == R"([{"status":"201 Created","location":"Observation/1/_history/1"}])");
  CHECK(client->sent().size() == 2);
  CHECK(client->sent()[0] == "{\"control\":\"A\"}");
}

TEST_CASE("delivery: 503 and a dropped connection are retried with backoff until delivered",
          "[delivery_worker]") {
  OutboxFixture f;
  const auto a = f.queue("A", "r1");
  auto client = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Answer>{
      status(503), dropped(), status(200, kTransactionResponse)});
  app::DeliveryWorker worker(f.store(), client, fast_destination(), 10ms);
  worker.start();
  REQUIRE(eventually([&] { return f.delivery(a).state == store::DeliveryState::delivered; }));
  worker.stop();
  auto attempts = f.store().attempts_of(a);
  REQUIRE(attempts);
  REQUIRE(attempts->size() == 3);
  CHECK((*attempts)[0].status == 503);
  CHECK((*attempts)[0].outcome == "retry");
  CHECK((*attempts)[0].error == "HTTP 503");
  CHECK((*attempts)[1].status == 0);
  CHECK((*attempts)[1].error == "127.0.0.1:9: connection reset by peer");
  CHECK((*attempts)[2].outcome == "delivered");
  // Backoff: at least half of 50 ms, then of 100 ms, between the attempts.
  const auto at = client->sent_at();
  REQUIRE(at.size() == 3);
  CHECK(at[1] - at[0] >= 25ms);
  CHECK(at[2] - at[1] >= 50ms);
  CHECK(worker.counters().retried == 2);
}

TEST_CASE("delivery: a refusal is a dead letter with the server's OperationOutcome",
          "[delivery_worker]") {
  OutboxFixture f;
  const auto a = f.queue("A", "r1");
  const std::string outcome =
      R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid",)"
      R"("diagnostics":"Missing required property","expression":["Observation.code"]}]})";
  auto client =
      std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Answer>{status(400, outcome)});
  app::DeliveryWorker worker(f.store(), client, fast_destination(), 10ms);
  worker.start();
  REQUIRE(eventually([&] { return f.delivery(a).state == store::DeliveryState::dead_letter; }));
  worker.stop();
  const auto d = f.delivery(a);
  CHECK(d.attempts == 1);
  CHECK(d.last_status == 400);
  CHECK(d.last_error == "HTTP 400: error invalid: Missing required property (Observation.code)");
  CHECK(d.response == outcome);
  CHECK(client->sent().size() == 1);  // never sent again by itself
}

TEST_CASE("delivery: retries give up at max_attempts into the dead-letter state",
          "[delivery_worker]") {
  OutboxFixture f;
  const auto a = f.queue("A", "r1");
  auto client = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Answer>{status(502)});
  app::DeliveryWorker worker(f.store(), client, fast_destination(), 10ms);
  worker.start();
  REQUIRE(eventually([&] { return f.delivery(a).state == store::DeliveryState::dead_letter; }));
  worker.stop();
  const auto d = f.delivery(a);
  CHECK(d.attempts == 4);
  CHECK(d.last_error == "gave up after 4 attempts (retry.max_attempts): HTTP 502");
  CHECK(client->sent().size() == 4);
}

TEST_CASE("delivery: deliveries about one report go one at a time in receipt order",
          "[delivery_worker]") {
  OutboxFixture f;
  const auto original = f.queue("A", "report-1");
  const auto other = f.queue("B", "report-2");
  const auto correction = f.queue("C", "report-1");
  auto client = std::make_shared<ScriptedClient>(
      std::vector<ScriptedClient::Answer>{status(200, kTransactionResponse)});
  client->hold(true);
  app::DeliveryWorker worker(f.store(), client, fast_destination(), 10ms);
  worker.start();
  // A and B go out together; C waits behind A although a slot is free.
  REQUIRE(eventually([&] { return client->sent().size() == 2; }));
  std::this_thread::sleep_for(100ms);
  CHECK(client->sent() == std::vector<std::string>{"{\"control\":\"A\"}", "{\"control\":\"B\"}"});
  CHECK(worker.snapshot().in_flight == 2);
  client->hold(false);
  REQUIRE(
      eventually([&] { return f.delivery(correction).state == store::DeliveryState::delivered; }));
  worker.stop();
  CHECK(client->sent().back() == "{\"control\":\"C\"}");
  CHECK(f.delivery(original).delivered_at_us <= f.delivery(correction).last_attempt_at_us);
  CHECK(f.delivery(other).state == store::DeliveryState::delivered);
}

TEST_CASE("delivery: a newer version waits for the attempt of an older one it superseded",
          "[delivery_worker]") {
  OutboxFixture f;
  auto client = std::make_shared<ScriptedClient>(
      std::vector<ScriptedClient::Answer>{status(200, kTransactionResponse)});
  client->hold(true);
  app::DeliveryWorker worker(f.store(), client, fast_destination(), 10ms);
  worker.start();
  const auto older = f.queue("OLD", "report-1", 1'000'000);
  REQUIRE(eventually([&] { return client->sent().size() == 1; }));  // on the wire, unanswered
  // The newer version discards the older one's row; the older request is out all the same.
  const auto newer = f.queue("NEW", "report-1", 2'000'000);
  CHECK(f.delivery(older).state == store::DeliveryState::discarded);
  std::this_thread::sleep_for(150ms);  // fifteen polls: the newer one would have gone by now
  CHECK(client->sent().size() == 1);
  client->hold(false);
  REQUIRE(eventually([&] { return f.delivery(newer).state == store::DeliveryState::delivered; }));
  worker.stop();
  CHECK(client->sent() ==
        std::vector<std::string>{"{\"control\":\"OLD\"}", "{\"control\":\"NEW\"}"});
  CHECK(f.delivery(older).state == store::DeliveryState::discarded);  // its answer changes nothing
}

TEST_CASE("delivery: the circuit opens after repeated failures and a probe closes it",
          "[delivery_worker]") {
  OutboxFixture f;
  for (int i = 0; i < 6; ++i) f.queue("M" + std::to_string(i), "r" + std::to_string(i));
  auto client = std::make_shared<ScriptedClient>(std::vector<ScriptedClient::Answer>{
      dropped(), dropped(), dropped(), status(200, kTransactionResponse)});
  app::DestinationConfig c = fast_destination();
  c.max_in_flight = 1;
  c.circuit_breaker.failure_threshold = 3;
  c.circuit_breaker.open_for = 300ms;
  c.retry.max_attempts = 10;
  app::DeliveryWorker worker(f.store(), client, c, 10ms);
  worker.start();
  REQUIRE(eventually(
      [&] { return worker.snapshot().circuit == delivery::CircuitBreaker::State::open; }));
  const std::size_t sent_when_opened = client->sent().size();
  CHECK(sent_when_opened == 3);
  std::this_thread::sleep_for(150ms);
  CHECK(client->sent().size() == 3);  // nothing while open
  REQUIRE(eventually([&] { return worker.counters().delivered == 6; }));
  worker.stop();
  const auto at = client->sent_at();
  CHECK(at[3] - at[2] >= 250ms);  // the probe came after the open period
  CHECK(worker.snapshot().circuit == delivery::CircuitBreaker::State::closed);
  CHECK(worker.snapshot().circuit_opened == 1);
}

TEST_CASE("delivery: decide() gives up when the next attempt would pass max_age",
          "[delivery_worker]") {
  store::DueDelivery d;
  d.message_id = 7;
  d.destination = "ehr";
  d.attempts = 1;
  d.queued_at_us = 0;
  delivery::RetryPolicy policy;
  policy.max_age = std::chrono::seconds(60);
  policy.initial_delay = 10s;
  policy.max_delay = 10s;
  delivery::Outcome retry;
  retry.verdict = delivery::Verdict::retry;
  retry.status = 503;
  retry.error = "HTTP 503";
  std::mt19937_64 rng(3);
  auto u = app::DeliveryWorker::decide(d, retry, policy, 1'000'000, 2'000'000, rng);
  CHECK(u.state == store::DeliveryState::pending);
  CHECK(u.next_attempt_at_us >= 2'000'000 + 5'000'000);
  CHECK(u.next_attempt_at_us <= 2'000'000 + 10'000'000);
  CHECK(u.attempt.duration_us == 1'000'000);
  CHECK(u.attempt.outcome == "retry");
  u = app::DeliveryWorker::decide(d, retry, policy, 55'000'000, 55'000'000, rng);
  CHECK(u.state == store::DeliveryState::dead_letter);
  CHECK(u.attempt.error ==
        "gave up: the next attempt would pass retry.max_age_seconds (60 s): HTTP 503");
  CHECK(u.attempt.outcome == "dead_letter");
}

TEST_CASE("delivery: the order key is the report's business identifier", "[delivery_worker]") {
  using mapping::Json;
  auto entry = [](const char* type, Json identifiers, const char* if_none_exist) {
    mapping::JsonObject request{{"method", Json::string("POST")}};
    if (if_none_exist != nullptr) request.emplace_back("ifNoneExist", Json::string(if_none_exist));
    return Json::object({{"resource", Json::object({{"resourceType", Json::string(type)},
                                                    {"identifier", std::move(identifiers)}})},
                         {"request", Json::object(std::move(request))}});
  };
  auto ids = [](const char* system, const char* value) {
    return Json::array(
        {Json::object({{"system", Json::string(system)}, {"value", Json::string(value)}})});
  };
  const Json with_condition = Json::object(
      {{"entry", Json::array({
                     entry("Observation", ids("urn:x", "o1"), "identifier=urn:x|o1"),
                     entry("DiagnosticReport", ids("urn:X", "R-1"), "identifier=urn:x|R-1"),
                 })}});
  CHECK(app::MappingWorker::order_key_of(with_condition, 5) ==
        "DiagnosticReport?identifier=urn:x|R-1");
  const Json service_request_only =
      Json::object({{"entry", Json::array({
                                  entry("ServiceRequest", ids("urn:y", "S-9"), nullptr),
                              })}});
  CHECK(app::MappingWorker::order_key_of(service_request_only, 5) ==
        "ServiceRequest?identifier=urn:y|S-9");
  CHECK(app::MappingWorker::order_key_of(Json::object({}), 5) == "message|5");

  // A correction updates the report under the same identifier: the same key, so that it is
  // delivered after the original, never before.
  const Json correction = Json::object(
      {{"entry",
        Json::array({Json::object(
            {{"resource", Json::object({{"resourceType", Json::string("DiagnosticReport")},
                                        {"identifier", ids("urn:X", "R-1")}})},
             {"request",
              Json::object(
                  {{"method", Json::string("PUT")},
                   {"url", Json::string("DiagnosticReport?identifier=urn:x|R-1")}})}})})}});
  CHECK(app::MappingWorker::order_key_of(correction, 6) ==
        app::MappingWorker::order_key_of(with_condition, 5));
}
