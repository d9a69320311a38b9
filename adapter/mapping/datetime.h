// HL7 v2 DTM (and TS, whose first component is a DTM) to FHIR date and dateTime. ISO 8601 /
// xs:dateTime text from XML feeds ("2022-03-21", "2022-03-21T13:45:00+02:00") is accepted too and
// follows the same rules.
//
//   v2 "20240315143000-0500"  -> FHIR "2024-03-15T14:30:00-05:00"
//   v2 "20240315"             -> FHIR "2024-03-15"      (date precision is kept: no time made up)
//   v2 "202403"               -> FHIR "2024-03"
//   v2 "202403151430"         -> FHIR "2024-03-15T14:30:00+01:00" with the feed's default zone
//
// FHIR requires seconds and a time zone whenever a time is present, so: missing seconds become
// ":00"; an hour without minutes becomes "hh:00:00" and is reported (a warning); a missing zone
// takes the feed's configured default offset. Fractions of a second are kept.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace adapter::mapping {

// A fixed UTC offset in minutes ("+01:00" -> 60, "Z"/"UTC" -> 0); nullopt if malformed.
std::optional<int> parse_utc_offset(std::string_view text);

struct DateTimeResult {
  std::string fhir;     // empty when the input is not a valid DTM
  std::string problem;  // why it is not valid, or a precision note (with fhir set)
  bool has_time = false;
  bool zone_defaulted = false;
};

// `default_offset_minutes`: applied when the value carries a time but no zone; nullopt means
// "no default configured", which makes such values invalid.
DateTimeResult v2_to_fhir_datetime(std::string_view dtm, std::optional<int> default_offset_minutes);

// Date part only ("2024-03-15", "2024-03", "2024"); an empty result when invalid.
DateTimeResult v2_to_fhir_date(std::string_view dtm);

}  // namespace adapter::mapping
