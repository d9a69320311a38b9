// One test case per file in fixtures/hl7v2/samples: concrete values read from each file by hand
// (escapes, repetitions, subcomponents, Z segments, batches, BOM and line-end variants) and the
// located errors of the malformed samples.
#include <catch2/catch.hpp>

#include <cstddef>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "hl7v2/batch.h"
#include "hl7v2/message.h"
#include "hl7v2/oru_r01.h"
#include "unit/hl7v2/support.h"

using namespace adapter;
using namespace adapter::hl7v2;
using namespace adapter::hl7v2::test;

namespace {

Value val(const Message& m, std::string_view path) {
  auto v = m.get(path);
  INFO(path);
  REQUIRE(v.ok());
  return *v;
}

std::string txt(const Message& m, std::string_view path) {
  return val(m, path).text();
}

std::size_t count_char(std::string_view s, char c) {
  std::size_t n = 0;
  for (char x : s) n += x == c ? 1 : 0;
  return n;
}

// The header the domain notes suggest for the vcf2hl7v2 fragments: they are the OBX block of a
// genetic ORU^R01, so an MSH, a PID and an OBR make them a whole message.
constexpr std::string_view kFragmentHeader =
    "MSH|^~\\&|VCF2HL7V2|LAB|EHR|HOSP|20240101120000||ORU^R01^ORU_R01|FRAG-1|P|2.5.1\r"
    "PID|1||P-1^^^LAB^MR||DOE^JANE\r"
    "OBR|1|||81247-9^Master HL7 genetic variant reporting panel^LN\r";

// The lfh_sample_* files declare MSH-2 "^~\\&"; the test replaces it with "^~\&" to read the rest.
std::string repair_msh2(std::string bytes) {
  const std::string bad = "MSH|^~\\\\&|";
  REQUIRE(bytes.compare(0, bad.size(), bad) == 0);
  bytes.replace(0, bad.size(), "MSH|^~\\&|");
  return bytes;
}

}  // namespace

