// Message::parse: delimiters, separators, access at every level, ranges, nulls, character sets,
// and errors returned as values with their location.
#include "hl7v2/message.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace adapter;
using namespace adapter::hl7v2;

namespace {

Message parse_msg_ok(std::string_view bytes, const ParseOptions& options = {}) {
  auto r = Message::parse(bytes, options);
  if (!r) FAIL("parse failed: " << r.error().to_string());
  return std::move(r).value();
}

ParseError parse_error(std::string_view bytes, const ParseOptions& options = {}) {
  auto r = Message::parse(bytes, options);
  if (r) FAIL("parse unexpectedly succeeded");
  return r.error();
}

std::string msg_txt(const Message& m, std::string_view path) {
  auto v = m.get(path);
  INFO(path);
  REQUIRE(v.ok());
  return v->text();
}

Value msg_val(const Message& m, std::string_view path) {
  auto v = m.get(path);
  INFO(path);
  REQUIRE(v.ok());
  return *v;
}

// An MSH with fields 3.. given (MSH-3 first), joined with '|'.
std::string msh(std::initializer_list<std::string_view> fields_from_3) {
  std::string s = "MSH|^~\\&";
  for (std::string_view f : fields_from_3) {
    s += '|';
    s += f;
  }
  return s;
}

// MSH with MSH-18 set.
std::string msh_charset(std::string_view charset) {
  return msh({"APP", "FAC", "RCV", "RFAC", "20240101", "", "ORU^R01", "CTRL-1", "P", "2.5.1", "",
              "", "", "", "", charset});
}

std::vector<std::string> texts(Value::Range range) {
  std::vector<std::string> out;
  for (Value v : range) out.push_back(v.text());
  return out;
}

const std::string kSimple =
    msh({"APP", "FAC", "RCV", "RFAC", "20240101", "", "ORU^R01^ORU_R01", "CTRL-1", "P", "2.5.1"}) +
    "\r"
    "PID|1||A1^^^H&1.2.3&ISO^MR~B2^^^L^PI||DOE^JANE~ROE^RICHARD||\r"
    "OBR|1|||81247-9^Panel^LN\r"
    "OBX|1|ST|c1^one^LN||first\r"
    "OBX|2|ST|c2^two^LN||second~third|||\"\"\r"
    "OBX|3|NM|c3^three^LN||\r";

}  // namespace

TEST_CASE("message: standard delimiters and literal MSH-1 and MSH-2", "[hl7v2][message]") {
  const Message m = parse_msg_ok(kSimple);
  const Delimiters& d = m.delimiters();
  CHECK(d.field == '|');
  CHECK(d.component == '^');
  CHECK(d.repetition == '~');
  CHECK(d.escape == '\\');
  CHECK(d.subcomponent == '&');
  CHECK(d.truncation == '\0');
  CHECK(d.encoding_characters() == "^~\\&");
  CHECK(m.msh(1).raw() == "|");
  CHECK(m.msh(1).text() == "|");
  CHECK(m.msh(2).raw() == "^~\\&");
  CHECK(m.msh(2).text() == "^~\\&");  // not decoded, not split
  CHECK_FALSE(m.msh(2).needs_decoding());
  CHECK(m.msh(2).component_count() == 1);
  CHECK(m.msh(2).repetition_count() == 1);
  CHECK(msg_txt(m, "MSH-1") == "|");
  CHECK(msg_txt(m, "MSH-2") == "^~\\&");
  CHECK(msg_txt(m, "MSH-3") == "APP");
  CHECK(msg_txt(m, "MSH-9.2") == "R01");
  CHECK(msg_txt(m, "MSH-10") == "CTRL-1");
  CHECK(m.segment(0).field_count() == 12);
  CHECK(m.segment(0).field(0).empty());
  CHECK(m.segment(0).field(13).empty());
}

TEST_CASE("message: a fifth encoding character declares truncation", "[hl7v2][message]") {
  const Message m =
      parse_msg_ok("MSH|^~\\&#|APP||||||ADT^A01|1|P|2.7\rNTE|1||cut#here \\P\\ and \\T\\\r");
  CHECK(m.delimiters().truncation == '#');
  CHECK(m.delimiters().subcomponent == '&');
  CHECK(m.delimiters().encoding_characters() == "^~\\&#");
  CHECK(m.msh(2).raw() == "^~\\&#");
  CHECK(msg_txt(m, "MSH-3") == "APP");
  CHECK(msg_txt(m, "NTE-3") == "cut#here # and &");
}

