// HL7 v2 paths: "PID-3[2].4.1" = PID segment, field 3, second repetition, component 4,
// subcomponent 1. "OBX[4]-5" = the fourth OBX segment, field 5. "PID.3.1" is accepted as well.
// Numbers are 1-based; an omitted repetition or occurrence means the first.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace adapter::hl7v2 {

struct Path {
  char segment[3] = {'M', 'S', 'H'};
  std::uint32_t occurrence = 1;
  std::uint32_t field = 0;         // 0: the whole segment
  std::uint32_t repetition = 0;    // 0: not given (reads the first)
  std::uint32_t component = 0;     // 0: the whole repetition
  std::uint32_t subcomponent = 0;  // 0: the whole component

  std::string_view segment_id() const { return {segment, 3}; }
  std::string to_string() const;
};

Result<Path> parse_path(std::string_view text);

}  // namespace adapter::hl7v2
