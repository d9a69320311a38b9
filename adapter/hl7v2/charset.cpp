#include "hl7v2/charset.h"

#include <string>

namespace adapter::hl7v2 {

std::optional<Charset> charset_from_name(std::string_view name) {
  while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
  while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
  std::string upper(name);
  for (char& c : upper) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  if (upper == "ASCII" || upper == "US-ASCII") return Charset::ascii;
  if (upper == "8859/1" || upper == "ISO-8859-1" || upper == "ISO_8859-1" || upper == "ISO8859-1" ||
      upper == "LATIN1" || upper == "LATIN-1") {
    return Charset::latin1;
  }
  if (upper == "UNICODE UTF-8" || upper == "UTF-8" || upper == "UTF8" || upper == "UNICODE_UTF-8") {
    return Charset::utf8;
  }
  return std::nullopt;
}

}  // namespace adapter::hl7v2
