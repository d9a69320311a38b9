// The escape rules of escape.h, one by one, and the encoder round trip.
#include "hl7v2/escape.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "hl7v2/message.h"
#include "unit/hl7v2/support.h"

using namespace adapter;
using namespace adapter::hl7v2;
using namespace adapter::hl7v2::test;

namespace {

std::string decode(std::string_view raw, const Delimiters& d = {}, Charset cs = Charset::utf8) {
  std::string out;
  append_decoded(out, raw, d, cs);
  return out;
}

std::string encode(std::string_view text, const Delimiters& d = {}) {
  std::string out;
  append_escaped(out, text, d);
  return out;
}

Delimiters with_truncation(char t) {
  Delimiters d;
  d.truncation = t;
  return d;
}

// "MSH|!~$&|": component '!', repetition '~', escape '$', subcomponent '&'.
Delimiters escape_delimiters() {
  Delimiters d;
  d.field = '|';
  d.component = '!';
  d.repetition = '~';
  d.escape = '$';
  d.subcomponent = '&';
  return d;
}

// Random valid UTF-8, rich in delimiters, escape-like text, CR and LF.
std::string random_text(std::mt19937& rng, const Delimiters& d) {
  const std::string specials =
      std::string{d.field, d.component, d.repetition, d.subcomponent} +
      (d.escape != '\0' ? std::string(1, d.escape) : std::string()) +
      (d.truncation != '\0' ? std::string(1, d.truncation) : std::string()) + "\r\n\\XFSTREP.br\"";
  std::uniform_int_distribution<int> length(0, 40);
  std::uniform_int_distribution<int> kind(0, 9);
  std::uniform_int_distribution<std::size_t> special(0, specials.size() - 1);
  std::uniform_int_distribution<std::uint32_t> ascii(0x01, 0x7F);
  std::uniform_int_distribution<std::uint32_t> bmp(0x80, 0xFFFD);
  std::uniform_int_distribution<std::uint32_t> astral(0x10000, 0x10FFFF);
  std::string s;
  const int n = length(rng);
  for (int i = 0; i < n; ++i) {
    const int k = kind(rng);
    if (k < 4) {
      s.push_back(specials[special(rng)]);
    } else if (k < 7) {
      put_utf8(s, ascii(rng));
    } else if (k < 9) {
      std::uint32_t cp = bmp(rng);
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xE9;  // no surrogates
      put_utf8(s, cp);
    } else {
      put_utf8(s, astral(rng));
    }
  }
  return s;
}

}  // namespace

TEST_CASE("escape: the five delimiter escapes decode to the declared characters",
          "[hl7v2][escape]") {
  CHECK(decode("a\\F\\b") == "a|b");
  CHECK(decode("a\\S\\b") == "a^b");
  CHECK(decode("a\\T\\b") == "a&b");
  CHECK(decode("a\\R\\b") == "a~b");
  CHECK(decode("a\\E\\b") == "a\\b");
  CHECK(decode("\\F\\\\S\\\\T\\\\R\\\\E\\") == "|^&~\\");
  CHECK(decode("no escapes at all") == "no escapes at all");
  CHECK(decode("") == "");
  CHECK(decode("x", Delimiters{}, Charset::latin1) == "x");
}

TEST_CASE("escape: P decodes only when a truncation character is declared", "[hl7v2][escape]") {
  CHECK(decode("a\\P\\b", with_truncation('#')) == "a#b");
  CHECK(decode("a\\P\\b") == "a\\P\\b");  // none declared: verbatim
}

TEST_CASE("escape: hexadecimal data in the message character set", "[hl7v2][escape]") {
  CHECK(decode("\\X41\\") == "A");
  CHECK(decode("<\\X414243\\>") == "<ABC>");
  CHECK(decode("caf\\XC3A9\\") == "caf\xC3\xA9");
  CHECK(decode("caf\\Xc3a9\\") == "caf\xC3\xA9");  // lower-case digits
  CHECK(decode("\\XE282AC\\") == "\xE2\x82\xAC");  // euro sign, three bytes
  // 8859/1: each byte is a code point, output is UTF-8.
  CHECK(decode("caf\\XE9\\", Delimiters{}, Charset::latin1) == "caf\xC3\xA9");
  CHECK(decode("\\XFC\\", Delimiters{}, Charset::latin1) == "\xC3\xBC");
  // Bytes that are not valid in the character set, or digits that are not hex pairs: verbatim.
  CHECK(decode("caf\\XE9\\") == "caf\\XE9\\");
  CHECK(decode("\\XE9\\", Delimiters{}, Charset::ascii) == "\\XE9\\");
  CHECK(decode("\\XC3\\") == "\\XC3\\");  // a lead byte alone
  CHECK(decode("\\XZZ\\") == "\\XZZ\\");
  CHECK(decode("\\X4\\") == "\\X4\\");
  CHECK(decode("\\X414\\") == "\\X414\\");
  CHECK(decode("\\X\\") == "\\X\\");
  CHECK(decode("\\X0D\\") == "\r");
}

