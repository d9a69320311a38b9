#include "common/utf8.h"

#include <cstdint>
#include <cstring>

namespace adapter {

std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  const unsigned char c = p[i];
  if (c < 0x80) return 1;
  auto cont = [&](std::size_t k) { return i + k < n && (p[i + k] & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && p[i + 1] < 0xA0) return 0;   // overlong
    if (c == 0xED && p[i + 1] >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && p[i + 1] < 0x90) return 0;   // overlong
    if (c == 0xF4 && p[i + 1] >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

bool is_ascii(std::string_view text) {
  const char* p = text.data();
  std::size_t n = text.size();
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    if (w & 0x8080808080808080ULL) return false;
    p += 8;
    n -= 8;
  }
  while (n--) {
    if (static_cast<unsigned char>(*p++) >= 0x80) return false;
  }
  return true;
}

std::size_t find_invalid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    // Skip ASCII quickly, eight bytes at a time.
    while (i + 8 <= text.size()) {
      std::uint64_t w;
      std::memcpy(&w, text.data() + i, 8);
      if (w & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= text.size()) break;
    const std::size_t len = utf8_sequence_length(text, i);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void append_latin1_as_utf8(std::string& out, std::string_view text) {
  out.reserve(out.size() + text.size() + text.size() / 8);
  for (char ch : text) append_utf8(out, static_cast<unsigned char>(ch));
}

void append_utf8_as_latin1(std::string& out, std::string_view text, char replacement) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t len = utf8_sequence_length(text, i);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (len == 2 && c <= 0xC3) {  // U+0080..U+00FF
      const auto c2 = static_cast<unsigned char>(text[i + 1]);
      out.push_back(static_cast<char>(((c & 0x03) << 6) | (c2 & 0x3F)));
    } else {
      out.push_back(replacement);
    }
    i += len == 0 ? 1 : len;
  }
}

}  // namespace adapter
