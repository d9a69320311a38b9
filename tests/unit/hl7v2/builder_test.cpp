// MessageBuilder output bytes, encode(Message) against an independent normalisation of every
// parseable sample, and parse/encode/parse round trips.
#include "hl7v2/builder.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "hl7v2/batch.h"
#include "hl7v2/message.h"
#include "unit/hl7v2/support.h"

using namespace adapter;
using namespace adapter::hl7v2;
using namespace adapter::hl7v2::test;

namespace {

Delimiters custom_delimiters() {
  Delimiters d;
  d.field = '#';
  d.component = '!';
  d.repetition = '@';
  d.escape = '$';
  d.subcomponent = '%';
  return d;
}

// The wire form encode(Message) should give, computed without the parser: no byte-order mark,
// every CR, LF or CRLF a segment end, blank lines dropped, each segment followed by one CR.
std::string normalise(std::string_view bytes) {
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
  std::string out;
  std::string segment;
  for (char c : bytes) {
    if (c == '\r' || c == '\n') {
      if (!segment.empty()) out += segment + '\r';
      segment.clear();
    } else {
      segment.push_back(c);
    }
  }
  if (!segment.empty()) out += segment + '\r';
  return out;
}

// Every single message the samples hold: whole files, messages of the batch files, and the two
// lfh_sample files with their MSH-2 repaired.
std::vector<std::string> parseable_messages() {
  std::vector<std::string> out;
  for (const char* name :
       {"bench_oru_r01_genomics.hl7", "msfc_ORU-R01-01.hl7", "msfc_ORU-R01-RMGEAD.hl7",
        "msfc_LAB-ORU-1.hl7", "msfc_OUL-R22-01.hl7", "lfh_ORU-multiline-short.hl7",
        "lfh_ORU-multiline-short-mixed.hl7", "python-hl7_sample_hl7_ORU_R01_v2.4.hl7",
        "python-hl7_rep_sample_repetitions_subcomponents.hl7",
        "python-hl7_sample_msh_ADT_quoted_nulls.hl7"}) {
    out.push_back(read_sample(name));
  }
  for (const char* name :
       {"python-hl7_sample_file_FHS_BHS_BTS_FTS.hl7", "python-hl7_sample_batch1_BHS_2msgs_BTS.hl7",
        "python-hl7_sample_batch2_no_BHS_2msgs.hl7"}) {
    const std::string bytes = read_sample(name);
    auto batch = split_batch(bytes);
    REQUIRE(batch.ok());
    for (std::string_view m : batch->messages) out.emplace_back(m);
  }
  for (const char* name : {"lfh_sample_unix.hl7", "lfh_sample_win.hl7"}) {
    std::string bytes = read_sample(name);
    REQUIRE(bytes.compare(0, 10, "MSH|^~\\\\&|") == 0);
    bytes.replace(0, 10, "MSH|^~\\&|");
    out.push_back(bytes);
  }
  return out;
}

// Same segments, same fields, same decoded values at every level.
void check_same_values(const Message& a, const Message& b) {
  REQUIRE(a.segment_count() == b.segment_count());
  CHECK(a.delimiters().encoding_characters() == b.delimiters().encoding_characters());
  for (std::size_t s = 0; s < a.segment_count(); ++s) {
    const Segment sa = a.segment(s);
    const Segment sb = b.segment(s);
    INFO("segment " << s + 1 << " " << sa.id());
    REQUIRE(sa.id() == sb.id());
    REQUIRE(sa.field_count() == sb.field_count());
    for (std::size_t f = 1; f <= sa.field_count(); ++f) {
      const Value fa = sa.field(f);
      const Value fb = sb.field(f);
      INFO("field " << f);
      CHECK(fa.raw() == fb.raw());
      CHECK(fa.text() == fb.text());
      CHECK(fa.is_null() == fb.is_null());
      REQUIRE(fa.repetition_count() == fb.repetition_count());
      for (std::size_t r = 1; r <= fa.repetition_count(); ++r) {
        const Value ra = fa.repetition(r);
        const Value rb = fb.repetition(r);
        CHECK(ra.text() == rb.text());
        REQUIRE(ra.component_count() == rb.component_count());
        for (std::size_t c = 1; c <= ra.component_count(); ++c) {
          const Value ca = ra.component(c);
          const Value cb = rb.component(c);
          CHECK(ca.text() == cb.text());
          REQUIRE(ca.subcomponent_count() == cb.subcomponent_count());
          for (std::size_t k = 1; k <= ca.subcomponent_count(); ++k) {
            CHECK(ca.subcomponent(k).text() == cb.subcomponent(k).text());
          }
        }
      }
    }
  }
}

std::string random_text(std::mt19937& rng) {
  static const std::string specials = "|^~\\&#!@$%\r\n\"XFSTRE.br ";
  std::uniform_int_distribution<int> length(0, 12);
  std::uniform_int_distribution<int> kind(0, 5);
  std::uniform_int_distribution<std::size_t> special(0, specials.size() - 1);
  std::uniform_int_distribution<std::uint32_t> ascii(0x20, 0x7E);
  std::uniform_int_distribution<std::uint32_t> wide(0x80, 0x10FFFF);
  std::string s;
  const int n = length(rng);
  for (int i = 0; i < n; ++i) {
    const int k = kind(rng);
    if (k < 2) {
      s.push_back(specials[special(rng)]);
    } else if (k < 5) {
      put_utf8(s, ascii(rng));
    } else {
      std::uint32_t cp = wide(rng);
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFC;
      put_utf8(s, cp);
    }
  }
  return s;
}

}  // namespace