TEST_CASE("escape: formatting commands", "[hl7v2][escape]") {
  CHECK(decode("line one\\.br\\line two") == "line one\nline two");
  CHECK(decode("a\\.sp\\b") == "a\nb");
  CHECK(decode("a\\.sp2\\b") == "a\nb");  // N blank lines are not synthesised
  // Layout only: removed.
  CHECK(decode("a\\.fi\\b") == "ab");
  CHECK(decode("a\\.nf\\b") == "ab");
  CHECK(decode("a\\.in+4\\b") == "ab");
  CHECK(decode("a\\.in-2\\b") == "ab");
  CHECK(decode("a\\.ti-2\\b") == "ab");
  CHECK(decode("a\\.ti+3\\b") == "ab");
  CHECK(decode("a\\.sk3\\b") == "ab");
  CHECK(decode("a\\.ce\\b") == "ab");
  CHECK(decode("a\\.sp 2\\b") == "a\nb");  // the spec writes ".sp <number>"
  CHECK(decode("a\\.in 4\\b") == "ab");
  CHECK(decode("a\\.in4\\b") == "ab");
  // Not one of the documented commands: "any other sequence" is kept verbatim.
  CHECK(decode("a\\.spam\\b") == "a\\.spam\\b");
  CHECK(decode("a\\.finish\\b") == "a\\.finish\\b");
  CHECK(decode("a\\.center\\b") == "a\\.center\\b");
  CHECK(decode("a\\.zz\\b") == "a\\.zz\\b");
  CHECK(decode("a\\.\\b") == "a\\.\\b");
  CHECK(decode("a\\.br2\\b") == "a\\.br2\\b");
  CHECK(decode("a\\.sp-1\\b") == "a\\.sp-1\\b");
  CHECK(decode("a\\.in\\b") == "a\\.in\\b");  // an indent needs its number
  CHECK(decode("a\\.sk+\\b") == "a\\.sk+\\b");
  CHECK(decode("a\\.ti+\\b") == "a\\.ti+\\b");
}

TEST_CASE("escape: highlighting is removed and the text between is kept", "[hl7v2][escape]") {
  CHECK(decode("\\H\\x\\N\\") == "x");
  CHECK(decode("see \\H\\recommendations\\N\\ below") == "see recommendations below");
  CHECK(decode("\\H\\\\N\\") == "");
}

TEST_CASE("escape: character set switches and unknown sequences are kept verbatim",
          "[hl7v2][escape]") {
  CHECK(decode("a\\C2842\\b") == "a\\C2842\\b");
  CHECK(decode("a\\M2442\\b") == "a\\M2442\\b");
  CHECK(decode("a\\M244241\\b") == "a\\M244241\\b");
  CHECK(decode("a\\Zcustom\\b") == "a\\Zcustom\\b");
  CHECK(decode("a\\Q\\b") == "a\\Q\\b");
  CHECK(decode("a\\FF\\b") == "a\\FF\\b");
  CHECK(decode("a\\\\b") == "a\\\\b");  // empty sequence
}

TEST_CASE("escape: an unterminated sequence is kept as written", "[hl7v2][escape]") {
  CHECK(decode("abc\\F") == "abc\\F");
  CHECK(decode("\\") == "\\");
  CHECK(decode("a\\F\\b\\S") == "a|b\\S");
  CHECK(decode("path C:\\temp") == "path C:\\temp");
}

