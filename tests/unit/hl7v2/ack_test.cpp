// Acknowledgments (original and enhanced mode) read back with Message::parse, and the header
// helpers header_of / sniff_header / check_required on good and broken input.
#include "hl7v2/ack.h"

#include <catch2/catch.hpp>

#include <cctype>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "hl7v2/header.h"
#include "hl7v2/message.h"
#include "unit/hl7v2/support.h"

using namespace adapter;
using namespace adapter::hl7v2;
using namespace adapter::hl7v2::test;

namespace {

std::string ack_txt(const Message& m, std::string_view path) {
  auto v = m.get(path);
  INFO(path);
  REQUIRE(v.ok());
  return v->text();
}

// An incoming message with MSH-15 and MSH-18 as given.
std::string incoming(std::string_view version, std::string_view accept_ack = "",
                     std::string_view charset = "") {
  return "MSH|^~\\&|SENDAPP|SENDFAC|RCVAPP|RCVFAC|20240315143000||ORU^R01^ORU_R01|CTRL-42|P|" +
         std::string(version) + "|||" + std::string(accept_ack) + "|NE||" + std::string(charset) +
         "\rPID|1||X\r";
}

Header header_for(std::string_view bytes) {
  return header_of(parse_ok(bytes));
}

AckOptions options() {
  AckOptions o;
  o.control_id = "ACK-0001";
  o.timestamp = "20240315143001";
  return o;
}

Location obx5() {
  Location loc;
  loc.segment = "OBX";
  loc.segment_index = 5;
  loc.occurrence = 2;
  loc.field = 5;
  return loc;
}

}  // namespace

TEST_CASE("ack: original mode AA exact bytes", "[hl7v2][ack]") {
  const Header h = header_for(incoming("2.5.1"));
  CHECK_FALSE(h.enhanced_mode());
  CHECK(ack_code_for(h, Errc::ok) == AckCode::AA);
  const std::string ack = make_ack(h, AckCode::AA, nullptr, options());
  CHECK(ack ==
        "MSH|^~\\&|RCVAPP|RCVFAC|SENDAPP|SENDFAC|20240315143001||ACK^R01^ACK|ACK-0001|P|2.5.1\r"
        "MSA|AA|CTRL-42\r");
}

TEST_CASE("ack: original mode AE and AR carry an ERR segment", "[hl7v2][ack]") {
  const Header h = header_for(incoming("2.5.1"));
  CHECK(ack_code_for(h, Errc::store_unavailable) == AckCode::AE);
  CHECK(ack_code_for(h, Errc::message_type_refused) == AckCode::AE);
  CHECK(ack_code_for(h, Errc::bad_encoding) == AckCode::AR);
  CHECK(ack_code_for(h, Errc::not_hl7) == AckCode::AR);

  const AckError err{Errc::bad_encoding, "byte 0xFF is not valid UTF-8", obx5(), 'E'};
  const Message ar = parse_ok(make_ack(h, AckCode::AR, &err, options()));
  REQUIRE(ar.segment_count() == 3);
  CHECK(ack_txt(ar, "MSA-1") == "AR");
  CHECK(ack_txt(ar, "MSA-2") == "CTRL-42");
  CHECK(ack_txt(ar, "MSA-3") == "byte 0xFF is not valid UTF-8");
  CHECK(ack_txt(ar, "ERR-1").empty());  // 2.5.1: no ERR-1
  CHECK(ack_txt(ar, "ERR-2") == "OBX^2^5");
  CHECK(ack_txt(ar, "ERR-2.1") == "OBX");
  CHECK(ack_txt(ar, "ERR-2.2") == "2");
  CHECK(ack_txt(ar, "ERR-2.3") == "5");
  CHECK(ack_txt(ar, "ERR-3") == "102^Data type error^HL70357");
  CHECK(ack_txt(ar, "ERR-4") == "E");
  CHECK(ack_txt(ar, "ERR-8") == "OBX[2]-5: byte 0xFF is not valid UTF-8");

  const AckError refused{Errc::message_type_refused, "ORU^R01 not accepted here", Location{}, 'E'};
  const Message ae = parse_ok(make_ack(h, AckCode::AE, &refused, options()));
  CHECK(ack_txt(ae, "MSA-1") == "AE");
  CHECK(ack_txt(ae, "ERR-2").empty());  // no location: no ERL
  CHECK(ack_txt(ae, "ERR-3") == "200^Unsupported message type^HL70357");
  CHECK(ack_txt(ae, "ERR-3.1") == "200");
  CHECK(ack_txt(ae, "ERR-8") == "ORU^R01 not accepted here");
  CHECK(ae.get("ERR-8")->raw() == "ORU\\S\\R01 not accepted here");  // escaped on the wire
}

