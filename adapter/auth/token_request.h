// OAuth2 client-credentials token requests (RFC 6749 section 4.4) and their answers, without I/O:
// this builds the body and headers of the POST to the token endpoint and reads the JSON response.
// The HTTP client sends them; the TokenCache decides when.
//
//   TokenRequest req = client_secret_basic_request(client_id, secret, "system/*.write");
//   // POST token_url, Content-Type: req.content_type, Accept: req.accept,
//   //      Authorization: req.authorization (when not empty), body: req.body
//   Result<AccessToken> token = parse_token_response(status, response_body);
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace adapter::auth {

// How the client proves who it is to the token endpoint.
enum class ClientAuthMethod {
  client_secret_basic,  // HTTP Basic with form-encoded id and secret (RFC 6749 section 2.3.1)
  client_secret_post,   // client_id and client_secret in the form body
  private_key_jwt,      // a signed JWT client assertion (RFC 7523, SMART Backend Services)
};

std::string_view name(ClientAuthMethod method);
Result<ClientAuthMethod> parse_client_auth_method(std::string_view text);

struct TokenRequest {
  static constexpr std::string_view content_type = "application/x-www-form-urlencoded";
  static constexpr std::string_view accept = "application/json";
  std::string body;           // form-encoded
  std::string authorization;  // the Authorization header's value, or empty for none
};

// grant_type=client_credentials[&scope=...] with Basic credentials. Per RFC 6749 section 2.3.1
// the id and the secret are form-encoded before they are joined by ':' and Base64-encoded, so a
// ':' in the id or a '+' in the secret survive the round trip.
TokenRequest client_secret_basic_request(std::string_view client_id, std::string_view client_secret,
                                         std::string_view scope = {});

// grant_type=client_credentials&client_id=...&client_secret=...[&scope=...]
TokenRequest client_secret_post_request(std::string_view client_id, std::string_view client_secret,
                                        std::string_view scope = {});

// grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:
// jwt-bearer&client_assertion=<jwt>[&scope=...], as SMART Backend Services sends it.
TokenRequest private_key_jwt_request(std::string_view client_assertion,
                                     std::string_view scope = {});

// "Basic base64(user:password)" for servers that take HTTP Basic directly (RFC 7617; no form
// encoding here). A ':' in the user, or a control character in either, cannot be sent: bad_config.
Result<std::string> basic_authorization(std::string_view user, std::string_view password);

// "Bearer <token>".
std::string bearer_authorization(std::string_view token);

// A bearer token from a token endpoint.
struct AccessToken {
  std::string value;                  // never logged
  std::chrono::seconds expires_in{};  // from the response, or the default when it had none
  bool expires_in_given = false;      // false when the default was used
  std::string scope;                  // the granted scope, if the server said
};

// The longest lifetime taken from a response: a year. A larger expires_in is clamped, so that
// arithmetic on it cannot overflow and a misconfigured server cannot pin a token forever.
inline constexpr std::chrono::seconds kMaxTokenLifetime{365LL * 24 * 3600};

// Reads the token endpoint's answer (RFC 6749 sections 5.1 and 5.2):
//  - {"access_token", "token_type": "Bearer" in any case, "expires_in"?, "scope"?} with a 2xx
//    status is a token; expires_in may be a number or a numeric string, and defaults to
//    `default_lifetime` when absent;
//  - {"error": "invalid_client", "error_description"?} (with any status) is
//    Errc::auth_token_refused, quoting the error code and a sanitised description;
//  - anything else (another status, not JSON, no token, a token that cannot go in a header, a
//    token type other than Bearer) is Errc::auth_token_failed.
// Messages quote only the OAuth error code and description, never the token or the rest of the
// body.
Result<AccessToken> parse_token_response(
    int http_status, std::string_view body,
    std::chrono::seconds default_lifetime = std::chrono::seconds(300));

}  // namespace adapter::auth