TEST_CASE("builder: default delimiters give exact bytes", "[hl7v2][builder]") {
  MessageBuilder b;
  b.segment("MSH")
      .text(3, "ADAPTERD")
      .text(4, "LAB")
      .text(7, "20240315143000")
      .components(9, {"ORU", "R01", "ORU_R01"})
      .text(10, "MSG-1")
      .raw(11, "P")
      .text(12, "2.5.1");
  b.segment("PID").text(3, "A|B^C~D\\E&F").raw(5, "DOE^JANE").text(8, "");
  b.segment("OBX").text(1, "1").text(5, "line1\nline2\rend").text(6, "").text(7, "");
  b.segment("NTE");
  CHECK(b.encode() ==
        "MSH|^~\\&|ADAPTERD|LAB|||20240315143000||ORU^R01^ORU_R01|MSG-1|P|2.5.1\r"
        "PID|||A\\F\\B\\S\\C\\R\\D\\E\\E\\T\\F||DOE^JANE\r"
        "OBX|1||||line1\\.br\\line2\\X0D\\end\r"
        "NTE\r");
  CHECK(b.delimiters().encoding_characters() == "^~\\&");
}

TEST_CASE("builder: MSH alone components and overwriting", "[hl7v2][builder]") {
  MessageBuilder b;
  b.segment("MSH");
  auto& seg = b.segment("ERR");
  seg.components(2, {"OBX", "2", "5", "", "", ""});  // trailing empty components trimmed
  seg.components(3, {"100", "", "HL70357"});         // inner empty components kept
  seg.components(4, {"", ""});                       // all empty: an empty field, trimmed
  seg.text(8, "first").text(8, "second");            // last write wins
  seg.components(9, {"a^b", "c"});                   // each component escaped
  CHECK(b.encode() == "MSH|^~\\&\rERR||OBX^2^5|100^^HL70357|||||second|a\\S\\b^c\r");
}

TEST_CASE("builder: custom delimiters and a truncation character", "[hl7v2][builder]") {
  MessageBuilder b(custom_delimiters());
  b.segment("MSH").text(3, "APP").components(9, {"ACK", "R01", "ACK"}).text(10, "1");
  b.segment("MSA").text(1, "AA").text(3, "a#b!c@d$e%f|g^h");
  CHECK(b.encode() ==
        "MSH#!@$%#APP######ACK!R01!ACK#1\r"
        "MSA#AA##a$F$b$S$c$R$d$E$e$T$f|g^h\r");
  const Message m = parse_ok(b.encode());
  CHECK(m.delimiters().field == '#');
  CHECK(m.get("MSA-3")->text() == "a#b!c@d$e%f|g^h");

  Delimiters t;
  t.truncation = '#';
  MessageBuilder bt(t);
  bt.segment("MSH").text(3, "A#B");
  CHECK(bt.encode() == "MSH|^~\\&#|A\\P\\B\r");
  const Message mt = parse_ok(bt.encode());
  CHECK(mt.delimiters().truncation == '#');
  CHECK(mt.get("MSH-3")->text() == "A#B");
}

TEST_CASE("builder: a copied or moved builder keeps its own delimiters", "[hl7v2][builder]") {
  MessageBuilder original(custom_delimiters());
  original.segment("MSH").text(3, "X|Y");
  const MessageBuilder copy = original;
  original = MessageBuilder();  // the original now has standard delimiters
  original.segment("MSH").text(3, "Z");
  CHECK(copy.encode() == "MSH#!@$%#X|Y\r");
  CHECK(original.encode() == "MSH|^~\\&|Z\r");

  auto heap = std::make_unique<MessageBuilder>(custom_delimiters());
  heap->segment("MSH").text(3, "A");
  heap->segment("PID").components(5, {"DOE", "JANE"});
  MessageBuilder moved = std::move(*heap);
  heap.reset();
  moved.segment("NTE").text(3, "n");
  CHECK(moved.encode() == "MSH#!@$%#A\rPID#####DOE!JANE\rNTE###n\r");
}

