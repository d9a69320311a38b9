#include "auth/encoding.h"

#include <cstdint>

namespace adapter::auth {
namespace {

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kBase64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kHexUpper[] = "0123456789ABCDEF";
constexpr char kHexLower[] = "0123456789abcdef";

std::string encode(std::string_view bytes, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n =
        static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i]) << 16) |
        static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1]) << 8) |
        static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[(n >> 18) & 0x3F];
    out += alphabet[(n >> 12) & 0x3F];
    out += alphabet[(n >> 6) & 0x3F];
    out += alphabet[n & 0x3F];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 0) return out;
  std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i]) << 16);
  if (rest == 2) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1]) << 8);
  out += alphabet[(n >> 18) & 0x3F];
  out += alphabet[(n >> 12) & 0x3F];
  if (rest == 2) out += alphabet[(n >> 6) & 0x3F];
  if (pad) out.append(rest == 1 ? 2 : 1, '=');
  return out;
}

// Value of a Base64url character, or -1.
int base64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

bool form_safe(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '*' ||
         c == '-' || c == '.' || c == '_';
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  return encode(bytes, kBase64, true);
}

std::string base64url_encode(std::string_view bytes) {
  return encode(bytes, kBase64url, false);
}

std::optional<std::string> base64url_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;  // 6 bits cannot make a byte
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = base64url_value(c);
    if (v < 0) return std::nullopt;
    acc = ((acc << 6) | static_cast<std::uint32_t>(v)) & 0xFFFF;  // only the last 14 bits matter
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // The unused low bits of the last character must be zero, so every byte string has exactly one
  // spelling (a JWS with a changed final character must not verify as the same signature).
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string hex_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += kHexLower[b >> 4];
    out += kHexLower[b & 0xF];
  }
  return out;
}

std::string form_urlencode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (form_safe(b)) {
      out += c;
    } else if (b == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHexUpper[b >> 4];
      out += kHexUpper[b & 0xF];
    }
  }
  return out;
}

FormBody& FormBody::add(std::string_view name, std::string_view value) {
  if (!body_.empty()) body_ += '&';
  body_ += form_urlencode(name);
  body_ += '=';
  body_ += form_urlencode(value);
  return *this;
}

}  // namespace adapter::auth
