// Instants to and from text: the admin API's query parameters, FHIR instants.
#include "common/instants.h"

#include <catch2/catch.hpp>

using namespace adapter;

TEST_CASE("instants: RFC 3339 with zone or fraction, or microseconds", "[common][instants]") {
  CHECK(parse_instant_us("1700000000000000") == 1700000000000000);
  CHECK(parse_instant_us("1970-01-01T00:00:01Z") == 1000000);
  CHECK(parse_instant_us("1970-01-01T00:00:01.25Z") == 1250000);
  CHECK(parse_instant_us("1970-01-01T01:00:00+01:00") == 0);
  CHECK(parse_instant_us("1970-01-01T00:00:00-00:30") == 1800000000);
  CHECK_FALSE(parse_instant_us("yesterday"));
  CHECK_FALSE(parse_instant_us("1970-01-01T00:00:00+0100"));
  CHECK_FALSE(parse_instant_us(""));
}

TEST_CASE("instants: written as UTC with microseconds, read back exactly", "[common][instants]") {
  CHECK(fhir_instant_utc(0) == "1970-01-01T00:00:00.000000+00:00");
  CHECK(fhir_instant_utc(1710529200123456) == "2024-03-15T19:00:00.123456+00:00");
  CHECK(parse_instant_us(fhir_instant_utc(1710529200123456)) == 1710529200123456);
  // A FHIR instant as the templates write DiagnosticReport.issued (OBR-22 with its zone).
  CHECK(parse_instant_us("2024-03-15T14:00:00-05:00") == 1710529200000000);
}