TEST_CASE("message: custom delimiters are used for every level", "[hl7v2][message]") {
  // field '#', component '!', repetition '@', escape '$', subcomponent '%'
  const Message m =
      parse_msg_ok("MSH#!@$%#APP#FAC#####ORU!R01#9#P#2.5.1\rPID#1##a!b%c@d#x$F$y$S$z\r");
  const Delimiters& d = m.delimiters();
  CHECK(d.field == '#');
  CHECK(d.component == '!');
  CHECK(d.repetition == '@');
  CHECK(d.escape == '$');
  CHECK(d.subcomponent == '%');
  CHECK(m.msh(1).raw() == "#");
  CHECK(m.msh(2).raw() == "!@$%");
  CHECK(msg_txt(m, "MSH-9.2") == "R01");
  CHECK(msg_txt(m, "MSH-10") == "9");
  const Value pid3 = msg_val(m, "PID-3");
  CHECK(pid3.repetition_count() == 2);
  CHECK(pid3.component(2).subcomponent(2).text() == "c");
  CHECK(pid3.repetition(2).text() == "d");
  CHECK(msg_txt(m, "PID-4") == "x#y!z");
  // Standard delimiters are ordinary text here.
  const Message std_chars = parse_msg_ok("MSH#!@$%#A|B^C~D\\E&F\r");
  CHECK(msg_txt(std_chars, "MSH-3") == "A|B^C~D\\E&F");
  CHECK(msg_val(std_chars, "MSH-3").component_count() == 1);
}

TEST_CASE("message: CR LF CRLF and mixed separators index the same segments", "[hl7v2][message]") {
  const std::string segs[] = {"MSH|^~\\&|A||||||ADT^A01|1|P|2.5", "EVN|A01|2024", "PID|1||X^^^Y",
                              "PV1|1|I"};
  auto join = [&](std::initializer_list<std::string_view> seps) {
    std::string s;
    std::size_t i = 0;
    for (std::string_view sep : seps) {
      s += segs[i++];
      s += sep;
    }
    return s;
  };
  const std::vector<std::string> variants = {
      join({"\r", "\r", "\r", "\r"}),
      join({"\n", "\n", "\n", "\n"}),
      join({"\r\n", "\r\n", "\r\n", ""}),
      join({"\r", "\n", "\r\n", "\n\r"}),
      join({"\r\r", "\n\n\n", "\r\n\r\n", "\r\n\r\n\r\n"}),  // blank lines, trailing too
  };
  for (const std::string& bytes : variants) {
    INFO(bytes);
    const Message m = parse_msg_ok(bytes);
    REQUIRE(m.segment_count() == 4);
    for (std::size_t i = 0; i < 4; ++i) CHECK(m.segment(i).raw() == segs[i]);
    CHECK(msg_txt(m, "MSH-12") == "2.5");
    CHECK(msg_txt(m, "PID-3.4") == "Y");
    CHECK(msg_txt(m, "PV1-2") == "I");  // last field, before the separator
  }
  // Blank lines and a byte-order mark before MSH are skipped.
  const Message lead = parse_msg_ok("\xEF\xBB\xBF\r\n\r\n" + variants[0]);
  CHECK(lead.segment_count() == 4);
  CHECK(lead.text().substr(0, 3) == "MSH");
  CHECK(lead.text().size() == variants[0].size());
}

