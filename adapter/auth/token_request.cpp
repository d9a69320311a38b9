#include "auth/token_request.h"

#include <rapidjson/document.h>

#include <charconv>

#include "auth/encoding.h"

namespace adapter::auth {
namespace {

using rapidjson::Value;

constexpr std::string_view kJwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
constexpr std::size_t kMaxQuotedChars = 200;

// The member `key` of an object, or nullptr (HasMember: RapidJSON 1.1 iterator comparison is
// ambiguous under C++20).
const Value* member(const Value& obj, const char* key) {
  return obj.IsObject() && obj.HasMember(key) ? &obj[key] : nullptr;
}

std::string_view string_of(const Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

// Server text made safe for a log line: printable ASCII only, at most 200 characters.
std::string sanitised(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxQuotedChars)) {
    out += (c >= 0x20 && c <= 0x7E) ? c : '?';
  }
  if (text.size() > kMaxQuotedChars) out += "...";
  return out;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) {
      return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// A token goes verbatim into "Authorization: Bearer <token>": visible ASCII only, so that a
// hostile or broken server cannot inject header lines.
bool header_safe(std::string_view token) {
  for (char c : token) {
    if (c < 0x21 || c > 0x7E) return false;
  }
  return !token.empty();
}

bool control_free(std::string_view text) {
  for (char c : text) {
    if ((c >= 0 && c < 0x20) || c == 0x7F) return false;
  }
  return true;
}

Error failed(std::string message) {
  return make_error(Errc::auth_token_failed, std::move(message));
}

// expires_in as a positive number of seconds: a JSON integer, or a string of digits (some
// servers quote it). 0 when it is something else.
std::int64_t expires_in_seconds(const Value& v) {
  if (v.IsInt64()) return v.GetInt64();
  if (v.IsUint64()) return kMaxTokenLifetime.count();  // beyond int64: clamp
  if (v.IsDouble()) {
    const double d = v.GetDouble();
    if (!(d > 0)) return 0;
    return d >= static_cast<double>(kMaxTokenLifetime.count()) ? kMaxTokenLifetime.count()
                                                               : static_cast<std::int64_t>(d);
  }
  if (v.IsString()) {
    const std::string_view s = string_of(v);
    std::int64_t n = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc::result_out_of_range) return kMaxTokenLifetime.count();
    if (ec != std::errc() || end != s.data() + s.size()) return 0;
    return n;
  }
  return 0;
}

TokenRequest with_scope(FormBody form, std::string_view scope, std::string authorization = {}) {
  if (!scope.empty()) form.add("scope", scope);
  return TokenRequest{std::move(form).str(), std::move(authorization)};
}

}  // namespace

std::string_view name(ClientAuthMethod method) {
  switch (method) {
    case ClientAuthMethod::client_secret_basic:
      return "client_secret_basic";
    case ClientAuthMethod::client_secret_post:
      return "client_secret_post";
    case ClientAuthMethod::private_key_jwt:
      return "private_key_jwt";
  }
  return "unknown";
}

Result<ClientAuthMethod> parse_client_auth_method(std::string_view text) {
  for (auto m : {ClientAuthMethod::client_secret_basic, ClientAuthMethod::client_secret_post,
                 ClientAuthMethod::private_key_jwt}) {
    if (text == name(m)) return m;
  }
  return make_error(Errc::bad_config,
                    "unknown client authentication method '" + sanitised(text) +
                        "' (use client_secret_basic, client_secret_post or private_key_jwt)");
}

TokenRequest client_secret_basic_request(std::string_view client_id, std::string_view client_secret,
                                         std::string_view scope) {
  const std::string credentials = form_urlencode(client_id) + ':' + form_urlencode(client_secret);
  FormBody form;
  form.add("grant_type", "client_credentials");
  return with_scope(std::move(form), scope, "Basic " + base64_encode(credentials));
}

TokenRequest client_secret_post_request(std::string_view client_id, std::string_view client_secret,
                                        std::string_view scope) {
  FormBody form;
  form.add("grant_type", "client_credentials")
      .add("client_id", client_id)
      .add("client_secret", client_secret);
  return with_scope(std::move(form), scope);
}

TokenRequest private_key_jwt_request(std::string_view client_assertion, std::string_view scope) {
  FormBody form;
  form.add("grant_type", "client_credentials")
      .add("client_assertion_type", kJwtBearer)
      .add("client_assertion", client_assertion);
  return with_scope(std::move(form), scope);
}

Result<std::string> basic_authorization(std::string_view user, std::string_view password) {
  if (user.find(':') != std::string_view::npos) {
    return make_error(Errc::bad_config, "an HTTP Basic user name cannot contain ':'");
  }
  if (!control_free(user) || !control_free(password)) {
    return make_error(Errc::bad_config, "HTTP Basic credentials cannot contain control characters");
  }
  std::string credentials(user);
  credentials += ':';
  credentials += password;
  return "Basic " + base64_encode(credentials);
}

std::string bearer_authorization(std::string_view token) {
  return "Bearer " + std::string(token);
}

Result<AccessToken> parse_token_response(int http_status, std::string_view body,
                                         std::chrono::seconds default_lifetime) {
  const std::string status = "HTTP " + std::to_string(http_status);
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  const bool is_object = !doc.HasParseError() && doc.IsObject();

  // An OAuth error response (RFC 6749 section 5.2), whatever the status.
  if (const Value* error = is_object ? member(doc, "error") : nullptr) {
    std::string message = "the token endpoint refused the request (" + status + "): ";
    message += error->IsString() ? sanitised(string_of(*error)) : "(no error code)";
    const Value* description = member(doc, "error_description");
    if (description != nullptr && description->IsString() && description->GetStringLength() > 0) {
      message += " - " + sanitised(string_of(*description));
    }
    return make_error(Errc::auth_token_refused, std::move(message));
  }
  if (http_status < 200 || http_status > 299) {
    return failed("the token endpoint answered " + status + " without an OAuth error");
  }
  if (!is_object) return failed("the token response (" + status + ") is not a JSON object");

  const Value* token = member(doc, "access_token");
  if (token == nullptr || !token->IsString() || token->GetStringLength() == 0) {
    return failed("the token response has no access_token");
  }
  if (!header_safe(string_of(*token))) {
    return failed("the access_token contains characters that cannot be sent in a header");
  }
  const Value* type = member(doc, "token_type");
  if (type == nullptr || !type->IsString()) return failed("the token response has no token_type");
  if (!equals_ignoring_case(string_of(*type), "bearer")) {
    return failed("the token_type is '" + sanitised(string_of(*type)) + "', not Bearer");
  }

  AccessToken out;
  out.value = std::string(string_of(*token));
  out.expires_in = default_lifetime;
  if (const Value* expires = member(doc, "expires_in"); expires != nullptr && !expires->IsNull()) {
    const std::int64_t seconds = expires_in_seconds(*expires);
    if (seconds <= 0) return failed("the token response's expires_in is not a positive number");
    out.expires_in = std::min(std::chrono::seconds(seconds), kMaxTokenLifetime);
    out.expires_in_given = true;
  }
  if (const Value* scope = member(doc, "scope"); scope != nullptr && scope->IsString()) {
    out.scope = std::string(string_of(*scope));
  }
  return out;
}

}  // namespace adapter::auth
