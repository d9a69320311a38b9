// Instants as the daemon writes and reads them: microseconds since the Unix epoch, to and from
// RFC 3339 text (the admin API's query parameters, FHIR instants such as
// DiagnosticReport.issued).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace adapter {

// "2024-03-15T14:30:00.123456+00:00" for a time in microseconds since the Unix epoch.
std::string fhir_instant_utc(std::int64_t us);

// "2026-11-27T03:00:00Z" (optionally with fractions and a +hh:mm offset) or plain microseconds.
std::optional<std::int64_t> parse_instant_us(std::string_view text);

}  // namespace adapter
