// The FhirClient of a configured destination over HTTP(S): the transaction Bundle is POSTed to
// the base URL as application/fhir+json on a keep-alive connection pool (net/http_client.h),
// with the destination's authentication:
//   none, basic, bearer        a fixed Authorization header
//   client_credentials         OAuth2 client credentials (client_secret_basic or _post)
//   smart_backend              SMART Backend Services: a JWT client assertion (RS384/ES384)
// Tokens are cached until shortly before they expire (auth/token_cache.h); a 401 makes the
// client fetch a new token and resend once. Secrets and tokens never reach a log or an error.
#pragma once

#include <memory>
#include <string>

#include "app/config.h"
#include "common/result.h"
#include "delivery/fhir_client.h"

namespace boost::asio {
class io_context;
}

namespace adapter::net {

struct FhirClientStats {
  std::uint64_t token_fetches = 0;  // requests to the token endpoint
  std::uint64_t unauthorized_retries = 0;
  std::uint64_t connections_opened = 0;
};

class FhirHttpClient final : public delivery::FhirClient {
 public:
  // Startup errors (bad URL, unreadable key or CA file) are returned, never thrown.
  static Result<std::shared_ptr<FhirHttpClient>> create(boost::asio::io_context& ioc,
                                                        const app::DestinationConfig& config);
  ~FhirHttpClient() override;

  void post_bundle(std::string bundle_json, Done done) override;
  std::string describe() const override;
  FhirClientStats stats() const;

  struct Impl;

 private:
  explicit FhirHttpClient(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace adapter::net