TEST_CASE("sample bench_oru_r01_genomics.hl7: repetitions escapes SPM and the ZGX segment",
          "[hl7v2][samples]") {
  const std::string bytes = read_sample("bench_oru_r01_genomics.hl7");
  CHECK(bytes.size() == 2236);
  CHECK(count_char(bytes, '\r') == 0);
  CHECK(bytes.back() == '\n');  // LF line ends, final newline
  const Message m = parse_ok(bytes);
  REQUIRE(m.segment_count() == 24);
  CHECK(m.charset() == Charset::utf8);
  CHECK(m.delimiters().escape == '\\');

  CHECK(m.msh(1).raw() == "|");
  CHECK(m.msh(2).raw() == "^~\\&");
  CHECK(txt(m, "MSH-3") == "GENELAB");
  CHECK(txt(m, "MSH-4.2") == "2.16.840.1.113883.3.999");
  CHECK(txt(m, "MSH-9.1") == "ORU");
  CHECK(txt(m, "MSH-9.2") == "R01");
  CHECK(txt(m, "MSH-9.3") == "ORU_R01");
  CHECK(txt(m, "MSH-10") == "MSG-000123");
  CHECK(txt(m, "MSH-12") == "2.5.1");
  CHECK(txt(m, "MSH-15") == "AL");
  CHECK(txt(m, "MSH-16") == "NE");
  CHECK(val(m, "MSH-18").empty());
  CHECK(txt(m, "MSH-21.1") == "LRI_Common_Component");
  CHECK(val(m, "MSH-21.2").empty());
  CHECK(txt(m, "MSH-21.3") == "2.16.840.1.113883.9.16");
  CHECK(txt(m, "SFT-1.1") == "Gene Lab Systems");

  // PID-3: two repetitions, the first with an HD of three subcomponents.
  const Value pid3 = val(m, "PID-3");
  CHECK(pid3.repetition_count() == 2);
  CHECK(txt(m, "PID-3[1].1") == "MRN12345");
  CHECK(txt(m, "PID-3[1].4.1") == "HOSP");
  CHECK(txt(m, "PID-3[1].4.2") == "2.16.840.1.113883.3.888");
  CHECK(txt(m, "PID-3[1].4.3") == "ISO");
  CHECK(val(m, "PID-3[1].4").subcomponent_count() == 3);
  CHECK(txt(m, "PID-3[1].5") == "MR");
  CHECK(txt(m, "PID-3[2].1") == "98765");
  CHECK(txt(m, "PID-3[2].4") == "LAB");
  CHECK(txt(m, "PID-3[2].5") == "PI");
  CHECK(val(m, "PID-3[2].2").empty());
  CHECK(val(m, "PID-5").repetition_count() == 2);
  CHECK(txt(m, "PID-5[1].1") == "DOE");
  CHECK(txt(m, "PID-5[1].3") == "Q");
  CHECK(txt(m, "PID-5[1].7") == "L");
  CHECK(txt(m, "PID-5[2].1") == "SMITH");
  CHECK(txt(m, "PID-5[2].7") == "M");
  CHECK(val(m, "PID-5[2]").component_count() == 7);
  // \T\ inside a component decodes to the subcomponent separator, not a split.
  CHECK(val(m, "PID-11.2").raw() == "APT 4\\T\\5");
  CHECK(txt(m, "PID-11.2") == "APT 4&5");
  CHECK(val(m, "PID-11").component_count() == 7);
  CHECK(txt(m, "PID-11.5") == "02115");
  CHECK(txt(m, "PID-13.6") == "617");
  CHECK(txt(m, "PID-13.7") == "5551234");
  CHECK(txt(m, "OBR-4.1") == "81247-9");
  CHECK(txt(m, "OBR-16.9.1") == "NPI");
  CHECK(txt(m, "OBR-16.9.2") == "2.16.840.1.113883.4.6");
  CHECK(txt(m, "OBR-16.13") == "NPI");

  // OBX: 15 of them, sub-IDs 1, 1.a, 1.b.
  CHECK(m.count("OBX") == 15);
  CHECK(txt(m, "OBX[1]-4") == "1");
  CHECK(txt(m, "OBX[1]-5.2") == "Malignant neoplasm of breast");
  CHECK(txt(m, "OBX[2]-4") == "1.a");
  CHECK(txt(m, "OBX[2]-5.1") == "HGNC:1100");
  CHECK(txt(m, "OBX[2]-5.2") == "BRCA1");
  CHECK(txt(m, "OBX[3]-5") == "NM_007294.3:c.5266dupC");
  CHECK(txt(m, "OBX[7]-3.1") == "53037-8");
  CHECK(txt(m, "OBX[8]-2") == "NM");
  CHECK(txt(m, "OBX[8]-5") == "0.48");
  CHECK(txt(m, "OBX[8]-6.1") == "1");
  CHECK(txt(m, "OBX[8]-6.3") == "UCUM");
  CHECK(txt(m, "OBX[10]-4") == "1.b");
  CHECK(txt(m, "OBX[10]-5.2") == "BRCA2");
  CHECK(txt(m, "OBX[11]-5") == "NM_000059.3:c.7397T>C");
  CHECK(txt(m, "OBX[14]-5") == "0.99");
  CHECK(txt(m, "OBX[15]-4") == "1");
  // OBX-15-5: \T\, \.br\ and \H\..\N\ in the first of two repetitions.
  const Value report = val(m, "OBX[15]-5");
  CHECK(report.repetition_count() == 2);
  CHECK(report.repetition(1).text() ==
        "Pathogenic BRCA1 variant & BRCA2 VUS detected.\nSee recommendations below.");
  CHECK(report.repetition(2).text() == "Second repetition of report text");
  CHECK(txt(m, "NTE-3") == "Escapes: field | comp ^ rep ~ esc \\ sub & hex A end");
  CHECK(txt(m, "SPM-2.1") == "SPEC-1");
  CHECK(txt(m, "SPM-4.2") == "Blood specimen");
  CHECK(txt(m, "SPM-17") == "20240310080000-0500");

  // The Z segment: last, with a repeating field.
  const auto zgx = m.find("ZGX");
  REQUIRE(zgx.has_value());
  CHECK(zgx->index() == 23);
  CHECK(zgx->field_count() == 3);
  CHECK(zgx->field(2).component(2).text() == "v2.3");
  const Value qc = zgx->field(3);
  REQUIRE(qc.repetition_count() == 2);
  CHECK(qc.repetition(1).text() == "QC=PASS");
  CHECK(qc.repetition(2).text() == "DEPTH=312");
  CHECK(txt(m, "ZGX-3[2]") == "DEPTH=312");
}

