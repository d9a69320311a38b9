// UTF-8 validation and Latin-1 conversion (character sets of HL7 v2 MSH-18).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace adapter {

// Length of the valid UTF-8 sequence starting at text[i], or 0 if the bytes there are not valid
// UTF-8 (overlong forms, surrogates and code points above U+10FFFF are invalid).
std::size_t utf8_sequence_length(std::string_view text, std::size_t i);

// Offset of the first byte that is not valid UTF-8, or npos when the whole text is valid.
std::size_t find_invalid_utf8(std::string_view text);

// True when every byte is below 0x80 (fast path: no conversion or validation needed).
bool is_ascii(std::string_view text);

// Appends `text` read as ISO 8859-1 (each byte is the code point) as UTF-8.
void append_latin1_as_utf8(std::string& out, std::string_view text);

// Appends `text`, with each byte that is not valid UTF-8 replaced by what replace(out, byte)
// appends (an escape sequence, say), so the result is valid UTF-8 and says what was there.
template <class Replace>
void append_utf8_replacing_invalid(std::string& out, std::string_view text, Replace&& replace) {
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t len = utf8_sequence_length(text, i);
    if (len > 0) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      replace(out, static_cast<unsigned char>(text[i++]));
    }
  }
}

// Appends the two uppercase hex digits of `byte`.
inline void append_hex_byte(std::string& out, unsigned char byte) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out.push_back(kHex[byte >> 4]);
  out.push_back(kHex[byte & 0xF]);
}

// Appends valid UTF-8 `text` as ISO 8859-1; characters above U+00FF become `replacement`.
void append_utf8_as_latin1(std::string& out, std::string_view text, char replacement = '?');

// Appends the UTF-8 encoding of code point `cp` (must be a valid scalar value).
void append_utf8(std::string& out, char32_t cp);

}  // namespace adapter