TEST_CASE("message: fields repetitions components and subcomponents", "[hl7v2][message]") {
  const Message m = parse_msg_ok(kSimple);
  REQUIRE(m.segment_count() == 6);
  const Segment pid = *m.find("PID");
  CHECK(pid.id() == "PID");
  CHECK(pid.index() == 1);
  CHECK(pid.field_count() == 7);  // "...||" at the end: fields 6 and 7 empty
  const Value f3 = pid.field(3);
  CHECK(f3.raw() == "A1^^^H&1.2.3&ISO^MR~B2^^^L^PI");
  CHECK(f3.repetition_count() == 2);
  // A field read as components reads its first repetition.
  CHECK(f3.component_count() == 5);
  CHECK(f3.component(1).text() == "A1");
  CHECK(f3.component(2).empty());
  CHECK(f3.component(4).raw() == "H&1.2.3&ISO");
  CHECK(f3.component(4).subcomponent_count() == 3);
  CHECK(f3.component(4).subcomponent(2).text() == "1.2.3");
  CHECK(f3.subcomponent(1).text() == "A1");  // field -> rep 1 -> comp 1 -> sub 1
  CHECK(f3.component(6).empty());
  CHECK(f3.component(0).empty());
  CHECK(f3.repetition(0).empty());
  CHECK(f3.repetition(3).empty());
  const Value rep2 = f3.repetition(2);
  CHECK(rep2.raw() == "B2^^^L^PI");
  CHECK(rep2.component_count() == 5);
  CHECK(rep2.component(5).text() == "PI");
  CHECK(rep2.repetition(1).raw() == rep2.raw());
  CHECK(rep2.repetition(2).empty());
  CHECK(rep2.repetition_count() == 1);
  // Lower levels have no further repetitions or components.
  const Value comp = rep2.component(4);
  CHECK(comp.component_count() == 1);
  CHECK(comp.component(1).text() == "L");
  CHECK(comp.component(2).empty());
  const Value sub = f3.component(4).subcomponent(3);
  CHECK(sub.text() == "ISO");
  CHECK(sub.subcomponent_count() == 1);
  CHECK(sub.subcomponent(1).text() == "ISO");
  CHECK(sub.subcomponent(2).empty());
  // Paths reach the same values.
  CHECK(msg_txt(m, "PID-3[2].5") == "PI");
  CHECK(msg_txt(m, "PID-3.4.2") == "1.2.3");
  CHECK(msg_txt(m, "PID-3[1].4.3") == "ISO");
  CHECK(msg_txt(m, "PID-5[2].2") == "RICHARD");
  CHECK(msg_val(m, "PID-99").empty());
  CHECK(msg_val(m, "ZZZ-1").empty());
  CHECK(msg_val(m, "PID-3[9].1").empty());
  // A path without field is the whole segment, literally.
  CHECK(msg_val(m, "OBR").raw() == "OBR|1|||81247-9^Panel^LN");
  CHECK(msg_val(m, "OBX[2]").raw().substr(0, 6) == "OBX|2|");
}

TEST_CASE("message: ranges iterate like the counts say", "[hl7v2][message]") {
  const Message m = parse_msg_ok(kSimple);
  const Value f3 = msg_val(m, "PID-3");
  CHECK(texts(f3.repetitions()) == std::vector<std::string>{"A1^^^H&1.2.3&ISO^MR", "B2^^^L^PI"});
  CHECK(texts(f3.components()) == std::vector<std::string>{"A1", "", "", "H&1.2.3&ISO", "MR"});
  CHECK(texts(f3.component(4).subcomponents()) == std::vector<std::string>{"H", "1.2.3", "ISO"});
  CHECK(texts(f3.repetition(2).components()) == std::vector<std::string>{"B2", "", "", "L", "PI"});
  // Levels: the pieces of a component range are components (they do not split again on '^').
  for (Value rep : f3.repetitions()) {
    for (Value comp : rep.components()) {
      CHECK(comp.component_count() == (comp.empty() ? 0u : 1u));
      CHECK(comp.repetition_count() == (comp.empty() ? 0u : 1u));
    }
  }
  // An empty value has nothing to iterate; a trailing separator yields an empty last piece.
  CHECK(texts(msg_val(m, "OBX[3]-5").repetitions()).empty());
  CHECK(texts(msg_val(m, "OBX[3]-5").components()).empty());
  const Message t = parse_msg_ok("MSH|^~\\&|A\rZZZ|a~|b^|c&|~~\r");
  CHECK(texts(msg_val(t, "ZZZ-1").repetitions()) == std::vector<std::string>{"a", ""});
  CHECK(texts(msg_val(t, "ZZZ-2").components()) == std::vector<std::string>{"b", ""});
  CHECK(texts(msg_val(t, "ZZZ-3").subcomponents()) == std::vector<std::string>{"c", ""});
  CHECK(texts(msg_val(t, "ZZZ-4").repetitions()) == std::vector<std::string>{"", "", ""});
  // Count and range agree for every field of every segment.
  for (std::size_t s = 0; s < m.segment_count(); ++s) {
    const Segment seg = m.segment(s);
    for (std::size_t f = 1; f <= seg.field_count(); ++f) {
      const Value v = seg.field(f);
      std::size_t reps = 0;
      for (Value rep : v.repetitions()) {
        ++reps;
        std::size_t comps = 0;
        for (Value c : rep.components()) {
          ++comps;
          std::size_t subs = 0;
          for (Value sc : c.subcomponents()) {
            (void)sc;
            ++subs;
          }
          CHECK(subs == c.subcomponent_count());
        }
        CHECK(comps == rep.component_count());
      }
      CHECK(reps == v.repetition_count());
    }
  }
  // Iterator basics.
  const Value::Range r = f3.repetitions();
  auto it = r.begin();
  CHECK((*it).text() == "A1^^^H&1.2.3&ISO^MR");
  auto old = it++;
  CHECK((*old).text() == "A1^^^H&1.2.3&ISO^MR");
  CHECK((*it).text() == "B2^^^L^PI");
  ++it;
  CHECK(it == r.end());
}