TEST_CASE("sample msfc_ORU-R01-01.hl7: repeating OBX-5 and T escapes", "[hl7v2][samples]") {
  const std::string bytes = read_sample("msfc_ORU-R01-01.hl7");
  CHECK(count_char(bytes, '\r') == 0);
  CHECK(bytes.back() == '2');  // no final newline
  const Message m = parse_ok(bytes);
  REQUIRE(m.segment_count() == 29);
  CHECK(txt(m, "MSH-3.1") == "IA PHIMS Stage");
  CHECK(txt(m, "MSH-7") == "201203141259-0215");
  CHECK(txt(m, "MSH-10") == "2.16.840.1.114222.4.3.3.5.1.2-20120314235954.325");
  CHECK(txt(m, "MSH-11") == "T");
  CHECK(txt(m, "MSH-17") == "USA");
  CHECK(txt(m, "MSH-21.1") == "PHLabReport-Ack");
  CHECK(txt(m, "PID-3.4.2") == "2.16.840.1.114222.4.3.3.5.1.2");
  CHECK(txt(m, "PID-5.2") == "Huckleberry");
  CHECK(val(m, "PID-10").repetition_count() == 2);
  CHECK(txt(m, "PID-10[1].7") == "04/24/2007");
  CHECK(txt(m, "PID-10[2].2") == "American Indian or Alaska Native");
  CHECK(txt(m, "PV1-3.1.3") == "lp");
  CHECK(txt(m, "PV1-14") == "NHS Provider-General (inc.A&E-this Hosp)");
  CHECK(m.count("PRT") == 8);
  CHECK(m.count("OBX") == 5);
  CHECK(m.count("NTE") == 4);
  CHECK(txt(m, "NTE-3") ==
        "Enteric culture includes testing for Salmonella, Shigella, Campylobacter, Yersinia, "
        "E.coli O157:H7 & other STECs, and Aeromonas");
  CHECK(txt(m, "NTE[2]-5.2.2") == "Mr.");
  CHECK(val(m, "TQ1-4").repetition_count() == 2);
  CHECK(txt(m, "TQ1-4[2]") == "11:45:05");
  CHECK(txt(m, "CTD-5.12") == "(608)271-9001");
  CHECK(txt(m, "FT1-19[2].2") == "Nasal congestion");
  CHECK(txt(m, "SPM-2.2.2") == "IA PHIMS Stage");
  // The specimen OBX with the repeating value 27~25.
  const auto obx5 = m.find("OBX", 5);
  REQUIRE(obx5.has_value());
  CHECK(obx5->index() == 27);
  CHECK(obx5->occurrence() == 5);
  CHECK(obx5->field(3).component(1).text() == "8867-4");
  CHECK(obx5->field(4).text() == "1");
  const Value obx5_5 = obx5->field(5);
  CHECK(obx5_5.raw() == "27~25");
  REQUIRE(obx5_5.repetition_count() == 2);
  CHECK(obx5_5.repetition(1).text() == "27");
  CHECK(obx5_5.repetition(2).text() == "25");
  CHECK(txt(m, "OBX[5]-11") == "I");
  CHECK(m.segment(28).id() == "PRT");
}

TEST_CASE("sample msfc_ORU-R01-RMGEAD.hl7: SN value and trailing empty field", "[hl7v2][samples]") {
  const std::string bytes = read_sample("msfc_ORU-R01-RMGEAD.hl7");
  CHECK(bytes.back() == 'F');
  const Message m = parse_ok(bytes);
  REQUIRE(m.segment_count() == 4);
  CHECK(m.segment(0).field_count() == 13);  // "...|2.4|": MSH-13 present and empty
  CHECK(val(m, "MSH-13").empty());
  CHECK(txt(m, "MSH-9") == "ORU^R01");
  CHECK(val(m, "MSH-9").component_count() == 2);
  CHECK(txt(m, "MSH-12") == "2.4");
  CHECK(txt(m, "PID-5.1") == "EVERYWOMAN");
  CHECK(txt(m, "OBR-16.7") == "MD");
  CHECK(txt(m, "OBX-2") == "SN");
  const Value sn = val(m, "OBX-5");
  CHECK(sn.component_count() == 2);
  CHECK(sn.component(1).empty());
  CHECK(sn.component(2).text() == "182");
  CHECK(txt(m, "OBX-3.2") == "GLUCOSE");
  CHECK(txt(m, "OBX-7") == "70_105");
  CHECK(txt(m, "OBX-8") == "H");
}

TEST_CASE("sample msfc_LAB-ORU-1.hl7: byte-order mark and empty OBX values", "[hl7v2][samples]") {
  const std::string bytes = read_sample("msfc_LAB-ORU-1.hl7");
  REQUIRE(bytes.compare(0, 3, "\xEF\xBB\xBF") == 0);
  const Message m = parse_ok(bytes);
  CHECK(m.text().substr(0, 4) == "MSH|");
  CHECK(m.text().size() == bytes.size() - 3);
  REQUIRE(m.segment_count() == 16);
  CHECK(m.segment(0).id() == "MSH");
  CHECK(txt(m, "MSH-3") == "SomeSystem");
  CHECK(txt(m, "MSH-10") == "182");
  CHECK(txt(m, "PID-3.5") == "MR");
  CHECK(txt(m, "PID-11.5") == "999990000");
  CHECK(txt(m, "PID-11.7") == "M");
  CHECK(m.count("OBR") == 2);
  CHECK(m.count("OBX") == 10);
  CHECK(m.count("SPM") == 2);
  CHECK(txt(m, "OBR[1]-1") == "2");
  CHECK(txt(m, "OBR[1]-13") == " ");
  CHECK(txt(m, "OBR[2]-4.1") == "26464-8");
  const Value empty_value = val(m, "OBX[1]-5");
  CHECK(empty_value.empty());
  CHECK_FALSE(empty_value.is_null());
  CHECK_FALSE(empty_value.has_value());
  CHECK(empty_value.repetition_count() == 0);
  CHECK(txt(m, "OBX[2]-5") == "4.06");
  CHECK(txt(m, "OBX[2]-6") == "tera.l-1");
  CHECK(val(m, "OBX[3]-5").empty());
  CHECK(txt(m, "OBX[9]-3.2") == "MONOCYTES/100 LEUKOCYTES");
  CHECK(txt(m, "OBX[10]-5") == "0");
  CHECK(txt(m, "SPM[1]-17") == "20141006053500+0700");
  CHECK(m.find("SPM", 2)->index() == 15);
}