TEST_CASE("escape: custom delimiters with escape character dollar", "[hl7v2][escape]") {
  const Delimiters d = escape_delimiters();
  CHECK(decode("a$F$b", d) == "a|b");
  CHECK(decode("a$S$b", d) == "a!b");
  CHECK(decode("a$T$b", d) == "a&b");
  CHECK(decode("a$R$b", d) == "a~b");
  CHECK(decode("a$E$b", d) == "a$b");
  CHECK(decode("a$X41$b", d) == "aAb");
  CHECK(decode("a$.br$b", d) == "a\nb");
  CHECK(decode("a\\S\\b", d) == "a\\S\\b");  // backslash is an ordinary character here
  CHECK(encode("a!b$c\\d", d) == "a$S$b$E$c\\d");
  CHECK(needs_decoding("a$b", d));
  CHECK_FALSE(needs_decoding("a\\b", d));

  // And through a parsed message that declares them.
  auto m = Message::parse(
      std::string_view("MSH|!~$&|APP||||||ORU!R01|1|P|2.5.1\rNTE|1||x$S$y!z~w$T$v\r"));
  REQUIRE(m.ok());
  CHECK(m->delimiters().escape == '$');
  auto nte3 = m->get("NTE-3");
  REQUIRE(nte3.ok());
  CHECK(nte3->repetition_count() == 2);
  CHECK(nte3->component(1).text() == "x!y");
  CHECK(nte3->component(2).text() == "z");
  CHECK(nte3->repetition(2).text() == "w&v");
}

TEST_CASE("escape: T without a declared subcomponent separator is kept", "[hl7v2][escape]") {
  // MSH-2 "^~\" declares an escape character but no subcomponent separator.
  Delimiters d;
  d.subcomponent = '\0';
  CHECK(decode("a\\T\\b", d) == "a\\T\\b");
  CHECK(decode("a\\S\\b", d) == "a^b");
  const std::string nul("a\0b", 3);
  CHECK(encode(nul, d) == nul);  // NUL is not a delimiter
  CHECK(decode(encode("x&y", d), d) == "x&y");
  auto m = Message::parse(std::string_view("MSH|^~\\|A\rNTE|1||p\\T\\q&r\\S\\s\r"));
  REQUIRE(m.ok());
  CHECK(m->delimiters().subcomponent == '\0');
  CHECK(m->delimiters().encoding_characters() == "^~\\");
  CHECK(m->get("NTE-3")->text() == "p\\T\\q&r^s");
}

TEST_CASE("escape: no escape character declared means nothing is decoded", "[hl7v2][escape]") {
  Delimiters d;
  d.escape = '\0';
  CHECK(decode("a\\F\\b", d) == "a\\F\\b");
  CHECK_FALSE(needs_decoding("a\\F\\b", d));
  CHECK(needs_decoding("a\\F\\b", Delimiters{}));
  CHECK_FALSE(needs_decoding("plain", Delimiters{}));
}

TEST_CASE("escape: the encoder escapes every delimiter CR and LF", "[hl7v2][escape]") {
  CHECK(encode("a|b^c~d\\e&f") == "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f");
  CHECK(encode("x\ny") == "x\\.br\\y");
  CHECK(encode("x\ry") == "x\\X0D\\y");
  CHECK(encode("x#y") == "x#y");
  CHECK(encode("x#y", with_truncation('#')) == "x\\P\\y");
  CHECK(encode("caf\xC3\xA9") == "caf\xC3\xA9");
  CHECK(encode("") == "");
}

TEST_CASE("escape: decode of encode is the identity on random UTF-8 text", "[hl7v2][escape]") {
  std::mt19937 rng(20240315u);
  const Delimiters sets[] = {Delimiters{}, with_truncation('#'), escape_delimiters()};
  for (const Delimiters& d : sets) {
    for (int i = 0; i < 3000; ++i) {
      const std::string s = random_text(rng, d);
      const std::string escaped = encode(s, d);
      INFO("input: " << s << "\nescaped: " << escaped);
      // The escaped form holds no character that would split it.
      std::string splitters = {d.field, d.component, d.repetition, d.subcomponent, '\r', '\n'};
      if (d.truncation != '\0') splitters.push_back(d.truncation);
      REQUIRE(escaped.find_first_of(splitters) == std::string::npos);
      REQUIRE(decode(escaped, d) == s);
    }
  }
  // Fixed strings that once looked like escapes.
  for (std::string_view s : {"\\F\\", "\\X41\\", "\\.br\\", "\\H\\x\\N\\", "\\", "\\\\", "a\\"}) {
    CHECK(decode(encode(s)) == s);
  }
}