TEST_CASE("ack: ERR-2 and ERR-3 for a segment sequence error with a full location",
          "[hl7v2][ack]") {
  const Header h = header_for(incoming("2.5.1"));
  Location loc;
  loc.segment = "PID";
  loc.segment_index = 2;
  loc.occurrence = 1;
  loc.field = 3;
  loc.repetition = 2;
  loc.component = 4;
  loc.subcomponent = 1;
  const AckError err{Errc::bad_segment, "bad", loc, 'W'};
  const Message m = parse_ok(make_ack(h, AckCode::AR, &err, options()));
  CHECK(ack_txt(m, "ERR-2") == "PID^1^3^2^4^1");
  CHECK(ack_txt(m, "ERR-3") == "100^Segment sequence error^HL70357");
  CHECK(ack_txt(m, "ERR-4") == "W");
  CHECK(ack_txt(m, "ERR-8") == "PID-3[2].4.1: bad");
  // A location with a segment number only (the segment ID could not be read).
  Location n;
  n.segment_index = 4;
  const AckError numbered{Errc::bad_segment, "no segment ID", n, 'E'};
  const Message mn = parse_ok(make_ack(h, AckCode::AR, &numbered, options()));
  CHECK(ack_txt(mn, "ERR-2").empty());
  CHECK(ack_txt(mn, "ERR-8") == "segment 4: no segment ID");
}

TEST_CASE("ack: ERR-1 only for versions before 2.5", "[hl7v2][ack]") {
  const AckError err{Errc::bad_encoding, "bad byte", obx5(), 'E'};
  for (std::string_view version : {"2.3", "2.3.1", "2.4"}) {
    INFO(version);
    const Message m =
        parse_ok(make_ack(header_for(incoming(version)), AckCode::AR, &err, options()));
    CHECK(ack_txt(m, "MSH-12") == version);
    CHECK(ack_txt(m, "ERR-1.1") == "OBX");
    CHECK(ack_txt(m, "ERR-1.2") == "2");
    CHECK(ack_txt(m, "ERR-1.3") == "5");
    CHECK(ack_txt(m, "ERR-1.4.1") == "102");
    CHECK(ack_txt(m, "ERR-1.4.2") == "Data type error");
    CHECK(ack_txt(m, "ERR-1.4.3") == "HL70357");
    CHECK(ack_txt(m, "ERR-3.1") == "102");  // the later fields are there as well
  }
  for (std::string_view version : {"2.5", "2.5.1", "2.6", "2.7", "2.8", "2.9"}) {
    INFO(version);
    const Message m =
        parse_ok(make_ack(header_for(incoming(version)), AckCode::AR, &err, options()));
    CHECK(ack_txt(m, "MSH-12") == version);
    CHECK(ack_txt(m, "ERR-1").empty());
    CHECK(ack_txt(m, "ERR-2") == "OBX^2^5");
  }
}

