#include "auth/token_request.h"

#include <catch2/catch.hpp>

#include <map>

#include "auth/encoding.h"

using namespace adapter;
using namespace adapter::auth;
using namespace std::chrono_literals;

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// An independent application/x-www-form-urlencoded decoder, the way a server reads the body.
std::string form_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_form(std::string_view body) {
  std::map<std::string, std::string> fields;
  while (!body.empty()) {
    const std::size_t amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    const std::size_t eq = pair.find('=');
    REQUIRE(eq != std::string_view::npos);
    fields[form_decode(pair.substr(0, eq))] = form_decode(pair.substr(eq + 1));
    body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
  }
  return fields;
}

// Reads "Basic xxx" the way RFC 6749 section 2.3.1 tells a server to: Base64, split at the first
// ':', then form-decode each side.
std::pair<std::string, std::string> read_basic(const std::string& header) {
  REQUIRE(header.rfind("Basic ", 0) == 0);
  std::string b64 = header.substr(6);
  for (char& c : b64) c = c == '+' ? '-' : c == '/' ? '_' : c;
  const std::optional<std::string> decoded = base64url_decode(b64);
  REQUIRE(decoded);
  const std::size_t colon = decoded->find(':');
  REQUIRE(colon != std::string::npos);
  return {form_decode(decoded->substr(0, colon)), form_decode(decoded->substr(colon + 1))};
}

const char* const kTrickySecrets[] = {
    "plain",
    "with space",
    "a&b=c",
    "plus+plus",
    "colon:inside:secret",
    "percent%20not-an-escape",
    "unicode-caf\xC3\xA9-\xE2\x82\xAC-\xF0\x9F\xA7\xAC",
    "quote\"back\\slash",
};

}  // namespace

TEST_CASE("client_secret_basic form-encodes id and secret inside the Basic header",
          "[auth][token_request]") {
  for (const char* secret : kTrickySecrets) {
    INFO(secret);
    const TokenRequest req = client_secret_basic_request("client:id with space", secret);
    const auto credentials = read_basic(req.authorization);
    CHECK(credentials.first == "client:id with space");
    CHECK(credentials.second == secret);
    CHECK(req.body == "grant_type=client_credentials");
  }
  // The exact bytes for one case: "a b" -> "a+b", ":" -> "%3A", "+" -> "%2B".
  CHECK(client_secret_basic_request("a b", "x:+").authorization ==
        "Basic " + base64_encode("a+b:x%3A%2B"));
}

TEST_CASE("client_secret_post puts the credentials in the form", "[auth][token_request]") {
  for (const char* secret : kTrickySecrets) {
    INFO(secret);
    const TokenRequest req = client_secret_post_request("my client", secret, "system/*.write");
    CHECK(req.authorization.empty());
    const auto fields = parse_form(req.body);
    CHECK(fields.size() == 4);
    CHECK(fields.at("grant_type") == "client_credentials");
    CHECK(fields.at("client_id") == "my client");
    CHECK(fields.at("client_secret") == secret);
    CHECK(fields.at("scope") == "system/*.write");
  }
  CHECK(client_secret_post_request("id", "a&b=c+d").body ==
        "grant_type=client_credentials&client_id=id&client_secret=a%26b%3Dc%2Bd");
}

TEST_CASE("private_key_jwt sends the assertion with its type", "[auth][token_request]") {
  const TokenRequest req = private_key_jwt_request("aaa.bbb.ccc", "system/Observation.write");
  CHECK(req.authorization.empty());
  CHECK(req.body ==
        "grant_type=client_credentials"
        "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
        "&client_assertion=aaa.bbb.ccc&scope=system%2FObservation.write");
  CHECK(private_key_jwt_request("x.y.z").body.find("scope") == std::string::npos);
  CHECK(TokenRequest::content_type == "application/x-www-form-urlencoded");
}

