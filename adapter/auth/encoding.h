// Text encodings the authentication code needs: Base64 (HTTP Basic), Base64url without padding
// (JWS, RFC 7515 section 2) and application/x-www-form-urlencoded (OAuth2 token requests).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace adapter::auth {

// Standard Base64 with '=' padding (RFC 4648 section 4).
std::string base64_encode(std::string_view bytes);

// Base64url without padding (RFC 4648 section 5, as JWS uses it).
std::string base64url_encode(std::string_view bytes);

// Decodes Base64url with or without padding; nullopt for any character outside the alphabet or an
// impossible length.
std::optional<std::string> base64url_decode(std::string_view text);

// Lowercase hex.
std::string hex_encode(std::string_view bytes);

// One name or value in the application/x-www-form-urlencoded serialisation (WHATWG URL standard,
// which RFC 6749 appendix B refers to): ASCII letters, digits and "*-._" stay, a space becomes '+',
// every other byte (UTF-8 included) becomes %XX with uppercase hex.
//   form_urlencode("a b&c+d") == "a+b%26c%2Bd"
std::string form_urlencode(std::string_view text);

// Builds a form body: name=value pairs joined by '&', both sides encoded.
class FormBody {
 public:
  FormBody& add(std::string_view name, std::string_view value);
  const std::string& str() const& { return body_; }
  std::string str() && { return std::move(body_); }

 private:
  std::string body_;
};

}  // namespace adapter::auth