TEST_CASE("ack: enhanced mode codes and should_send", "[hl7v2][ack]") {
  const Header al = header_for(incoming("2.5.1", "AL"));
  CHECK(al.enhanced_mode());
  CHECK(ack_code_for(al, Errc::ok) == AckCode::CA);
  CHECK(ack_code_for(al, Errc::store_unavailable) == AckCode::CE);
  CHECK(ack_code_for(al, Errc::bad_encoding) == AckCode::CR);
  CHECK(is_positive(AckCode::CA));
  CHECK(is_positive(AckCode::AA));
  CHECK_FALSE(is_positive(AckCode::CE));
  CHECK_FALSE(is_positive(AckCode::AR));
  for (AckCode c : {AckCode::CA, AckCode::CE, AckCode::CR}) CHECK(should_send(al, c));

  const Header ne = header_for(incoming("2.5.1", "NE"));
  for (AckCode c : {AckCode::CA, AckCode::CE, AckCode::CR}) CHECK_FALSE(should_send(ne, c));

  const Header er = header_for(incoming("2.5.1", "ER"));
  CHECK_FALSE(should_send(er, AckCode::CA));
  CHECK(should_send(er, AckCode::CE));
  CHECK(should_send(er, AckCode::CR));

  const Header su = header_for(incoming("2.5.1", "SU"));
  CHECK(should_send(su, AckCode::CA));
  CHECK_FALSE(should_send(su, AckCode::CE));
  CHECK_FALSE(should_send(su, AckCode::CR));

  const Header original = header_for(incoming("2.5.1"));
  for (AckCode c : {AckCode::AA, AckCode::AE, AckCode::AR}) CHECK(should_send(original, c));

  for (AckCode c : {AckCode::CA, AckCode::CE, AckCode::CR}) {
    const AckError err{Errc::store_unavailable, "retry later", Location{}, 'E'};
    const Message m = parse_ok(make_ack(al, c, is_positive(c) ? nullptr : &err, options()));
    CHECK(ack_txt(m, "MSA-1") == to_string(c));
    CHECK(ack_txt(m, "MSA-2") == "CTRL-42");
    CHECK(ack_txt(m, "MSH-15").empty());  // the ACK itself asks for no acknowledgment mode
    CHECK(m.count("ERR") == (is_positive(c) ? 0u : 1u));
  }
  CHECK(to_string(AckCode::AA) == "AA");
  CHECK(to_string(AckCode::AE) == "AE");
  CHECK(to_string(AckCode::AR) == "AR");
  CHECK(to_string(AckCode::CR) == "CR");
}

TEST_CASE("ack: header fields swapped and kept", "[hl7v2][ack]") {
  const Header h = header_for(incoming("2.5.1", "AL", "UNICODE UTF-8"));
  const Message m = parse_ok(make_ack(h, AckCode::CA, nullptr, options()));
  CHECK(ack_txt(m, "MSH-3") == "RCVAPP");
  CHECK(ack_txt(m, "MSH-4") == "RCVFAC");
  CHECK(ack_txt(m, "MSH-5") == "SENDAPP");
  CHECK(ack_txt(m, "MSH-6") == "SENDFAC");
  CHECK(ack_txt(m, "MSH-7") == "20240315143001");
  CHECK(ack_txt(m, "MSH-9") == "ACK^R01^ACK");
  CHECK(ack_txt(m, "MSH-9.1") == "ACK");
  CHECK(ack_txt(m, "MSH-9.2") == "R01");
  CHECK(ack_txt(m, "MSH-9.3") == "ACK");
  CHECK(ack_txt(m, "MSH-10") == "ACK-0001");
  CHECK(ack_txt(m, "MSH-11") == "P");
  CHECK(ack_txt(m, "MSH-12") == "2.5.1");
  CHECK(ack_txt(m, "MSH-18") == "UNICODE UTF-8");
  CHECK(m.charset() == Charset::utf8);

  // Components and escapes of the incoming MSH-3..6 are copied as sent.
  const Header hd =
      header_for("MSH|^~\\&|APP^1.2.3^ISO|FAC\\T\\X|||20240101||ADT^A01|C1|T|2.4||||||8859/1\r");
  const Message md = parse_ok(make_ack(hd, AckCode::AA, nullptr, options()));
  CHECK(ack_txt(md, "MSH-3") == "ADAPTERD");  // incoming MSH-5 empty: the default application
  CHECK(md.get("MSH-5")->raw() == "APP^1.2.3^ISO");
  CHECK(ack_txt(md, "MSH-5.2") == "1.2.3");
  CHECK(md.get("MSH-6")->raw() == "FAC\\T\\X");
  CHECK(ack_txt(md, "MSH-6") == "FAC&X");
  CHECK(ack_txt(md, "MSH-9") == "ACK^A01^ACK");
  CHECK(ack_txt(md, "MSH-11") == "T");
  CHECK(ack_txt(md, "MSH-12") == "2.4");
  CHECK(ack_txt(md, "MSH-18") == "8859/1");
  CHECK(md.charset() == Charset::latin1);

  // No trigger event, no processing ID, no version.
  Header bare;
  bare.found = true;
  bare.control_id = "X";
  AckOptions o = options();
  o.default_application = "MYAPP";
  const Message mb = parse_ok(make_ack(bare, AckCode::AR, nullptr, o));
  CHECK(ack_txt(mb, "MSH-3") == "MYAPP");
  CHECK(ack_txt(mb, "MSH-9") == "ACK");
  CHECK(ack_txt(mb, "MSH-11") == "P");
  CHECK(ack_txt(mb, "MSH-12") == "2.5.1");
  CHECK(ack_txt(mb, "MSA-2") == "X");
}