TEST_CASE("Plain HTTP Basic and Bearer headers", "[auth][token_request]") {
  const Result<std::string> basic = basic_authorization("Aladdin", "open sesame");
  REQUIRE(basic);
  CHECK(*basic == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");  // RFC 7617 section 2
  CHECK(basic_authorization("user", "pass:with:colons").ok());
  const Result<std::string> colon = basic_authorization("us:er", "x");
  REQUIRE_FALSE(colon);
  CHECK(colon.error().code == Errc::bad_config);
  CHECK_FALSE(basic_authorization("user", "line\r\nbreak"));
  CHECK(bearer_authorization("abc.def") == "Bearer abc.def");
}

TEST_CASE("Client authentication method names parse", "[auth][token_request]") {
  CHECK(parse_client_auth_method("client_secret_basic").value() ==
        ClientAuthMethod::client_secret_basic);
  CHECK(parse_client_auth_method("private_key_jwt").value() == ClientAuthMethod::private_key_jwt);
  CHECK(name(ClientAuthMethod::client_secret_post) == "client_secret_post");
  CHECK(parse_client_auth_method("client_secret_jwt").error().code == Errc::bad_config);
}

TEST_CASE("A token response gives the token and its lifetime", "[auth][token_request]") {
  const Result<AccessToken> t = parse_token_response(
      200, R"({"access_token":"eyJ.abc-_~+/=","token_type":"Bearer","expires_in":3600,)"
           R"("scope":"system/*.write"})");
  REQUIRE(t);
  CHECK(t->value == "eyJ.abc-_~+/=");
  CHECK(t->expires_in == 3600s);
  CHECK(t->expires_in_given);
  CHECK(t->scope == "system/*.write");

  // token_type in any case; expires_in as a string; no expires_in -> the default.
  const auto lower =
      parse_token_response(200, R"({"access_token":"t","token_type":"bearer"})", 90s);
  REQUIRE(lower);
  CHECK(lower->expires_in == 90s);
  CHECK_FALSE(lower->expires_in_given);
  const auto quoted =
      parse_token_response(201, R"({"access_token":"t","token_type":"BEARER","expires_in":"120"})");
  REQUIRE(quoted);
  CHECK(quoted->expires_in == 120s);
  const auto huge = parse_token_response(
      200, R"({"access_token":"t","token_type":"Bearer","expires_in":99999999999999999999})");
  REQUIRE(huge);
  CHECK(huge->expires_in == kMaxTokenLifetime);
}

TEST_CASE("OAuth error responses are refusals that quote the server", "[auth][token_request]") {
  const Result<AccessToken> r = parse_token_response(
      401, R"({"error":"invalid_client","error_description":"Client authentication failed"})");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::auth_token_refused);
  CHECK(r.error().message.find("HTTP 401") != std::string::npos);
  CHECK(r.error().message.find("invalid_client") != std::string::npos);
  CHECK(r.error().message.find("Client authentication failed") != std::string::npos);
  CHECK(info(r.error().code).retryable);

  // An error object wins even with a 200; control characters in the description are replaced.
  const auto odd = parse_token_response(200,
                                        "{\"error\":\"invalid_scope\",\"error_description\":"
                                        "\"bad\\r\\nInjected: header\"}");
  REQUIRE_FALSE(odd);
  CHECK(odd.error().code == Errc::auth_token_refused);
  CHECK(odd.error().message.find('\n') == std::string::npos);
  CHECK(odd.error().message.find("invalid_scope") != std::string::npos);

  const auto long_text = parse_token_response(
      400, R"({"error":"invalid_request","error_description":")" + std::string(5000, 'x') + "\"}");
  REQUIRE_FALSE(long_text);
  CHECK(long_text.error().message.size() < 400);
}

TEST_CASE("Unusable token responses fail without quoting the token", "[auth][token_request]") {
  const auto code_of = [](int status, std::string_view body) {
    const Result<AccessToken> r = parse_token_response(status, body);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("secret-token") == std::string::npos);
    return r.error().code;
  };
  CHECK(code_of(503, "Service Unavailable") == Errc::auth_token_failed);
  CHECK(code_of(500, R"({"access_token":"secret-token","token_type":"Bearer"})") ==
        Errc::auth_token_failed);
  CHECK(code_of(200, "<html>login</html>") == Errc::auth_token_failed);
  CHECK(code_of(200, R"(["secret-token"])") == Errc::auth_token_failed);
  CHECK(code_of(200, R"({"token_type":"Bearer"})") == Errc::auth_token_failed);
  CHECK(code_of(200, R"({"access_token":"","token_type":"Bearer"})") == Errc::auth_token_failed);
  CHECK(code_of(200, R"({"access_token":"secret-token"})") == Errc::auth_token_failed);
  CHECK(code_of(200, R"({"access_token":"secret-token","token_type":"mac"})") ==
        Errc::auth_token_failed);
  CHECK(code_of(200, R"({"access_token":"secret-token\r\nX-Evil: 1","token_type":"Bearer"})") ==
        Errc::auth_token_failed);
  CHECK(code_of(200, R"({"access_token":"secret token","token_type":"Bearer"})") ==
        Errc::auth_token_failed);
  CHECK(code_of(200, R"({"access_token":"secret-token","token_type":"Bearer","expires_in":0})") ==
        Errc::auth_token_failed);
  CHECK(code_of(200, R"({"access_token":"secret-token","token_type":"Bearer","expires_in":-5})") ==
        Errc::auth_token_failed);
  CHECK(code_of(200,
                R"({"access_token":"secret-token","token_type":"Bearer","expires_in":"soon"})") ==
        Errc::auth_token_failed);
  CHECK(code_of(200, R"({"access_token":"secret-token","token_type":"Bearer"} trailing)") ==
        Errc::auth_token_failed);
}
