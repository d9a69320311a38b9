#include "common/utf8.h"

#include <catch2/catch.hpp>

#include "common/json_text.h"

using namespace adapter;

TEST_CASE("UTF-8 validation accepts valid text and finds the first bad byte", "[common][utf8]") {
  CHECK(find_invalid_utf8("plain ascii") == std::string_view::npos);
  CHECK(find_invalid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\xA7\xAC") == std::string_view::npos);
  CHECK(find_invalid_utf8("abc\xE9") == 3);                      // Latin-1 e-acute alone
  CHECK(find_invalid_utf8("\xC0\xAF") == 0);                     // overlong '/'
  CHECK(find_invalid_utf8("x\xED\xA0\x80") == 1);                // UTF-16 surrogate
  CHECK(find_invalid_utf8("0123456789\xF4\x90\x80\x80") == 10);  // above U+10FFFF
  CHECK(find_invalid_utf8("\xE2\x82") == 0);                     // cut short
}

TEST_CASE("Latin-1 converts to UTF-8 byte by byte", "[common][utf8]") {
  std::string out;
  append_latin1_as_utf8(out, "M\xFCller \xA9");
  CHECK(out == "M\xC3\xBCller \xC2\xA9");
  CHECK(is_ascii("only ascii here, 8 bytes and more"));
  CHECK_FALSE(is_ascii("only ascii here, then \xFF"));
}

TEST_CASE("JSON strings escape control characters and invalid bytes", "[common][json]") {
  std::string out;
  append_json_string(out, "a\"b\\c\nd\re\x01 \xC3\xA9 \xFF");
  CHECK(out == "\"a\\\"b\\\\c\\nd\\re\\u0001 \xC3\xA9 \\u00ff\"");
}

TEST_CASE("escape_controls writes control characters as JSON does and keeps the rest",
          "[common][json]") {
  CHECK(escape_controls("plain text, caf\xC3\xA9") == "plain text, caf\xC3\xA9");
  CHECK(escape_controls("a\nb\rc\td\x01\x7F\"\\") == "a\\nb\\rc\\td\\u0001\\u007f\"\\");
}