TEST_CASE("sample msfc_OUL-R22-01.hl7: v2.8 OUL with T escapes in a URL", "[hl7v2][samples]") {
  const Message m = parse_ok(read_sample("msfc_OUL-R22-01.hl7"));
  REQUIRE(m.segment_count() == 28);  // 27 LF, no final newline
  CHECK(txt(m, "MSH-9") == "OUL^R22^OUL_R22");
  CHECK(txt(m, "MSH-12") == "2.8");
  CHECK(txt(m, "MSH-18") == "UNICODE UTF-8");
  CHECK(m.charset() == Charset::utf8);
  CHECK(txt(m, "MSH-21.2") == "IHE");
  CHECK(m.count("OBX") == 7);
  CHECK(m.count("PRT") == 8);
  CHECK(val(m, "OBX[1]-5").repetition_count() == 2);
  CHECK(txt(m, "OBX[1]-5[2]") == "120");
  CHECK(txt(m, "OBX[4]-4") == "1^1^1");
  CHECK(val(m, "OBX[4]-4").component_count() == 3);
  CHECK(txt(m, "OBX[4]-5.1") ==
        "http://172.16.237.4/CaseCenter/index.php?ContainerType=CaseView&ContainerID=0&SlideID="
        "40bcbe96bcbf8cda8b07403263b92cb4");
  CHECK(txt(m, "OBX[4]-5.4") == "MRXS");
  CHECK(txt(m, "OBX[5]-5.5") == "VGhpcyBpcyBhIEJhc2U2NCBzdHJpbmc=");
  const Value spm3 = val(m, "SPM-3");
  CHECK(spm3.repetition_count() == 3);
  CHECK(spm3.repetition(1).component(1).subcomponent(1).text() == "2017-PAT-123456");
  CHECK(txt(m, "SPM-3[1].1.2") == "L");
  CHECK(txt(m, "SPM-3[3].1.1") == "2017");
}

TEST_CASE("sample lfh_ORU-multiline-short.hl7: empty OBX-3 and no final newline",
          "[hl7v2][samples]") {
  const std::string bytes = read_sample("lfh_ORU-multiline-short.hl7");
  CHECK(bytes.back() == '5');
  CHECK(count_char(bytes, '\r') == 0);
  const Message m = parse_ok(bytes);
  REQUIRE(m.segment_count() == 8);
  CHECK(txt(m, "MSH-9.3") == "ORU_R01");
  CHECK(txt(m, "MSH-12") == "2.6");
  CHECK(txt(m, "MSH-24.2") == "4086::132:2A57:3C28");
  CHECK(txt(m, "MSH-24.3") == "IPv6");
  const Value addr = val(m, "PID-11");
  CHECK(addr.repetition_count() == 6);
  CHECK(txt(m, "PID-11[1].5") == "L6G 1C7");
  CHECK(txt(m, "PID-11[3].3") == "Unionville");
  CHECK(val(m, "PID-11[4].1.1").empty());
  CHECK(txt(m, "PID-11[4].1.2") == "Warden Av");
  CHECK(txt(m, "PID-11[5]") == "8200");
  CHECK(txt(m, "PID-11[6].7") == "B");
  CHECK(txt(m, "PID-13[2].6") == "905");
  CHECK(txt(m, "NTE-3") == "Created for MRN: 0d70c6c8");
  CHECK(txt(m, "PV1-3.7") == "8200 Warden Av");
  CHECK(m.count("OBX") == 3);
  CHECK(val(m, "OBX[1]-3").empty());
  CHECK(val(m, "OBX[1]-5").empty());
  CHECK(txt(m, "OBX[2]-5") == "[PII] Emergency Department");
  CHECK(txt(m, "OBX[3]-5") == "ED Encounter Arrival Date: [ADDRESS] [PERSONALNAME]:");
  // The last segment ends at the end of input: its last field is complete.
  CHECK(txt(m, "OBX[3]-14") == "20200802124455");
}

TEST_CASE("sample lfh_ORU-multiline-short-mixed.hl7: ST and TX rows", "[hl7v2][samples]") {
  const std::string bytes = read_sample("lfh_ORU-multiline-short-mixed.hl7");
  CHECK(bytes.back() == '5');
  const Message m = parse_ok(bytes);
  REQUIRE(m.segment_count() == 9);
  CHECK(m.count("OBX") == 4);
  CHECK(txt(m, "OBX[1]-2") == "ST");
  CHECK(txt(m, "OBX[1]-3") == "12345");
  CHECK(val(m, "OBX[1]-5").empty());
  CHECK(txt(m, "OBX[2]-2") == "TX");
  CHECK(val(m, "OBX[2]-3").empty());
  CHECK(txt(m, "OBX[4]-5") == "ED Encounter Arrival Date: [ADDRESS] [PERSONALNAME]:");
  CHECK(txt(m, "OBR-4.2") == "ECHO CARDIOGRAM COMPLETE");
}