TEST_CASE("builder: encode of every parseable sample is its normalised input", "[hl7v2][builder]") {
  const std::vector<std::string> messages = parseable_messages();
  CHECK(messages.size() == 17);
  for (const std::string& bytes : messages) {
    const Message m = parse_ok(bytes);
    INFO(m.get("MSH-10")->raw());
    const std::string wire = encode(m);
    CHECK(wire == normalise(bytes));
    CHECK(wire.find('\n') == std::string::npos);
    CHECK(wire.back() == '\r');
    CHECK(wire.compare(0, 4, "MSH|") == 0);
  }
}

TEST_CASE("builder: parse of encode of parse keeps every decoded value", "[hl7v2][builder]") {
  for (const std::string& bytes : parseable_messages()) {
    const Message first = parse_ok(bytes);
    INFO(first.get("MSH-10")->raw());
    const Message second = parse_ok(encode(first));
    check_same_values(first, second);
    CHECK(encode(second) == encode(first));
  }
  // 8859/1 comes back as 8859/1: the bytes MSH-18 declares, not the UTF-8 of text().
  const std::string latin1 =
      "MSH|^~\\&|A||||||ADT^A01|L1|P|2.5||||||8859/1\nPID|1||M\xFCller^J\xF6rg\n";
  const Message lm = parse_ok(latin1);
  CHECK(lm.get("PID-3.1")->text() == "M\xC3\xBCller");
  CHECK(encode(lm) == normalise(latin1));
  check_same_values(lm, parse_ok(encode(lm)));
  std::string every_byte = "MSH|^~\\&|A||||||ADT^A01|L2|P|2.5||||||8859/1\rNTE|1||";
  for (int b = 0x80; b <= 0xFF; ++b) every_byte.push_back(static_cast<char>(b));
  every_byte += '\r';
  CHECK(encode(parse_ok(every_byte)) == every_byte);
  // 8859/1 assumed by the listener default, not declared: written as UTF-8, so that the output
  // reads the same without that default.
  ParseOptions latin1_default;
  latin1_default.default_charset = Charset::latin1;
  auto defaulted = Message::parse(std::string_view("MSH|^~\\&|A\rPID|M\xFCller\r"), latin1_default);
  REQUIRE(defaulted.ok());
  CHECK(encode(*defaulted) == "MSH|^~\\&|A\rPID|M\xC3\xBCller\r");
  check_same_values(*defaulted, parse_ok(encode(*defaulted)));
  // Custom delimiters are kept by encode.
  const Message custom = parse_ok("MSH#!@$%#A\nPID#1##x!y$F$\n");
  CHECK(encode(custom) == "MSH#!@$%#A\rPID#1##x!y$F$\r");
}

TEST_CASE("builder: random values survive build then parse", "[hl7v2][builder]") {
  std::mt19937 rng(7654321u);
  Delimiters truncation;
  truncation.truncation = '#';
  const Delimiters sets[] = {Delimiters{}, truncation, custom_delimiters()};
  for (const Delimiters& d : sets) {
    for (int round = 0; round < 300; ++round) {
      std::vector<std::string> fields;
      for (int f = 0; f < 8; ++f) fields.push_back(random_text(rng));
      const std::string c1 = random_text(rng);
      const std::string c2 = random_text(rng);
      const std::string c3 = random_text(rng);
      MessageBuilder b(d);
      b.segment("MSH").text(3, fields[0]).components(9, {"ORU", "R01"}).text(10, "R-1");
      auto& obx = b.segment("OBX");
      for (std::size_t f = 1; f < fields.size(); ++f) obx.text(f, fields[f]);
      obx.components(9, {c1, c2, c3});
      const std::string wire = b.encode();
      auto m = Message::parse(wire);
      INFO(wire);
      REQUIRE(m.ok());
      CHECK(m->segment_count() == 2);
      CHECK(m->msh(3).text() == fields[0]);
      const Segment seg = *m->find("OBX");
      for (std::size_t f = 1; f < fields.size(); ++f) CHECK(seg.field(f).text() == fields[f]);
      CHECK(seg.field(9).component(1).text() == c1);
      CHECK(seg.field(9).component(2).text() == c2);
      CHECK(seg.field(9).component(3).text() == c3);
      CHECK(seg.field(9).repetition_count() == (c1.empty() && c2.empty() && c3.empty() ? 0u : 1u));
    }
  }
}
