// HL7 v2 DTM timestamps with seconds, milliseconds and the UTC offset: "20261126135502.120+0000".
#pragma once

#include <chrono>
#include <string>

namespace adapter::hl7v2 {

// Formats `t` in the local time zone of the process (TZ), with its UTC offset.
std::string format_dtm(std::chrono::system_clock::time_point t);

}  // namespace adapter::hl7v2