TEST_CASE("sample lfh_sample_unix.hl7: LF ends and the doubled backslash of MSH-2",
          "[hl7v2][samples]") {
  const std::string bytes = read_sample("lfh_sample_unix.hl7");
  CHECK(count_char(bytes, '\r') == 0);
  CHECK(count_char(bytes, '\n') == 7);
  CHECK(bytes.back() == '5');
  // Same MSH-2 as lfh_sample_win.hl7: "^~\\&" declares '\' as escape and subcomponent.
  auto r = Message::parse(bytes);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::bad_delimiters);
  CHECK(r.error().location.segment == "MSH");
  CHECK(r.error().location.field == 2);
  CHECK(r.error().location.to_string() == "MSH-2");

  const Message m = parse_ok(repair_msh2(bytes));
  REQUIRE(m.segment_count() == 8);
  CHECK(m.text().find('\r') == std::string_view::npos);
  CHECK(val(m, "MSH-18").empty());
  CHECK(txt(m, "MSH-9") == "ADT^A01");
  CHECK(txt(m, "MSH-17") == "764");
  CHECK(txt(m, "EVN-2") == "201209122222");
  CHECK(txt(m, "PID-1") == "0010");
  CHECK(txt(m, "PID-3[1].2") == "5");
  CHECK(txt(m, "PID-3[2].1") == "1234568965");
  CHECK(val(m, "OBX-16").repetition_count() == 4);
  CHECK(txt(m, "OBX-16[3].3") == "Paul");
  // A literal "\r" (backslash, r) is an unterminated escape: kept verbatim.
  CHECK(txt(m, "OBX-17") == "\\r");
  CHECK(txt(m, "AL1[2]-5[2]") == "VOMITING\\r");
  CHECK(txt(m, "PV1-44") == "201409122200");
  CHECK(txt(m, "PRB-4") == "53692");
}

TEST_CASE("sample lfh_sample_win.hl7: CRLF ends and bad delimiters at MSH-2", "[hl7v2][samples]") {
  const std::string bytes = read_sample("lfh_sample_win.hl7");
  CHECK(count_char(bytes, '\r') == 7);
  CHECK(bytes.find("\r\n") != std::string::npos);
  auto r = Message::parse(bytes);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::bad_delimiters);
  CHECK(r.error().location.segment == "MSH");
  CHECK(r.error().location.segment_index == 1);
  CHECK(r.error().location.field == 2);
  CHECK(r.error().message.find("'\\' twice") != std::string::npos);

  // With MSH-2 repaired: CRLF is one separator (no blank segments), and every segment after MSH
  // equals its LF twin in lfh_sample_unix.hl7.
  const Message win = parse_ok(repair_msh2(bytes));
  const Message unix = parse_ok(repair_msh2(read_sample("lfh_sample_unix.hl7")));
  REQUIRE(win.segment_count() == 8);
  REQUIRE(unix.segment_count() == 8);
  for (std::size_t i = 1; i < 8; ++i) {
    INFO("segment " << i);
    CHECK(win.segment(i).raw() == unix.segment(i).raw());
    CHECK(win.segment(i).raw().find('\r') == std::string_view::npos);
  }
  CHECK(txt(win, "MSH-18") == "ASCII");
  CHECK(win.charset() == Charset::ascii);
  CHECK(txt(win, "MSH-10") == "102");
  CHECK(txt(win, "MSH-24.3") == "IPv6\\r\"");
  CHECK(txt(win, "PRB-4") == "53692");
}

TEST_CASE("sample python-hl7_sample_hl7_ORU_R01_v2.4.hl7: CR ends and an FN value",
          "[hl7v2][samples]") {
  const std::string bytes = read_sample("python-hl7_sample_hl7_ORU_R01_v2.4.hl7");
  CHECK(count_char(bytes, '\n') == 0);
  CHECK(count_char(bytes, '\r') == 5);
  CHECK(bytes.back() == '\r');
  const Message m = parse_ok(bytes);
  REQUIRE(m.segment_count() == 5);
  CHECK(txt(m, "MSH-10") == "CNTRL-3456");
  CHECK(txt(m, "PID-7") == "196203520");
  CHECK(txt(m, "OBR-15.9") == "LEVEL SEVEN HEALTHCARE, INC.");
  CHECK(txt(m, "OBX[1]-2") == "SN");
  CHECK(txt(m, "OBX[1]-5.2") == "182");
  CHECK(txt(m, "OBX[1]-3.3") == "POST 12H CFST:MCNC:PT:SER/PLAS:QN");
  CHECK(txt(m, "OBX[2]-2") == "FN");
  CHECK(txt(m, "OBX[2]-3.1") == "1553-5");
  CHECK(m.find("OBX", 3) == std::nullopt);
}

