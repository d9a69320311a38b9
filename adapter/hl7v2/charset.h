// MSH-18 character set names (HL7 table 0211) that the adapter reads.
#pragma once

#include <optional>
#include <string_view>

#include "hl7v2/types.h"

namespace adapter::hl7v2 {

// "ASCII", "8859/1", "UNICODE UTF-8" (and the common spellings "UTF-8", "UTF8", "ISO-8859-1",
// "ISO_8859-1", "LATIN1"), compared case-insensitively; nullopt for anything else.
std::optional<Charset> charset_from_name(std::string_view name);

}  // namespace adapter::hl7v2