TEST_CASE("message: explicit null differs from empty", "[hl7v2][message]") {
  const Message m = parse_msg_ok(kSimple);
  const Value null_field = msg_val(m, "OBX[2]-8");
  CHECK(null_field.is_null());
  CHECK_FALSE(null_field.empty());
  CHECK_FALSE(null_field.has_value());
  CHECK(null_field.raw() == "\"\"");
  const Value empty_field = msg_val(m, "OBX[2]-7");
  CHECK(empty_field.empty());
  CHECK_FALSE(empty_field.is_null());
  CHECK_FALSE(empty_field.has_value());
  const Value absent = msg_val(m, "OBX[2]-30");
  CHECK(absent.empty());
  CHECK_FALSE(absent.is_null());
  CHECK(msg_val(m, "OBX[2]-5").has_value());
  // A null component inside a field.
  const Message c = parse_msg_ok("MSH|^~\\&|A\rZZZ|x^\"\"^|\"\"x|\r");
  CHECK(msg_val(c, "ZZZ-1.2").is_null());
  CHECK(msg_val(c, "ZZZ-1.3").empty());
  CHECK_FALSE(msg_val(c, "ZZZ-2").is_null());  // "" followed by text is just text
  CHECK(Value().empty());
  CHECK_FALSE(Value().is_null());
}

TEST_CASE("message: find count and occurrence", "[hl7v2][message]") {
  const Message m = parse_msg_ok(kSimple);
  CHECK(m.count("OBX") == 3);
  CHECK(m.count("MSH") == 1);
  CHECK(m.count("NTE") == 0);
  CHECK(m.count("OB") == 0);
  const auto obx2 = m.find("OBX", 2);
  REQUIRE(obx2.has_value());
  CHECK(obx2->index() == 4);
  CHECK(obx2->occurrence() == 2);
  CHECK(obx2->field(1).text() == "2");
  CHECK(m.find("OBX")->index() == 3);
  CHECK(m.find("OBX", 4) == std::nullopt);
  CHECK(m.find("OBX", 0) == std::nullopt);
  CHECK(m.find("ZZZ") == std::nullopt);
  CHECK(m.segment(5).occurrence() == 3);
  CHECK(m.segment(1).occurrence() == 1);
  const Location loc = obx2->location(5);
  CHECK(loc.segment == "OBX");
  CHECK(loc.segment_index == 5);
  CHECK(loc.occurrence == 2);
  CHECK(loc.field == 5);
  CHECK(loc.to_string() == "OBX[2]-5");
  CHECK(m.segment(0).location(9).to_string() == "MSH-9");
  // A malformed path is an error, not an empty value.
  auto bad = m.get("OBX[0]-5");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Errc::bad_path);
}

TEST_CASE("message: segment IDs may hold digits and segments may have no fields",
          "[hl7v2][message]") {
  const Message m = parse_msg_ok("MSH|^~\\&|A\rZ01|x\rPID\rOBX|1\r");
  REQUIRE(m.segment_count() == 4);
  CHECK(m.segment(1).id() == "Z01");
  CHECK(m.segment(2).id() == "PID");
  CHECK(m.segment(2).field_count() == 0);
  CHECK(m.segment(2).field(1).empty());
  CHECK(msg_txt(m, "OBX-1") == "1");
}