TEST_CASE("sample python-hl7_rep_sample_repetitions_subcomponents.hl7: every level in one PID",
          "[hl7v2][samples]") {
  const std::string bytes = read_sample("python-hl7_rep_sample_repetitions_subcomponents.hl7");
  const Message m = parse_ok(bytes);
  REQUIRE(m.segment_count() == 2);
  const Segment pid = m.segment(1);
  CHECK(pid.field_count() == 4);
  CHECK(pid.field(1).text() == "Field1");
  CHECK(pid.field(2).component_count() == 2);
  CHECK(pid.field(2).component(1).text() == "Component1");
  CHECK(pid.field(2).component(2).text() == "Component2");
  const Value f3 = pid.field(3);
  CHECK(f3.component_count() == 3);
  CHECK(f3.component(1).text() == "Component1");
  CHECK(f3.component(2).subcomponent_count() == 2);
  CHECK(f3.component(2).subcomponent(1).text() == "Sub-Component1");
  CHECK(f3.component(2).subcomponent(2).text() == "Sub-Component2");
  CHECK(f3.component(3).text() == "Component3");
  CHECK(txt(m, "PID-3.2.2") == "Sub-Component2");
  const Value f4 = pid.field(4);
  CHECK(f4.repetition_count() == 2);
  CHECK(f4.repetition(1).text() == "Repeat1");
  CHECK(f4.repetition(2).text() == "Repeat2");
  CHECK(f4.repetition(3).empty());
}

TEST_CASE("sample python-hl7_sample_file_FHS_BHS_BTS_FTS.hl7: a file of one batch",
          "[hl7v2][samples]") {
  const std::string bytes = read_sample("python-hl7_sample_file_FHS_BHS_BTS_FTS.hl7");
  CHECK(looks_like_batch(bytes));
  auto batch = split_batch(bytes);
  REQUIRE(batch.ok());
  CHECK(batch->enveloped());
  CHECK(batch->batch_count == 1);
  CHECK(batch->file_header.substr(0, 4) == "FHS|");
  CHECK(batch->batch_header.substr(0, 4) == "BHS|");
  CHECK(batch->batch_trailer == "BTS|1");
  CHECK(batch->file_trailer == "FTS|1");
  REQUIRE(batch->messages.size() == 1);
  const Message m = parse_ok(batch->messages[0]);
  CHECK(m.segment_count() == 6);
  CHECK(txt(m, "MSH-9") == "ADT^A04^ADT_A01");
  CHECK(txt(m, "MSH-10") == "12334456778890");
  CHECK(txt(m, "MSH-18") == "ASCII");
  CHECK(txt(m, "PID-3.1") == "0000112234");
  CHECK(txt(m, "PID-5.7") == "S");
  CHECK(m.segment(5).id() == "PV1");

  // The whole file is not one message.
  auto whole = Message::parse(bytes);
  REQUIRE_FALSE(whole.ok());
  CHECK(whole.error().code == Errc::bad_batch);
  CHECK(whole.error().location.segment_index == 1);
}

TEST_CASE("sample python-hl7_sample_batch1_BHS_2msgs_BTS.hl7: a batch of two messages",
          "[hl7v2][samples]") {
  const std::string bytes = read_sample("python-hl7_sample_batch1_BHS_2msgs_BTS.hl7");
  auto batch = split_batch(bytes);
  REQUIRE(batch.ok());
  CHECK(batch->enveloped());
  CHECK(batch->file_header.empty());
  CHECK(batch->batch_count == 1);
  CHECK(batch->batch_trailer == "BTS|2");
  REQUIRE(batch->messages.size() == 2);
  const Message first = parse_ok(batch->messages[0]);
  const Message second = parse_ok(batch->messages[1]);
  CHECK(first.segment_count() == 6);
  CHECK(second.segment_count() == 6);
  CHECK(txt(first, "MSH-10") == "12334456778890");
  CHECK(txt(second, "MSH-10") == "12334456778891");
  CHECK(txt(second, "PV1-2") == "O");
}

TEST_CASE("sample python-hl7_sample_batch2_no_BHS_2msgs.hl7: two messages without envelope",
          "[hl7v2][samples]") {
  const std::string bytes = read_sample("python-hl7_sample_batch2_no_BHS_2msgs.hl7");
  CHECK(looks_like_batch(bytes));
  auto batch = split_batch(bytes);
  REQUIRE(batch.ok());
  CHECK_FALSE(batch->enveloped());
  CHECK(batch->batch_count == 0);
  REQUIRE(batch->messages.size() == 2);
  CHECK(txt(parse_ok(batch->messages[0]), "MSH-10") == "12334456778890");
  CHECK(txt(parse_ok(batch->messages[1]), "MSH-10") == "12334456778891");
  CHECK(parse_ok(batch->messages[1]).segment_count() == 6);

  // Parsed as one message, the second MSH (segment 7) is a located error.
  auto whole = Message::parse(bytes);
  REQUIRE_FALSE(whole.ok());
  CHECK(whole.error().code == Errc::bad_batch);
  CHECK(whole.error().location.segment == "MSH");
  CHECK(whole.error().location.segment_index == 7);
}