TEST_CASE("ack: an MSH-18 the adapter does not support is not echoed", "[hl7v2][ack]") {
  const std::string bytes = incoming("2.5.1", "", "UNICODE UTF-16");
  REQUIRE(Message::parse(bytes).error().code == Errc::unsupported_charset);
  const Header h = sniff_header(bytes);
  CHECK(h.charset == "UNICODE UTF-16");
  CHECK(ack_code_for(h, Errc::unsupported_charset) == AckCode::AR);
  const AckError err{Errc::unsupported_charset, "character set not supported", Location{}, 'E'};
  const Message m = parse_ok(make_ack(h, AckCode::AR, &err, options()));
  CHECK(ack_txt(m, "MSH-18").empty());
  CHECK(ack_txt(m, "MSA-2") == "CTRL-42");
  CHECK(ack_txt(m, "ERR-3.1") == "103");
  // A supported name is kept as the sender spelled it.
  const Message kept = parse_ok(
      make_ack(sniff_header(incoming("2.5.1", "", "utf-8")), AckCode::AA, nullptr, options()));
  CHECK(ack_txt(kept, "MSH-18") == "utf-8");
}

TEST_CASE("ack: custom delimiters are kept", "[hl7v2][ack]") {
  const Header h = header_for("MSH#!@$%#S#SF#R#RF#20240101##ORU!R01#C-7#P#2.5.1\rPID#1\r");
  const AckError err{Errc::missing_field, "PID-3 is empty: a#b", Location{}, 'E'};
  const std::string ack = make_ack(h, AckCode::AE, &err, options());
  CHECK(ack.compare(0, 9, "MSH#!@$%#") == 0);
  CHECK(ack.find("\rMSA#AE#C-7#PID-3 is empty: a$F$b\r") != std::string::npos);
  const Message m = parse_ok(ack);
  CHECK(m.delimiters().component == '!');
  CHECK(ack_txt(m, "MSH-9") == "ACK!R01!ACK");
  CHECK(ack_txt(m, "MSH-9.2") == "R01");
  CHECK(ack_txt(m, "MSA-2") == "C-7");
  CHECK(ack_txt(m, "ERR-3.2") == "Required field missing");
  CHECK(ack_txt(m, "ERR-8") == "PID-3 is empty: a#b");
}

TEST_CASE("ack: MSA-3 is cut to 80 characters without splitting a character", "[hl7v2][ack]") {
  const Header h = header_for(incoming("2.4"));
  const std::string text = std::string(79, 'x') + "\xC3\xA9 and more text after it";
  const AckError err{Errc::missing_field, text, Location{}, 'E'};
  const std::string ack = make_ack(h, AckCode::AE, &err, options());
  const Message m = parse_ok(ack);  // valid UTF-8
  CHECK(ack_txt(m, "MSA-3") == std::string(79, 'x'));
  CHECK(ack_txt(m, "ERR-8") == text);  // ERR-8 is not cut
  const AckError ascii{Errc::missing_field, std::string(100, 'y'), Location{}, 'E'};
  const Message ma = parse_ok(make_ack(h, AckCode::AE, &ascii, options()));
  CHECK(ack_txt(ma, "MSA-3") == std::string(80, 'y'));
}