TEST_CASE("message: errors for empty and foreign input", "[hl7v2][message]") {
  for (std::string_view empty :
       {std::string_view(""), std::string_view("\r\n\r\n"), std::string_view("\xEF\xBB\xBF")}) {
    const ParseError e = parse_error(empty);
    CHECK(e.code == Errc::not_hl7);
    CHECK(e.location.segment_index == 1);
    CHECK(e.message.find("empty") != std::string::npos);
  }
  const ParseError pid_first = parse_error("PID|1||X\rMSH|^~\\&|A\r");
  CHECK(pid_first.code == Errc::not_hl7);
  CHECK(pid_first.location.segment_index == 1);
  CHECK(pid_first.to_string() == "segment 1: the message does not start with an MSH segment");
  CHECK(parse_error("msh|^~\\&|A\r").code == Errc::not_hl7);
  CHECK(parse_error("{\"resourceType\":\"Bundle\"}").code == Errc::not_hl7);
  // A batch header is named as such.
  const ParseError bhs = parse_error("BHS|^~\\&|A\rMSH|^~\\&|A\rBTS|1\r");
  CHECK(bhs.code == Errc::bad_batch);
  CHECK(bhs.location.segment == "BHS");
  CHECK(bhs.location.segment_index == 1);
}

TEST_CASE("message: bad delimiters are located at MSH-1 or MSH-2", "[hl7v2][message]") {
  struct Case {
    std::string_view bytes;
    std::uint32_t field;
  };
  const Case cases[] = {
      {"MSH", 1},            // nothing after the ID
      {"MSH\rPID|1", 1},     // separator right after the ID
      {"MSHA^~\\&A", 1},     // a letter as field separator
      {"MSH ^~\\& ", 1},     // a space
      {"MSH|^|A", 2},        // one encoding character
      {"MSH||A", 2},         // none
      {"MSH|^~\\&#!|A", 2},  // six
      {"MSH|^~\\\\&|A", 2},  // escape and subcomponent both '\'
      {"MSH|^^\\&|A", 2},    // component twice
      {"MSH|^~\\A|A", 2},    // a letter
      {"MSH|^~\\ |A", 2},    // a space
      {"MSH\xA6^~\\&\xA6"
       "A",
       1},  // a byte outside ASCII
      {"MSH|^~\\\xE9|A", 2},
      {"MSH|^~\\\xC3\xA9|A", 2},                  // a UTF-8 character is two bytes, not a delimiter
      {"MSH|^~\\&|A||||||ORU^R01|1|P|2.5\r", 0},  // (control: this one parses)
  };
  for (const Case& c : cases) {
    INFO(c.bytes);
    if (c.field == 0) {
      CHECK(Message::parse(c.bytes).ok());
      continue;
    }
    const ParseError e = parse_error(c.bytes);
    CHECK(e.code == Errc::bad_delimiters);
    CHECK(e.location.segment == "MSH");
    CHECK(e.location.segment_index == 1);
    CHECK(e.location.field == c.field);
  }
}

TEST_CASE("message: a bad segment ID is located at its segment number", "[hl7v2][message]") {
  const std::string head = msh({"A"}) + "\r";
  struct Case {
    std::string body;
    std::uint32_t segment;
  };
  const Case cases[] = {
      {"PID|1\robx|1\r", 3},
      {"PID|1\rOBX|1\r\r\nOB|1\r", 4},  // blank lines are not counted
      {"PIDX|1\r", 2},
      {"1ID|1\r", 2},
      {"PID|1\r  \r", 3},  // whitespace is not a segment
      {"P\r", 2},
      {"PI", 2},
  };
  for (const Case& c : cases) {
    INFO(c.body);
    const ParseError e = parse_error(head + c.body);
    CHECK(e.code == Errc::bad_segment);
    CHECK(e.location.segment_index == c.segment);
    CHECK(e.location.to_string() == "segment " + std::to_string(c.segment));
  }
}