TEST_CASE("sample python-hl7_sample_bad_batch1_MALFORMED_nested_BHS.hl7: nested BHS at segment 4",
          "[hl7v2][samples]") {
  const std::string bytes = read_sample("python-hl7_sample_bad_batch1_MALFORMED_nested_BHS.hl7");
  auto batch = split_batch(bytes);
  REQUIRE_FALSE(batch.ok());
  const ParseError& e = batch.error();
  CHECK(e.code == Errc::bad_batch);
  CHECK(e.location.segment == "BHS");
  CHECK(e.location.segment_index == 4);
  CHECK(e.message.find("segment 1") != std::string::npos);  // the batch it is nested in
  CHECK(e.to_string().substr(0, 5) == "BHS: ");
}

TEST_CASE("sample python-hl7_sample_msh_ADT_quoted_nulls.hl7: explicit nulls differ from empty",
          "[hl7v2][samples]") {
  const std::string bytes = read_sample("python-hl7_sample_msh_ADT_quoted_nulls.hl7");
  const Message m = parse_ok(bytes);
  REQUIRE(m.segment_count() == 9);
  CHECK(txt(m, "MSH-9") == "ADT^A01");
  CHECK(txt(m, "MSH-12") == "2.3");
  CHECK(m.count("IN1") == 3);
  CHECK(m.count("IN2") == 2);

  const Value pv1_9 = val(m, "PV1-9");
  CHECK(pv1_9.is_null());
  CHECK_FALSE(pv1_9.empty());
  CHECK_FALSE(pv1_9.has_value());
  CHECK(pv1_9.raw() == "\"\"");
  const Value pv1_11 = val(m, "PV1-11");
  CHECK(pv1_11.empty());
  CHECK_FALSE(pv1_11.is_null());
  CHECK(txt(m, "PV1-10") == "NUR");
  CHECK(val(m, "PV1-10").has_value());
  CHECK(txt(m, "PV1-5") == " 863968");  // leading space kept
  CHECK(txt(m, "PV1-44") == "20140210225300");
  CHECK(val(m, "PV1-45").is_null());
  CHECK(val(m, "DG1-5").is_null());
  // Nulls at component level.
  CHECK(txt(m, "IN1[1]-5.1") == "PO BOX 223");
  CHECK(val(m, "IN1[1]-5.2").is_null());
  CHECK(val(m, "IN1[1]-5.9").is_null());
  CHECK(val(m, "IN1[1]-5.8").empty());
  CHECK(val(m, "IN1[3]-3").is_null());
  // Trailing empty fields count.
  CHECK(m.find("IN2", 1)->field_count() == 57);
  CHECK(val(m, "IN2[2]-25").is_null());
  // Repetitions.
  CHECK(val(m, "PID-3").repetition_count() == 2);
  CHECK(txt(m, "PID-3[2].1") == "162840");
  CHECK(txt(m, "PID-3[2].4") == "MSH_EMPI");
  CHECK(val(m, "PID-4").repetition_count() == 3);
  CHECK(txt(m, "PID-4[2].5") == "DONOR ");
  CHECK(txt(m, "PID-4[3].1") == "Q2147670");
  CHECK(txt(m, "PID-13[2].2") == "ALTERNATE");
}

namespace {

// Shared checks for the three vcf2hl7v2 fragments: no MSH, then whole with a built header.
Message check_fragment(const std::string& name, std::size_t lines) {
  const std::string bytes = read_sample(name);
  CHECK(count_char(bytes, '\n') == lines);
  CHECK(bytes.substr(0, 4) == "OBX|");
  auto r = Message::parse(bytes);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::not_hl7);
  CHECK(r.error().location.segment_index == 1);
  auto batch = split_batch(bytes);
  REQUIRE_FALSE(batch.ok());
  CHECK(batch.error().location.segment_index == 1);

  Message m = parse_ok(std::string(kFragmentHeader) + bytes);
  CHECK(m.segment_count() == 3 + lines);
  CHECK(m.count("OBX") == lines);
  // The fragment is one order's observations: nothing left over.
  const OruR01 view = view_oru_r01(m);
  CHECK(view.unplaced.empty());
  REQUIRE(view.patient_results.size() == 1);
  REQUIRE(view.patient_results[0].orders.size() == 1);
  CHECK(view.patient_results[0].orders[0].observations.size() == lines);
  const std::vector<SegmentRef> all = view.all_segments();
  REQUIRE(all.size() == m.segment_count() - 1);
  for (std::size_t i = 0; i < all.size(); ++i) CHECK(all[i] == i + 1);
  return m;
}

}  // namespace

