// The ORU^R01 group view on the samples and on built messages: placement, notes, specimens, Z
// segments, unplaced segments, and that nothing is ever dropped.
#include "hl7v2/oru_r01.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "hl7v2/message.h"
#include "unit/hl7v2/support.h"

using namespace adapter;
using namespace adapter::hl7v2;
using namespace adapter::hl7v2::test;

namespace {

// Segments joined with CR after a fixed MSH.
Message oru(std::initializer_list<std::string_view> segments) {
  std::string s = "MSH|^~\\&|LAB||EHR||20240101||ORU^R01^ORU_R01|1|P|2.5.1\r";
  for (std::string_view seg : segments) {
    s += seg;
    s += '\r';
  }
  return parse_ok(s);
}

// Every segment index 1..n-1 exactly once.
void check_nothing_dropped(const Message& m, const OruR01& view) {
  std::vector<SegmentRef> expected;
  for (std::size_t i = 1; i < m.segment_count(); ++i)
    expected.push_back(static_cast<SegmentRef>(i));
  CHECK(view.all_segments() == expected);
}

std::string id_of(const Message& m, SegmentRef s) {
  return std::string(m.segment(s).id());
}

const Unplaced* find_unplaced(const OruR01& view, SegmentRef s) {
  for (const auto& u : view.unplaced) {
    if (u.segment == s) return &u;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("oru_r01: the genomics benchmark message", "[hl7v2][oru]") {
  const Message m = parse_ok(read_sample("bench_oru_r01_genomics.hl7"));
  const OruR01 v = view_oru_r01(m);
  CHECK(v.unplaced.empty());
  CHECK(v.extras.empty());
  CHECK(v.software == std::vector<SegmentRef>{1});
  CHECK_FALSE(v.dsc.has_value());
  REQUIRE(v.patient_results.size() == 1);
  const OruPatientResult& r = v.patient_results[0];
  REQUIRE(r.patient.has_value());
  CHECK(r.patient->pid == 2);
  CHECK(r.patient->pv1 == SegmentRef{3});
  CHECK_FALSE(r.patient->pv2.has_value());
  REQUIRE(r.orders.size() == 1);
  const OruOrder& o = r.orders[0];
  CHECK(o.orc == SegmentRef{4});
  CHECK(o.obr == SegmentRef{5});
  REQUIRE(o.observations.size() == 15);
  for (std::size_t i = 0; i < 15; ++i) {
    CHECK(o.observations[i].obx == 6 + i);
    CHECK(m.segment(o.observations[i].obx).field(1).text() == std::to_string(i + 1));
  }
  // The NTE belongs to the 15th OBX (the TX report), nowhere else.
  CHECK(o.observations[14].notes == std::vector<SegmentRef>{21});
  for (std::size_t i = 0; i < 14; ++i) CHECK(o.observations[i].notes.empty());
  CHECK(o.notes.empty());
  REQUIRE(o.specimens.size() == 1);
  CHECK(o.specimens[0].spm == 22);
  CHECK(o.specimens[0].observations.empty());
  // ZGX follows the SPM: it is that specimen's extra.
  CHECK(o.specimens[0].extras == std::vector<SegmentRef>{23});
  CHECK(id_of(m, 23) == "ZGX");
  check_nothing_dropped(m, v);
}

TEST_CASE("oru_r01: msfc ORU-R01-01 with specimen observations and v2.8 segments", "[hl7v2][oru]") {
  const Message m = parse_ok(read_sample("msfc_ORU-R01-01.hl7"));
  const OruR01 v = view_oru_r01(m);
  CHECK(v.software == std::vector<SegmentRef>{1});
  REQUIRE(v.patient_results.size() == 1);
  const OruPatientResult& r = v.patient_results[0];
  REQUIRE(r.patient.has_value());
  CHECK(r.patient->pid == 2);
  CHECK(r.patient->pv1 == SegmentRef{6});
  REQUIRE(r.orders.size() == 1);
  const OruOrder& o = r.orders[0];
  CHECK(o.orc == SegmentRef{8});
  CHECK(o.obr == SegmentRef{13});
  CHECK(o.notes == std::vector<SegmentRef>{14, 15});
  CHECK(o.timing == std::vector<SegmentRef>{17});
  CHECK(o.ctd == SegmentRef{18});
  REQUIRE(o.observations.size() == 1);
  CHECK(o.observations[0].obx == 19);
  CHECK(o.observations[0].notes == std::vector<SegmentRef>{21, 22});
  CHECK(o.ft1 == std::vector<SegmentRef>{23});
  CHECK(o.cti == std::vector<SegmentRef>{24});
  REQUIRE(o.specimens.size() == 1);
  CHECK(o.specimens[0].spm == 25);
  REQUIRE(o.specimens[0].observations.size() == 2);
  CHECK(o.specimens[0].observations[0].obx == 26);
  CHECK(o.specimens[0].observations[1].obx == 27);
  CHECK(m.segment(27).field(5).repetition(2).text() == "25");
  // PRT (v2.7+) sits with the patient, visit, order or observation it follows; TXA and the OBX
  // without an OBR are reported, each with a reason.
  CHECK(r.patient->participants == std::vector<SegmentRef>{3, 5, 7});
  CHECK(o.participants == std::vector<SegmentRef>{9, 11, 16});
  CHECK(o.observations[0].participants == std::vector<SegmentRef>{20});
  CHECK(o.specimens[0].observations[1].participants == std::vector<SegmentRef>{28});
  std::vector<SegmentRef> unplaced;
  for (const auto& u : v.unplaced) {
    unplaced.push_back(u.segment);
    CHECK_FALSE(u.reason.empty());
  }
  CHECK(unplaced == std::vector<SegmentRef>{4, 10, 12});
  CHECK(find_unplaced(v, 4)->reason.find("before any OBR") != std::string::npos);
  CHECK(find_unplaced(v, 10)->reason.find("no OBR") != std::string::npos);
  CHECK(find_unplaced(v, 12)->reason.find("TXA") != std::string::npos);
  check_nothing_dropped(m, v);
}

TEST_CASE("oru_r01: msfc LAB-ORU-1 has two OBR groups each with an SPM", "[hl7v2][oru]") {
  const Message m = parse_ok(read_sample("msfc_LAB-ORU-1.hl7"));
  const OruR01 v = view_oru_r01(m);
  CHECK(v.unplaced.empty());
  CHECK(v.software.empty());
  REQUIRE(v.patient_results.size() == 1);
  const OruPatientResult& r = v.patient_results[0];
  REQUIRE(r.patient.has_value());
  CHECK(r.patient->pid == 1);
  CHECK_FALSE(r.patient->pv1.has_value());
  REQUIRE(r.orders.size() == 2);
  CHECK_FALSE(r.orders[0].orc.has_value());
  CHECK(r.orders[0].obr == SegmentRef{2});
  CHECK(r.orders[1].obr == SegmentRef{9});
  for (std::size_t k = 0; k < 2; ++k) {
    const OruOrder& o = r.orders[k];
    REQUIRE(o.observations.size() == 5);
    const SegmentRef first = k == 0 ? 3 : 10;
    for (std::size_t i = 0; i < 5; ++i) CHECK(o.observations[i].obx == first + i);
    REQUIRE(o.specimens.size() == 1);
    CHECK(o.specimens[0].spm == (k == 0 ? 8u : 15u));
    CHECK(o.specimens[0].observations.empty());
  }
  CHECK(m.segment(r.orders[1].obr.value()).field(4).component(1).text() == "26464-8");
  check_nothing_dropped(m, v);
}

TEST_CASE("oru_r01: every ORU sample keeps every segment", "[hl7v2][oru]") {
  for (const char* name :
       {"bench_oru_r01_genomics.hl7", "msfc_ORU-R01-01.hl7", "msfc_ORU-R01-RMGEAD.hl7",
        "msfc_LAB-ORU-1.hl7", "lfh_ORU-multiline-short.hl7", "lfh_ORU-multiline-short-mixed.hl7",
        "python-hl7_sample_hl7_ORU_R01_v2.4.hl7"}) {
    INFO(name);
    const Message m = parse_ok(read_sample(name));
    auto type = m.get("MSH-9.1");
    REQUIRE(type.ok());
    REQUIRE(type->text() == "ORU");
    CHECK(m.get("MSH-9.2")->text() == "R01");
    const OruR01 v = view_oru_r01(m);
    CHECK_FALSE(v.patient_results.empty());
    check_nothing_dropped(m, v);
  }
  // The lfh sample: a patient NTE and a visit.
  const Message lfh = parse_ok(read_sample("lfh_ORU-multiline-short.hl7"));
  const OruR01 v = view_oru_r01(lfh);
  CHECK(v.unplaced.empty());
  REQUIRE(v.patient_results.size() == 1);
  CHECK(v.patient_results[0].patient->notes == std::vector<SegmentRef>{2});
  CHECK(v.patient_results[0].patient->pv1 == SegmentRef{3});
  CHECK(v.patient_results[0].orders.at(0).observations.size() == 3);
}

TEST_CASE("oru_r01: an OBX before any OBR is unplaced", "[hl7v2][oru]") {
  const Message m = oru({"PID|1", "OBX|1|ST|a||x", "OBR|1", "OBX|2|ST|b||y"});
  const OruR01 v = view_oru_r01(m);
  REQUIRE(v.unplaced.size() == 1);
  CHECK(v.unplaced[0].segment == 2);
  CHECK(v.unplaced[0].reason.find("before any OBR") != std::string::npos);
  REQUIRE(v.patient_results.size() == 1);
  REQUIRE(v.patient_results[0].orders.size() == 1);
  REQUIRE(v.patient_results[0].orders[0].observations.size() == 1);
  CHECK(v.patient_results[0].orders[0].observations[0].obx == 4);
  check_nothing_dropped(m, v);
  // Straight after MSH too.
  const Message first = oru({"OBX|1|ST|a||x"});
  const OruR01 fv = view_oru_r01(first);
  REQUIRE(fv.unplaced.size() == 1);
  CHECK(fv.unplaced[0].segment == 1);
  check_nothing_dropped(first, fv);
}

TEST_CASE("oru_r01: an unknown non-Z segment is unplaced", "[hl7v2][oru]") {
  const Message m = oru({"EVN|R01|2024", "PID|1", "OBR|1", "OBX|1", "AL1|1", "OBX|2"});
  const OruR01 v = view_oru_r01(m);
  REQUIRE(v.unplaced.size() == 2);
  CHECK(v.unplaced[0].segment == 1);
  CHECK(v.unplaced[0].reason.find("EVN") != std::string::npos);
  CHECK(v.unplaced[1].segment == 5);
  CHECK(v.unplaced[1].reason.find("AL1") != std::string::npos);
  // The unknown segment does not close the open observation group.
  CHECK(v.patient_results.at(0).orders.at(0).observations.size() == 2);
  check_nothing_dropped(m, v);
}

TEST_CASE("oru_r01: segments after DSC are unplaced and Z segments go to extras", "[hl7v2][oru]") {
  const Message m = oru({"PID|1", "OBR|1", "OBX|1", "DSC|CONT-1", "NTE|1||late", "ZZZ|1"});
  const OruR01 v = view_oru_r01(m);
  CHECK(v.dsc == SegmentRef{4});
  REQUIRE(v.unplaced.size() == 1);
  CHECK(v.unplaced[0].segment == 5);
  CHECK(v.unplaced[0].reason.find("after DSC") != std::string::npos);
  CHECK(v.extras == std::vector<SegmentRef>{6});
  CHECK(v.patient_results.at(0).orders.at(0).observations.at(0).notes.empty());
  check_nothing_dropped(m, v);
}

TEST_CASE("oru_r01: Z segments attach to the innermost open group", "[hl7v2][oru]") {
  const Message m = oru({"ZA1|header", "SFT|x", "PID|1", "ZA2|patient", "PV1|1", "ZA3|visit",
                         "ORC|RE", "ZA4|order", "OBR|1", "OBX|1", "ZA5|obs", "NTE|1||n", "SPM|1",
                         "ZA6|spm", "OBX|2", "ZA7|spm-obs", "NTE|2||m"});
  const OruR01 v = view_oru_r01(m);
  CHECK(v.unplaced.empty());
  CHECK(v.extras == std::vector<SegmentRef>{1});
  // SFT after a Z segment still counts as software (the Z segment does not open a group).
  CHECK(v.software == std::vector<SegmentRef>{2});
  const OruPatientResult& r = v.patient_results.at(0);
  CHECK(r.patient->extras == std::vector<SegmentRef>{4, 6});
  const OruOrder& o = r.orders.at(0);
  CHECK(o.orc == SegmentRef{7});
  CHECK(o.extras == std::vector<SegmentRef>{8});
  CHECK(o.obr == SegmentRef{9});
  CHECK(o.observations.at(0).extras == std::vector<SegmentRef>{11});
  CHECK(o.observations.at(0).notes == std::vector<SegmentRef>{12});
  CHECK(o.specimens.at(0).extras == std::vector<SegmentRef>{14});
  const OruObservation& sobs = o.specimens.at(0).observations.at(0);
  CHECK(sobs.obx == 15);
  CHECK(sobs.extras == std::vector<SegmentRef>{16});
  CHECK(sobs.notes == std::vector<SegmentRef>{17});
  check_nothing_dropped(m, v);
}

TEST_CASE("oru_r01: patient segments orders and several patients", "[hl7v2][oru]") {
  const Message m =
      oru({"PID|1", "PD1|x", "NTE|1||p", "NK1|1", "PV1|1", "PV2|1", "ORC|NW", "OBR|1", "NTE|1||o",
           "TQ1|1", "TQ2|1", "CTD|C", "OBX|1", "OBR|2", "OBX|1", "PID|2", "OBR|1", "OBX|1"});
  const OruR01 v = view_oru_r01(m);
  CHECK(v.unplaced.empty());
  REQUIRE(v.patient_results.size() == 2);
  const OruPatient& p = *v.patient_results[0].patient;
  CHECK(p.pid == 1);
  CHECK(p.pd1 == SegmentRef{2});
  CHECK(p.notes == std::vector<SegmentRef>{3});
  CHECK(p.nk1 == std::vector<SegmentRef>{4});
  CHECK(p.pv1 == SegmentRef{5});
  CHECK(p.pv2 == SegmentRef{6});
  const auto& orders = v.patient_results[0].orders;
  REQUIRE(orders.size() == 2);
  CHECK(orders[0].orc == SegmentRef{7});
  CHECK(orders[0].obr == SegmentRef{8});  // ORC and OBR pair up
  CHECK(orders[0].notes == std::vector<SegmentRef>{9});
  CHECK(orders[0].timing == std::vector<SegmentRef>{10, 11});
  CHECK(orders[0].ctd == SegmentRef{12});
  CHECK(orders[0].observations.size() == 1);
  CHECK_FALSE(orders[1].orc.has_value());
  CHECK(orders[1].obr == SegmentRef{14});
  CHECK(v.patient_results[1].patient->pid == 16);
  CHECK(v.patient_results[1].orders.at(0).obr == SegmentRef{17});
  check_nothing_dropped(m, v);
}

TEST_CASE("oru_r01: segments out of order are unplaced with reasons", "[hl7v2][oru]") {
  const Message m = oru({"PID|1", "PV2|1", "PV1|1", "NK1|1", "SFT|late", "OBR|1", "TQ2|1", "OBX|1",
                         "TQ1|1", "FT1|1", "OBX|2", "SPM|1", "NTE|1||spm", "CTI|1"});
  const OruR01 v = view_oru_r01(m);
  std::vector<SegmentRef> unplaced;
  for (const auto& u : v.unplaced) unplaced.push_back(u.segment);
  // PV2 before PV1, NK1 after PV1, SFT after PID, TQ2 without TQ1, TQ1 after OBX, OBX after FT1,
  // NTE straight after SPM, CTI after SPM.
  CHECK(unplaced == std::vector<SegmentRef>{2, 4, 5, 7, 9, 11, 13, 14});
  CHECK(find_unplaced(v, 2)->reason.find("PV2") != std::string::npos);
  CHECK(find_unplaced(v, 11)->reason.find("FT1") != std::string::npos);
  check_nothing_dropped(m, v);
  // A message with no patient: the order opens a result of its own.
  const Message bare = oru({"OBR|1", "OBX|1"});
  const OruR01 bv = view_oru_r01(bare);
  REQUIRE(bv.patient_results.size() == 1);
  CHECK_FALSE(bv.patient_results[0].patient.has_value());
  CHECK(bv.patient_results[0].orders.at(0).observations.size() == 1);
  check_nothing_dropped(bare, bv);
  // MSH alone: an empty view.
  const Message only = oru({});
  const OruR01 ov = view_oru_r01(only);
  CHECK(ov.patient_results.empty());
  CHECK(ov.all_segments().empty());
}
