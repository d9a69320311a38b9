// What a destination's answer means for a delivery (issue 4's outcome classes):
//   2xx                                   delivered
//   408, 429, 5xx, no answer at all       retry (with backoff), and a failure of the destination
//                                         for its circuit breaker
//   any other status (400, 401, 404, 422) dead letter: sending the same Bundle again cannot help
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "delivery/fhir_client.h"
#include "delivery/retry_policy.h"

namespace adapter::delivery {

enum class Verdict { delivered, retry, dead_letter };
std::string_view to_string(Verdict verdict);

struct Outcome {
  Verdict verdict = Verdict::retry;
  int status = 0;     // the HTTP status; 0 when no answer came
  std::string error;  // why it was not delivered, for the store (may quote the server's issue)
  // What the store keeps: for a delivered transaction each entry's status and location
  // ([{"status":"201 Created","location":"Observation/12/_history/1"}, ...]); otherwise the
  // server's body (an OperationOutcome), cut at kMaxKeptResponse bytes.
  std::string response;
  std::optional<std::chrono::milliseconds> retry_after;
  bool destination_failed = false;  // counts against the destination's circuit breaker
};

constexpr std::size_t kMaxKeptResponse = 64 * 1024;

Outcome classify(const Result<Response>& answer, std::chrono::system_clock::time_point now);

// The entries of a transaction-response Bundle as [{"status", "location"}, ...] (compact JSON),
// or an error when the body is not a Bundle.
Result<std::string> summarize_transaction_response(std::string_view body);

// "error invalid: Observation.code: missing (Bundle.entry[2].resource)": the first error-level
// issue of an OperationOutcome (or its first issue), or nothing when the body is not one.
std::optional<std::string> first_issue(std::string_view body);

}  // namespace adapter::delivery