TEST_CASE("message: a second MSH or a batch segment inside is bad_batch", "[hl7v2][message]") {
  const std::string head = msh({"A"}) + "\r";
  const ParseError second = parse_error(head + "PID|1\rMSH|^~\\&|B\rPID|2\r");
  CHECK(second.code == Errc::bad_batch);
  CHECK(second.location.segment == "MSH");
  CHECK(second.location.segment_index == 3);
  for (std::string_view id : {"FHS", "BHS", "BTS", "FTS"}) {
    const ParseError e = parse_error(head + "PID|1\r" + std::string(id) + "|1\r");
    CHECK(e.code == Errc::bad_batch);
    CHECK(e.location.segment == id);
    CHECK(e.location.segment_index == 3);
  }
}

TEST_CASE("message: invalid UTF-8 is located at its segment and field", "[hl7v2][message]") {
  const std::string head = msh({"A"}) + "\r";
  const ParseError e =
      parse_error(head + "OBR|1\rOBX|1|ST|c||fine \xC3\xA9\rOBX|2|ST|c||bad \xFF byte|x\r");
  CHECK(e.code == Errc::bad_encoding);
  CHECK(e.location.segment == "OBX");
  CHECK(e.location.segment_index == 4);
  CHECK(e.location.occurrence == 2);
  CHECK(e.location.field == 5);
  CHECK(e.location.to_string() == "OBX[2]-5");
  CHECK(e.message.find("0xFF") != std::string::npos);
  // In MSH, fields are numbered with MSH-1 counted.
  const ParseError in_msh = parse_error("MSH|^~\\&|AP\xC3P|FAC\r");
  CHECK(in_msh.code == Errc::bad_encoding);
  CHECK(in_msh.location.to_string() == "MSH-3");
  // In the first field and in a segment's last field.
  CHECK(parse_error(head + "PID|\xE9\r").location.to_string() == "PID-1");
  CHECK(parse_error(head + "PID|1|2|3\xF4\x90\x80\x80").location.to_string() == "PID-3");
  // Declared UTF-8 explicitly: same check.
  const ParseError declared = parse_error(msh_charset("UNICODE UTF-8") + "\rPID|1||M\xFCller\r");
  CHECK(declared.code == Errc::bad_encoding);
  CHECK(declared.location.to_string() == "PID-3");
  CHECK(declared.message.find("MSH-18") != std::string::npos);
}

TEST_CASE("message: MSH-18 selects the character set", "[hl7v2][message]") {
  SECTION("unsupported names are located at MSH-18") {
    for (std::string_view name : {"EBCDIC", "UNICODE", "8859/15", "ISO IR87", "UTF-16"}) {
      INFO(name);
      const ParseError e = parse_error(msh_charset(name) + "\rPID|1\r");
      CHECK(e.code == Errc::unsupported_charset);
      CHECK(e.location.segment == "MSH");
      CHECK(e.location.field == 18);
      CHECK(e.location.to_string() == "MSH-18");
      CHECK(e.message.find(std::string(name)) != std::string::npos);
    }
  }
  SECTION("8859/1 is converted to UTF-8") {
    const Message m =
        parse_msg_ok(msh_charset("8859/1") + "\rPID|1||M\xFCller^J\xF6rg|\xE9t\xE9\r");
    CHECK(m.charset() == Charset::latin1);
    CHECK(msg_txt(m, "PID-3") == "M\xC3\xBCller^J\xC3\xB6rg");
    CHECK(msg_txt(m, "PID-3.1") == "M\xC3\xBCller");
    CHECK(msg_txt(m, "PID-3.2") == "J\xC3\xB6rg");
    CHECK(msg_txt(m, "PID-4") == "\xC3\xA9t\xC3\xA9");  // offsets after conversion are right
    CHECK(msg_txt(m, "MSH-18") == "8859/1");
    CHECK(m.text().find("M\xC3\xBCller") != std::string_view::npos);
  }
  SECTION("8859/1 spelled another way, and as the first of several repetitions") {
    CHECK(parse_msg_ok(msh_charset("iso-8859-1") + "\rPID|\xFC\r").charset() == Charset::latin1);
    CHECK(parse_msg_ok(msh_charset("8859/1~UNICODE UTF-8") + "\rPID|\xFC\r").charset() ==
          Charset::latin1);
  }
  SECTION("ASCII declared with UTF-8 content is accepted") {
    const Message m = parse_msg_ok(msh_charset("ASCII") + "\rPID|1||caf\xC3\xA9\r");
    CHECK(m.charset() == Charset::ascii);
    CHECK(msg_txt(m, "PID-3") == "caf\xC3\xA9");
  }
  SECTION("ASCII declared with bytes that are not UTF-8 is bad_encoding") {
    const ParseError e = parse_error(msh_charset("ASCII") + "\rPID|1||caf\xE9\r");
    CHECK(e.code == Errc::bad_encoding);
    CHECK(e.location.to_string() == "PID-3");
    CHECK(e.message.find("ASCII") != std::string::npos);
  }
  SECTION("the listener default applies when MSH-18 is empty") {
    ParseOptions latin;
    latin.default_charset = Charset::latin1;
    const Message m = parse_msg_ok(msh({"A"}) + "\rPID|M\xFCller\r", latin);
    CHECK(m.charset() == Charset::latin1);
    CHECK(msg_txt(m, "PID-1") == "M\xC3\xBCller");
    const ParseError e = parse_error(msh({"A"}) + "\rPID|M\xFCller\r");
    CHECK(e.code == Errc::bad_encoding);
    CHECK(e.message.find("listener default") != std::string::npos);
  }
  SECTION("hex escapes follow the character set") {
    const Message latin = parse_msg_ok(msh_charset("8859/1") + "\rNTE|1||caf\\XE9\\\r");
    CHECK(msg_txt(latin, "NTE-3") == "caf\xC3\xA9");
    const Message utf8 = parse_msg_ok(msh_charset("UNICODE UTF-8") + "\rNTE|1||caf\\XE9\\\r");
    CHECK(msg_txt(utf8, "NTE-3") == "caf\\XE9\\");
  }
}