TEST_CASE("ack: MSH-7 defaults to the current time as a DTM", "[hl7v2][ack]") {
  AckOptions o = options();
  o.timestamp.clear();
  const Message m = parse_ok(make_ack(header_for(incoming("2.5.1")), AckCode::AA, nullptr, o));
  const std::string ts = ack_txt(m, "MSH-7");
  REQUIRE(ts.size() == 23);  // YYYYMMDDHHMMSS.mmm+ZZZZ
  for (std::size_t i : {0u, 5u, 13u, 15u, 17u, 19u, 22u}) {
    CHECK(std::isdigit(static_cast<unsigned char>(ts[i])));
  }
  CHECK(ts[14] == '.');
  CHECK((ts[18] == '+' || ts[18] == '-'));
  CHECK(ts.compare(0, 2, "20") == 0);
}

TEST_CASE("header: header_of reads the MSH fields", "[hl7v2][header]") {
  const Header h = header_for(
      "MSH|^~\\&|APP\\T\\1|FAC|RCV|RFAC|20240101||ORU^R01^ORU_R01|CTRL-1|P|2.5.1^USA|||AL|ER||"
      "UNICODE UTF-8~8859/1\r");
  CHECK(h.found);
  CHECK(h.sending_application == "APP\\T\\1");  // as sent
  CHECK(h.sending_facility == "FAC");
  CHECK(h.receiving_application == "RCV");
  CHECK(h.receiving_facility == "RFAC");
  CHECK(h.message_type == "ORU^R01^ORU_R01");
  CHECK(h.message_code == "ORU");
  CHECK(h.trigger_event == "R01");
  CHECK(h.type_and_trigger() == "ORU^R01");
  CHECK(h.control_id == "CTRL-1");
  CHECK(h.processing_id == "P");
  CHECK(h.version == "2.5.1");
  CHECK(h.accept_ack_type == "AL");
  CHECK(h.application_ack_type == "ER");
  CHECK(h.charset == "UNICODE UTF-8");
  CHECK(h.enhanced_mode());
  CHECK(h.delimiters.escape == '\\');
  CHECK(check_required(h).ok());
}

