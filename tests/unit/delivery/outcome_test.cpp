#include "delivery/outcome.h"

#include <catch2/catch.hpp>

namespace {

using namespace adapter::delivery;
using adapter::Errc;
using adapter::make_error;
using adapter::Result;
using namespace std::chrono_literals;

const auto kNow = std::chrono::system_clock::from_time_t(1445412480);

Outcome classify_status(int status, std::string body = {}, std::string retry_after = {}) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.retry_after = std::move(retry_after);
  return classify(Result<Response>(std::move(r)), kNow);
}

TEST_CASE("2xx is delivered with each entry's status and location", "[delivery][outcome]") {
  const Outcome o = classify_status(
      200,
      R"({"resourceType":"Bundle","type":"transaction-response","entry":[)"
      R"({"response":{"status":"201 Created","location":"Patient/1/_history/1"}},)"
      R"({"response":{"status":"200 OK","location":"Observation/7/_history/2","etag":"W/\"2\""}},)"
      R"({}]})");
  CHECK(o.verdict == Verdict::delivered);
  CHECK(o.status == 200);
  CHECK(o.error.empty());
  CHECK(!o.destination_failed);
  CHECK(o.response == R"([{"status":"201 Created","location":"Patient/1/_history/1"},)"
                      R"({"status":"200 OK","location":"Observation/7/_history/2"},{}])");
  // A 2xx without a readable Bundle still counts as delivered.
  CHECK(classify_status(204).verdict == Verdict::delivered);
}

TEST_CASE("408, 429, 5xx and no answer are retried and count against the destination",
          "[delivery][outcome]") {
  for (int status : {408, 429, 500, 502, 503, 504}) {
    const Outcome o = classify_status(status);
    CHECK(o.verdict == Verdict::retry);
    CHECK(o.destination_failed);
    CHECK(o.error == "HTTP " + std::to_string(status));
  }
  const Outcome limited = classify_status(429, "", "7");
  CHECK(limited.retry_after == 7000ms);
  const Outcome dropped = classify(
      Result<Response>(make_error(Errc::io_error, "connection reset", "127.0.0.1:1")), kNow);
  CHECK(dropped.verdict == Verdict::retry);
  CHECK(dropped.destination_failed);
  CHECK(dropped.status == 0);
  CHECK(dropped.error == "127.0.0.1:1: connection reset");
}

TEST_CASE("other 4xx are dead letters that keep the server's OperationOutcome",
          "[delivery][outcome]") {
  const std::string outcome_body =
      R"({"resourceType":"OperationOutcome","issue":[)"
      R"({"severity":"warning","code":"informational","diagnostics":"just so you know"},)"
      R"({"severity":"error","code":"invalid","details":{"text":"Missing required property"},)"
      R"("expression":["Observation.code"]}]})";
  for (int status : {400, 401, 403, 404, 409, 412, 422}) {
    const Outcome o = classify_status(status, outcome_body);
    CHECK(o.verdict == Verdict::dead_letter);
    CHECK(!o.destination_failed);
    CHECK(o.response == outcome_body);
    CHECK(o.error == "HTTP " + std::to_string(status) +
                         ": error invalid: Missing required property (Observation.code)");
  }
  CHECK(classify_status(400, "<html>nope</html>").error == "HTTP 400");
  const std::string huge(kMaxKeptResponse + 100, 'x');
  CHECK(classify_status(400, huge).response.size() == kMaxKeptResponse + 3);
}

TEST_CASE("an answer to one part of a delivery names that part", "[delivery][outcome]") {
  Response r;
  r.status = 422;
  r.context = "entry 3 (Observation)";
  const Outcome o = classify(Result<Response>(r), kNow);
  CHECK(o.verdict == Verdict::dead_letter);
  CHECK(o.error == "entry 3 (Observation): HTTP 422");
}

TEST_CASE("first_issue falls back to the first issue and ignores other documents",
          "[delivery][outcome]") {
  CHECK(first_issue(R"({"resourceType":"OperationOutcome","issue":[)"
                    R"({"severity":"warning","code":"processing","diagnostics":"slow"}]})") ==
        std::optional<std::string>("warning processing: slow"));
  CHECK(!first_issue(R"({"resourceType":"Bundle"})"));
  CHECK(!first_issue("not json"));
  CHECK(!first_issue(R"({"resourceType":"OperationOutcome","issue":[]})"));
  CHECK(!summarize_transaction_response("[]"));
}

}  // namespace