TEST_CASE("sample vcf2hl7v2_expected_example4.obx.hl7: region-studied and variant groups",
          "[hl7v2][samples]") {
  const Message m = check_fragment("vcf2hl7v2_expected_example4.obx.hl7", 135);
  CHECK(txt(m, "OBX[1]-1") == "1000");
  CHECK(txt(m, "OBX[1]-4") == "1a");
  CHECK(txt(m, "OBX[1]-3.1") == "48013-7");
  CHECK(txt(m, "OBX[1]-5") == "NC_000001.11");
  CHECK(txt(m, "OBX[2]-4") == "1a.a");
  CHECK(txt(m, "OBX[2]-2") == "NR");
  CHECK(txt(m, "OBX[2]-3.1") == "51959-5");
  const Value range = val(m, "OBX[2]-5");
  CHECK(range.raw() == "1^249250621");
  CHECK(range.component_count() == 2);
  CHECK(range.component(1).text() == "1");
  CHECK(range.component(2).text() == "249250621");
  CHECK(txt(m, "OBX[49]-4") == "1y");
  CHECK(txt(m, "OBX[49]-5") == "NC_012920.1");
  CHECK(txt(m, "OBX[50]-5.2") == "16569");
  CHECK(txt(m, "OBX[51]-4") == "1");
  CHECK(txt(m, "OBX[51]-3.1") == "51968-6");
  CHECK(txt(m, "OBX[51]-3.3") == "UFMOLLRR");
  CHECK(txt(m, "OBX[51]-5") == "Positive");
  CHECK(txt(m, "OBX[52]-4") == "2a");
  CHECK(txt(m, "OBX[52]-3.1") == "83005-9");
  CHECK(txt(m, "OBX[52]-5.2") == "Simple");
  CHECK(txt(m, "OBX[53]-5") == "NC_000023.11:60465:T:C");
  CHECK(txt(m, "OBX[58]-5") == "60466");
  CHECK(txt(m, "OBX[135]-1") == "1134");
  CHECK(txt(m, "OBX[135]-4") == "2f");
  CHECK(txt(m, "OBX[135]-5.2") == "Heterozygous");
  // Group sizes by sub-ID: 50 region-studied rows, 1 overall, 6 variants of 14 rows.
  std::size_t region = 0, overall = 0, variant = 0;
  for (std::size_t i = 1; i <= 135; ++i) {
    const std::string sub_id = m.find("OBX", i)->field(4).text();
    if (sub_id == "1") {
      ++overall;
    } else if (sub_id[0] == '1') {
      ++region;
    } else if (sub_id[0] == '2') {
      ++variant;
    }
  }
  CHECK(region == 50);
  CHECK(overall == 1);
  CHECK(variant == 84);
}

TEST_CASE("sample vcf2hl7v2_expected_example1_with_patient.obx.hl7: variant groups with REF dot",
          "[hl7v2][samples]") {
  const Message m = check_fragment("vcf2hl7v2_expected_example1_with_patient.obx.hl7", 113);
  CHECK(txt(m, "OBX[1]-4") == "1");
  CHECK(txt(m, "OBX[1]-2") == "TX");
  CHECK(txt(m, "OBX[1]-5") == "Positive");
  CHECK(txt(m, "OBX[2]-4") == "2a");
  CHECK(txt(m, "OBX[3]-5") == "NC_000001.10:14:.:G");
  CHECK(txt(m, "OBX[7]-3.1") == "69547-8");
  CHECK(txt(m, "OBX[7]-5") == ".");
  CHECK(txt(m, "OBX[8]-2") == "NR");
  CHECK(txt(m, "OBX[8]-5") == "15");
  CHECK(txt(m, "OBX[17]-4") == "2b");
  CHECK(txt(m, "OBX[17]-5") == "NC_000001.10:15:A,T:G");
  CHECK(txt(m, "OBX[21]-5") == "A,T");
  CHECK(txt(m, "OBX[35]-4") == "2c");
  CHECK(val(m, "OBX[35]-5").empty());  // "2c||": no reference allele
  CHECK(txt(m, "OBX[113]-1") == "1112");
  CHECK(txt(m, "OBX[113]-4") == "2h");
}

TEST_CASE("sample vcf2hl7v2_expected_example3.obx.hl7: two ranges and an NM frequency",
          "[hl7v2][samples]") {
  const Message m = check_fragment("vcf2hl7v2_expected_example3.obx.hl7", 77);
  CHECK(txt(m, "OBX[1]-4") == "1a");
  CHECK(txt(m, "OBX[2]-4") == "1a.a");
  CHECK(txt(m, "OBX[2]-5.1") == "50000");
  CHECK(txt(m, "OBX[2]-5.2") == "52000");
  CHECK(txt(m, "OBX[3]-4") == "1a.b");
  CHECK(txt(m, "OBX[3]-5.2") == "60600");
  CHECK(txt(m, "OBX[4]-4") == "1b");
  CHECK(txt(m, "OBX[5]-4") == "1b.a");
  CHECK(txt(m, "OBX[6]-4") == "1");
  CHECK(txt(m, "OBX[7]-4") == "2a");
  CHECK(txt(m, "OBX[76]-5.2") == "Heteroplasmic");
  CHECK(txt(m, "OBX[77]-2") == "NM");
  CHECK(txt(m, "OBX[77]-3.1") == "81258-6");
  CHECK(txt(m, "OBX[77]-4") == "2e");
  CHECK(txt(m, "OBX[77]-5") == "0.8");
}