TEST_CASE("header: sniff_header reads what it can of broken input", "[hl7v2][header]") {
  const std::string good = incoming("2.5.1", "AL", "UNICODE UTF-8");
  const Header sniffed = sniff_header(good);
  const Header parsed = header_for(good);
  CHECK(sniffed.found);
  CHECK(sniffed.sending_application == parsed.sending_application);
  CHECK(sniffed.receiving_facility == parsed.receiving_facility);
  CHECK(sniffed.message_type == parsed.message_type);
  CHECK(sniffed.message_code == "ORU");
  CHECK(sniffed.trigger_event == "R01");
  CHECK(sniffed.control_id == "CTRL-42");
  CHECK(sniffed.version == "2.5.1");
  CHECK(sniffed.accept_ack_type == "AL");
  CHECK(sniffed.charset == "UNICODE UTF-8");

  // Later segments broken: Message::parse fails, the header is still readable.
  const std::string broken =
      "\xEF\xBB\xBF\r\nMSH|^~\\&|S|SF|R|RF|20240101||ADT^A08|CTRL-9|P|2.4\r"
      "PID|1\r\xFF\xFEgarbage\rOBX|\xC3";
  REQUIRE_FALSE(Message::parse(broken).ok());
  const Header hb = sniff_header(broken);
  CHECK(hb.found);
  CHECK(hb.control_id == "CTRL-9");
  CHECK(hb.type_and_trigger() == "ADT^A08");
  CHECK(hb.version == "2.4");
  CHECK(hb.sending_facility == "SF");
  CHECK(check_required(hb).ok());
  // An ACK can answer it.
  const Message ack = parse_ok(make_ack(hb, AckCode::AR, nullptr, options()));
  CHECK(ack_txt(ack, "MSA-2") == "CTRL-9");
  CHECK(ack_txt(ack, "MSH-5") == "S");

  // The malformed sample with MSH-2 "^~\\&": standard delimiters are assumed.
  const Header win = sniff_header(read_sample("lfh_sample_win.hl7"));
  CHECK(win.found);
  CHECK(win.control_id == "102");
  CHECK(win.type_and_trigger() == "ADT^A01");
  CHECK(win.sending_application == "SE050");
  CHECK(win.version == "2.6");
  CHECK(win.accept_ack_type == "AL");
  CHECK(win.charset == "ASCII");
  CHECK(win.delimiters.escape == '\\');
  CHECK(win.delimiters.subcomponent == '&');

  // Custom delimiters are read from MSH-2.
  const Header custom = sniff_header("MSH#!@$%#S####20240101##ORU!R01#C-1#P#2.5.1\rPID#\xFF");
  CHECK(custom.found);
  CHECK(custom.delimiters.component == '!');
  CHECK(custom.trigger_event == "R01");
  CHECK(custom.control_id == "C-1");

  // MSH-2 the parser rejects, with MSH-1 one of the standard characters: the fallback set
  // differs from MSH-1, so the rejection ACK still parses and answers the control ID.
  const std::string caret = "MSH^~\\&&^S^SF^R^RF^20240101^^ADT~A01^C-5^P^2.5\rPID^1\r";
  REQUIRE(Message::parse(caret).error().code == Errc::bad_delimiters);
  const Header hc = sniff_header(caret);
  REQUIRE(hc.found);
  CHECK(hc.control_id == "C-5");
  CHECK(hc.delimiters.field == '^');
  CHECK(hc.delimiters.component != '^');
  const Message ack_c = parse_ok(make_ack(hc, AckCode::AR, nullptr, options()));
  CHECK(ack_c.delimiters().field == '^');
  CHECK(ack_txt(ack_c, "MSA-1") == "AR");
  CHECK(ack_txt(ack_c, "MSA-2") == "C-5");
  CHECK(ack_txt(ack_c, "MSH-5") == "S");

  // Two encoding characters: read as the parser reads them.
  const std::string two = "MSH|^~|S||R||20240101||ADT^A01|C-6|P|2.5\r";
  const Header h2 = sniff_header(two);
  CHECK(h2.delimiters.escape == '\0');
  CHECK(h2.delimiters.subcomponent == '\0');
  CHECK(h2.trigger_event == "A01");
  CHECK(h2.delimiters.encoding_characters() == header_for(two).delimiters.encoding_characters());
  const Message ack2 = parse_ok(make_ack(h2, AckCode::AA, nullptr, options()));
  CHECK(ack2.msh(2).raw() == "^~");
  CHECK(ack_txt(ack2, "MSA-2") == "C-6");

  // Nothing to read.
  for (std::string_view none :
       {std::string_view(""), std::string_view("MSH"), std::string_view("MSH\rPID|1|2|3"),
        std::string_view("PID|1"), std::string_view("MSHA^~\\&A"), std::string_view("\r\n"),
        std::string_view("MSHa^~\\&a"), std::string_view("MSH ^~\\& "),
        std::string_view("MSH\xA6^~\\&\xA6"
                         "C"),
        std::string_view("MSH\0^~\\&\0C", 10)}) {
    INFO(none);
    CHECK_FALSE(sniff_header(none).found);
  }
}

TEST_CASE("header: check_required names the first missing field", "[hl7v2][header]") {
  struct Case {
    std::string bytes;
    std::string where;
  };
  const Case cases[] = {
      {"MSH|^~\\&|A||||20240101|||C1|P|2.5.1\r", "MSH-9.1"},
      {"MSH|^~\\&|A||||20240101||ORU|C1|P|2.5.1\r", "MSH-9.2"},
      {"MSH|^~\\&|A||||20240101||^R01|C1|P|2.5.1\r", "MSH-9.1"},
      {"MSH|^~\\&|A||||20240101||ORU^R01||P|2.5.1\r", "MSH-10"},
      {"MSH|^~\\&|A||||20240101||ORU^R01|C1|P\r", "MSH-12"},
      {"MSH|^~\\&|A||||20240101||ORU^R01|C1|P|^USA\r", "MSH-12"},
  };
  for (const Case& c : cases) {
    INFO(c.bytes);
    auto r = check_required(header_for(c.bytes));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::missing_field);
    CHECK(r.error().location.to_string() == c.where);
    auto s = check_required(sniff_header(c.bytes));
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().location.to_string() == c.where);
  }
  CHECK_FALSE(check_required(sniff_header("not hl7")).ok());
}
