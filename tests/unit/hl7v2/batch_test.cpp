// split_batch and looks_like_batch on built inputs: envelopes, counts, and located errors.
#include "hl7v2/batch.h"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "hl7v2/message.h"

using namespace adapter;
using namespace adapter::hl7v2;

namespace {

const std::string kMsg1 = "MSH|^~\\&|A||||||ADT^A01|M1|P|2.5\rPID|1\r";
const std::string kMsg2 = "MSH|^~\\&|A||||||ADT^A01|M2|P|2.5\rPID|2\rPV1|1\r";

ParseError split_error(std::string_view bytes) {
  auto r = split_batch(bytes);
  if (r) FAIL("split_batch unexpectedly succeeded");
  return r.error();
}

}  // namespace

TEST_CASE("batch: a single message is not a batch", "[hl7v2][batch]") {
  CHECK_FALSE(looks_like_batch(kMsg1));
  CHECK_FALSE(looks_like_batch("\xEF\xBB\xBF" + kMsg1));
  CHECK(looks_like_batch(kMsg1 + kMsg2));
  CHECK(looks_like_batch("BHS|^~\\&\r" + kMsg1 + "BTS|1\r"));
  auto r = split_batch(kMsg1);
  REQUIRE(r.ok());
  CHECK_FALSE(r->enveloped());
  REQUIRE(r->messages.size() == 1);
  CHECK(r->messages[0] == kMsg1);
}

TEST_CASE("batch: segments end at CR, LF or CRLF, mixed in one input", "[hl7v2][batch]") {
  // Each separator alone, and the two kinds interleaved: the scanner keeps the next CR and the
  // next LF apart (batch.cpp) and must take whichever comes first.
  const std::string one = "MSH|^~\\&|A|B\nPID|1\r\nOBX|1\rOBX|2\n";
  const std::string two = "MSH|^~\\&|C|D\rPID|2\n";
  CHECK_FALSE(looks_like_batch(one));
  CHECK(looks_like_batch(one + two));
  CHECK(looks_like_batch(one + "\n\n\r" + two));
  CHECK_FALSE(looks_like_batch("PID|1\nPID|2\rPID|3"));  // no MSH at all, and no trailing end
  const std::string both = one + two;                    // the messages are views into it
  auto r = split_batch(both);
  REQUIRE(r.ok());
  REQUIRE(r->messages.size() == 2);
  CHECK(r->messages[0] == one);
  CHECK(r->messages[1] == two);
}

TEST_CASE("batch: messages are slices from MSH to the next message or trailer", "[hl7v2][batch]") {
  const std::string bytes =
      "\xEF\xBB\xBF"
      "FHS|^~\\&|F\r\nBHS|^~\\&|B1\r\n" +
      kMsg1 + kMsg2 + "BTS|2\r\nBHS|^~\\&|B2\r\n" + kMsg1 + "BTS|1\r\nFTS|2\r\n";
  auto r = split_batch(bytes);
  REQUIRE(r.ok());
  CHECK(r->batch_count == 2);
  CHECK(r->file_header == "FHS|^~\\&|F");
  CHECK(r->batch_header == "BHS|^~\\&|B1");  // the first batch's
  CHECK(r->batch_trailer == "BTS|1");        // the last batch's
  CHECK(r->file_trailer == "FTS|2");
  REQUIRE(r->messages.size() == 3);
  CHECK(r->messages[0] == kMsg1);
  CHECK(r->messages[1] == kMsg2);
  CHECK(r->messages[2] == kMsg1);
  for (std::string_view m : r->messages) {
    CHECK(m.data() >= bytes.data());
    CHECK(m.data() + m.size() <= bytes.data() + bytes.size());
    CHECK(Message::parse(m).ok());
  }
  // A count field left empty is not checked.
  auto empty_counts = split_batch("BHS|^~\\&\r" + kMsg1 + kMsg2 + "BTS\r");
  REQUIRE(empty_counts.ok());
  CHECK(empty_counts->messages.size() == 2);
  // A batch without messages.
  auto none = split_batch("BHS|^~\\&\rBTS|0\r");
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == Errc::not_hl7);
}

TEST_CASE("batch: a batch with another field separator", "[hl7v2][batch]") {
  const std::string msg = "MSH#^~\\&#A######ADT^A01#M9#P#2.5\rPID#1\r";
  const std::string bytes = "BHS#^~\\&#B\r" + msg + "BTS#1\r";  // messages point into it
  auto r = split_batch(bytes);
  REQUIRE(r.ok());
  REQUIRE(r->messages.size() == 1);
  auto m = Message::parse(r->messages[0]);
  if (!m) FAIL(m.error().to_string());
  CHECK(m->get("MSH-10")->text() == "M9");
  const ParseError e = split_error("BHS#^~\\&#B\r" + msg + "BTS#2\r");
  CHECK(e.location.to_string() == "BTS-1");
}