TEST_CASE("message: a Latin-1 byte cannot be a delimiter even when 8859/1 is declared",
          "[hl7v2][message]") {
  // 0xE9 would be converted to C3 A9 before indexing and never match again.
  const std::string bytes = "MSH|^~\\\xE9|A||||||ADT^A01|1|P|2.5||||||8859/1\rPID|1||x\xE9y\r";
  const ParseError e = parse_error(bytes);
  CHECK(e.code == Errc::bad_delimiters);
  CHECK(e.location.to_string() == "MSH-2");
}

TEST_CASE("message: two encoding characters declare no escape and no subcomponent",
          "[hl7v2][message]") {
  const Message m = parse_msg_ok("MSH|^~|A\rNTE|1||a\\F\\b&c^d\r");
  CHECK(m.delimiters().escape == '\0');
  CHECK(m.delimiters().subcomponent == '\0');
  CHECK(m.delimiters().encoding_characters() == "^~");
  CHECK(msg_txt(m, "NTE-3.1") == "a\\F\\b&c");
  CHECK(msg_val(m, "NTE-3.1").subcomponent_count() == 1);
  CHECK(msg_txt(m, "NTE-3.2") == "d");
}

TEST_CASE("message: the parsed message owns its text", "[hl7v2][message]") {
  std::string bytes = kSimple;
  auto r = Message::parse(std::move(bytes));
  REQUIRE(r.ok());
  Message moved = std::move(r).value();
  CHECK(msg_txt(moved, "OBX[2]-5[2]") == "third");
  const Message copy = moved;
  moved = parse_msg_ok("MSH|^~\\&|OTHER\r");
  CHECK(msg_txt(copy, "OBX[2]-5[2]") == "third");
  CHECK(msg_txt(moved, "MSH-3") == "OTHER");
}

TEST_CASE("message: locations and errors print as paths", "[hl7v2][message]") {
  Location loc;
  CHECK(loc.to_string() == "message");
  loc.segment_index = 7;
  CHECK(loc.to_string() == "segment 7");
  loc.segment = "PID";
  loc.occurrence = 1;
  CHECK(loc.to_string() == "PID");
  loc.field = 3;
  loc.repetition = 2;
  loc.component = 4;
  loc.subcomponent = 1;
  CHECK(loc.to_string() == "PID-3[2].4.1");
  loc.repetition = 1;
  loc.subcomponent = 0;
  CHECK(loc.to_string() == "PID-3.4");
  loc.occurrence = 4;
  CHECK(loc.to_string() == "PID[4]-3.4");
  const ParseError e{Errc::bad_encoding, "bad byte", loc};
  CHECK(e.to_string() == "PID[4]-3.4: bad byte");
  CHECK(ParseError{Errc::not_hl7, "empty", Location{}}.to_string() == "empty");
  CHECK(hl7_name(Charset::ascii) == "ASCII");
  CHECK(hl7_name(Charset::latin1) == "8859/1");
  CHECK(hl7_name(Charset::utf8) == "UNICODE UTF-8");
}

