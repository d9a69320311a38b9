// HL7 paths: parse_path, to_string, and malformed paths.
#include "hl7v2/path.h"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

using namespace adapter;
using namespace adapter::hl7v2;

namespace {

Path parse_path_ok(std::string_view text) {
  auto p = parse_path(text);
  INFO(text);
  if (!p) FAIL(p.error().to_string());
  return *p;
}

}  // namespace

TEST_CASE("path: every part of a path with repetition component and subcomponent",
          "[hl7v2][path]") {
  const Path p = parse_path_ok("PID-3[2].4.1");
  CHECK(p.segment_id() == "PID");
  CHECK(p.occurrence == 1);
  CHECK(p.field == 3);
  CHECK(p.repetition == 2);
  CHECK(p.component == 4);
  CHECK(p.subcomponent == 1);
  CHECK(p.to_string() == "PID-3[2].4.1");
}

TEST_CASE("path: segment occurrence of the fourth OBX", "[hl7v2][path]") {
  const Path p = parse_path_ok("OBX[4]-5");
  CHECK(p.segment_id() == "OBX");
  CHECK(p.occurrence == 4);
  CHECK(p.field == 5);
  CHECK(p.repetition == 0);
  CHECK(p.component == 0);
  CHECK(p.subcomponent == 0);
  CHECK(p.to_string() == "OBX[4]-5");
}

TEST_CASE("path: dotted form PID.3.1 and MSH-9.2", "[hl7v2][path]") {
  const Path dotted = parse_path_ok("PID.3.1");
  CHECK(dotted.segment_id() == "PID");
  CHECK(dotted.field == 3);
  CHECK(dotted.component == 1);
  CHECK(dotted.subcomponent == 0);
  CHECK(dotted.to_string() == "PID-3.1");
  const Path msh = parse_path_ok("MSH-9.2");
  CHECK(msh.segment_id() == "MSH");
  CHECK(msh.field == 9);
  CHECK(msh.component == 2);
  CHECK(msh.to_string() == "MSH-9.2");
}

TEST_CASE("path: whole segments digits in IDs and large numbers", "[hl7v2][path]") {
  const Path seg = parse_path_ok("ZGX");
  CHECK(seg.segment_id() == "ZGX");
  CHECK(seg.field == 0);
  CHECK(seg.to_string() == "ZGX");
  const Path nth = parse_path_ok("NTE[12]");
  CHECK(nth.occurrence == 12);
  CHECK(nth.field == 0);
  CHECK(nth.to_string() == "NTE[12]");
  CHECK(parse_path_ok("Z01-2").segment_id() == "Z01");
  const Path big = parse_path_ok("OBX[123]-25[7].10.3");
  CHECK(big.occurrence == 123);
  CHECK(big.field == 25);
  CHECK(big.repetition == 7);
  CHECK(big.component == 10);
  CHECK(big.subcomponent == 3);
  // [1] is the default: it prints without brackets and means the same.
  CHECK(parse_path_ok("OBX[1]-5").to_string() == "OBX-5");
  CHECK(parse_path_ok("PID-3[1]").to_string() == "PID-3[1]");
}

TEST_CASE("path: to_string round trips", "[hl7v2][path]") {
  for (std::string_view text : {"PID-3[2].4.1", "OBX[4]-5", "MSH-9.2", "PID-3", "PID-3[2]",
                                "OBX[2]-5[3].1.2", "ZGX-3[2]", "SPM", "NTE[3]", "PV1-3.1.3"}) {
    INFO(text);
    const Path p = parse_path_ok(text);
    CHECK(p.to_string() == text);
    const Path again = parse_path_ok(p.to_string());
    CHECK(again.segment_id() == p.segment_id());
    CHECK(again.occurrence == p.occurrence);
    CHECK(again.field == p.field);
    CHECK(again.repetition == p.repetition);
    CHECK(again.component == p.component);
    CHECK(again.subcomponent == p.subcomponent);
  }
}

TEST_CASE("path: malformed paths are bad_path errors naming the path", "[hl7v2][path]") {
  for (std::string_view text :
       {"PI",        "PID-0",     "PID-3[0]",    "PID-3.x",  "pid-3",    "PID-3]",
        "",          "PID-",      "PID-3[",      "PID-3[2",  "PID-3[]",  "PID-3[-1]",
        "PID-3.0",   "PID-3.1.0", "PID-3.1.2.3", "PID-3..1", "PID[0]-1", "PID[x]-1",
        "PIDX",      "PID 3",     "1ID-3",       "PID-3 ",   "PID-+3",   "PID-99999999999",
        "PID-3[2]x", "OBX[4]5"}) {
    INFO("'" << text << "'");
    auto p = parse_path(text);
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().code == Errc::bad_path);
    CHECK(p.error().message.find("'" + std::string(text) + "'") != std::string::npos);
  }
}