TEST_CASE("batch: counts in BTS-1 and FTS-1 must match", "[hl7v2][batch]") {
  const ParseError bts = split_error("BHS|^~\\&\r" + kMsg1 + kMsg2 + "BTS|3\r");
  CHECK(bts.code == Errc::bad_batch);
  CHECK(bts.location.segment == "BTS");
  CHECK(bts.location.segment_index == 7);
  CHECK(bts.location.field == 1);
  CHECK(bts.to_string() == "BTS-1: BTS-1 says 3 messages, the input holds 2");
  const ParseError fts = split_error("FHS|^~\\&\rBHS|^~\\&\r" + kMsg1 + "BTS|1\rFTS|2\r");
  CHECK(fts.location.to_string() == "FTS-1");
  CHECK(fts.location.segment_index == 6);
  CHECK(fts.message.find("2 batches") != std::string::npos);
  const ParseError nan = split_error("BHS|^~\\&\r" + kMsg1 + "BTS|one\r");
  CHECK(nan.location.to_string() == "BTS-1");
  CHECK(nan.message.find("not a count") != std::string::npos);
}

TEST_CASE("batch: messages straight inside FHS form one implicit batch", "[hl7v2][batch]") {
  auto b = split_batch("FHS|^~\\&\r" + kMsg1 + kMsg2 + "FTS|1\r");
  REQUIRE(b);
  CHECK(b->messages.size() == 2);
  CHECK(b->batch_header.empty());
  CHECK_FALSE(b->file_header.empty());
}

TEST_CASE("batch: malformed envelopes are located errors", "[hl7v2][batch]") {
  struct Case {
    std::string bytes;
    std::string segment;
    std::uint32_t index;
    std::string_view says;
  };
  const Case cases[] = {
      {"BHS|^~\\&\r" + kMsg1 + "BHS|^~\\&\r" + kMsg2 + "BTS|1\r", "BHS", 4, "segment 1"},
      {kMsg1 + "BTS|1\r", "BTS", 3, "without a BHS"},
      {kMsg1 + "FTS|1\r", "FTS", 3, "without an FHS"},
      {"BHS|^~\\&\rFHS|^~\\&\r" + kMsg1, "FHS", 2, "first segment"},
      {"FHS|^~\\&\r" + kMsg1 + "FTS|0\r", "FTS", 4, "FTS-1 says 0 batches, the input holds 1"},
      {"FHS|^~\\&\rBHS|^~\\&\r" + kMsg1 + "FTS|1\r", "FTS", 5, "has no BTS"},
      {"FHS|^~\\&\rBHS|^~\\&\r" + kMsg1 + "BTS|1\rFTS|1\rPID|9\r", "PID", 7, "after FTS"},
      {"BHS|^~\\&\rPID|1\r" + kMsg1 + "BTS|1\r", "PID", 2, "outside any message"},
      {kMsg1 + "BHS|^~\\&\r" + kMsg2 + "BTS|1\r", "BHS", 3, "outside any batch"},
      {"BHS|^~\\&\r" + kMsg1, "BHS", 1, "has no BTS"},
      {"FHS|^~\\&\rBHS|^~\\&\r" + kMsg1 + "BTS|1\r", "FHS", 1, "no FTS"},
  };
  for (const Case& c : cases) {
    INFO(c.bytes);
    const ParseError e = split_error(c.bytes);
    CHECK(e.code == Errc::bad_batch);
    CHECK(e.location.segment == c.segment);
    CHECK(e.location.segment_index == c.index);
    CHECK(e.message.find(c.says) != std::string::npos);
  }
}

TEST_CASE("batch: no message at all is not_hl7", "[hl7v2][batch]") {
  for (std::string_view bytes :
       {std::string_view(""), std::string_view("\r\n\r\n"), std::string_view("\xEF\xBB\xBF")}) {
    const ParseError e = split_error(bytes);
    CHECK(e.code == Errc::not_hl7);
    CHECK(e.location.segment_index == 1);
  }
  const ParseError pid = split_error("PID|1\r");
  CHECK(pid.code == Errc::bad_batch);
  CHECK(pid.location.segment == "PID");
}