TEST_CASE("message: for_each_leaf visits the same leaves as nested iteration", "[hl7v2][message]") {
  const std::string text =
      "MSH|^~\\&|APP|FAC|||20240101||ORU^R01|1|P|2.5.1\r"
      "PID|1||A^^^H&1.2&ISO^MR~B^^^L||DOE^JANE\\T\\X^^^^^^L~^^^^^^M|||F\r"
      "OBX|1|ST|48018-6^Gene^LN|1a|BRCA1 \\H\\x\\N\\ end||||||F\r";
  auto parsed = Message::parse(text);
  REQUIRE(parsed);
  const Message& m = *parsed;
  for (std::size_t i = 0; i < m.segment_count(); ++i) {
    const Segment seg = m.segment(i);
    for (std::size_t f = 1; f <= seg.field_count(); ++f) {
      std::vector<std::string> nested;
      std::uint32_t r = 0;
      for (const Value rep : seg.field(f).repetitions()) {
        ++r;
        std::uint32_t c = 0;
        for (const Value comp : rep.components()) {
          ++c;
          std::uint32_t s = 0;
          for (const Value sub : comp.subcomponents()) {
            ++s;
            if (sub.empty()) continue;
            nested.push_back(std::to_string(r) + "." + std::to_string(c) + "." + std::to_string(s) +
                             "=" + sub.text());
          }
        }
      }
      std::vector<std::string> leaves;
      // for_each_leaf also reports empty leaves (an empty range yields none): compare the rest.
      seg.field(f).for_each_leaf([&](Value::LeafPosition at, Value leaf) {
        if (leaf.empty()) return;
        leaves.push_back(std::to_string(at.repetition) + "." + std::to_string(at.component) + "." +
                         std::to_string(at.subcomponent) + "=" + leaf.text());
      });
      CHECK(leaves == nested);
    }
  }
  std::string name;
  m.get("PID-5")->for_each_leaf([&](Value::LeafPosition at, Value leaf) {
    if (at.repetition == 1 && at.component == 2) name = leaf.text();
  });
  CHECK(name == "JANE&X");
}

TEST_CASE("message: Message::for_each_leaf equals field by field reading on every sample",
          "[hl7v2][message]") {
  std::size_t compared = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(ADAPTER_FIXTURES_DIR "/hl7v2/samples")) {
    if (entry.path().extension() != ".hl7") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto parsed = Message::parse(bytes);
    if (!parsed) continue;  // malformed samples are covered elsewhere
    INFO(entry.path().filename().string());
    const Message& m = *parsed;
    std::vector<std::string> by_field;
    for (std::size_t i = 0; i < m.segment_count(); ++i) {
      const Segment seg = m.segment(i);
      for (std::size_t f = 1; f <= seg.field_count(); ++f) {
        seg.field(f).for_each_leaf([&](Value::LeafPosition at, Value leaf) {
          by_field.push_back(std::to_string(i) + "/" + std::to_string(f) + "/" +
                             std::to_string(at.repetition) + "." + std::to_string(at.component) +
                             "." + std::to_string(at.subcomponent) + "=" + leaf.text());
        });
      }
    }
    std::vector<std::string> whole;
    std::string scratch;
    m.for_each_leaf([&](Message::LeafAt at, Value leaf) {
      if (leaf.raw().empty() && at.repetition == 1 && at.component == 1 && at.subcomponent == 1) {
        // An empty field: field-by-field reading reports nothing for it.
        const Value field = m.segment(at.segment).field(at.field);
        if (field.empty()) return;
      }
      whole.push_back(std::to_string(at.segment) + "/" + std::to_string(at.field) + "/" +
                      std::to_string(at.repetition) + "." + std::to_string(at.component) + "." +
                      std::to_string(at.subcomponent) + "=" + std::string(leaf.text(scratch)));
    });
    CHECK(whole == by_field);
    ++compared;
  }
  CHECK(compared >= 10);  // the samples that are single, well-formed messages
}
