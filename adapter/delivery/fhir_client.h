// The seam between delivery and a FHIR server: what the delivery worker asks of a destination.
// The HTTP implementation (connections, TLS, authentication) lives in net/fhir_http_client.h;
// tests substitute their own.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace adapter::delivery {

// A destination's answer. Transport failures (no connection, timeout, dropped connection) are
// Errors instead; `Error::code` tells them apart (see classify() in outcome.h).
struct Response {
  int status = 0;
  std::string body;         // as received (an OperationOutcome, a transaction-response, ...)
  std::string retry_after;  // the Retry-After header's text, if any
  std::string location;     // the Location header's text, if any
  // Which part of the delivery answered, when it was sent in parts ("entry 3 (Observation)"):
  // named in the error.
  std::string context;
};

class FhirClient {
 public:
  virtual ~FhirClient() = default;
  using Done = std::function<void(Result<Response>)>;
  // POSTs a transaction (or batch) Bundle to the base URL. `done` runs exactly once, on a thread
  // of the client's; it must not block.
  virtual void post_bundle(std::string bundle_json, Done done) = 0;
  // "ehr (https://fhir.example.org/r4)": for logs; never carries credentials.
  virtual std::string describe() const = 0;
};

}  // namespace adapter::delivery
