#include "hl7v2/types.h"

namespace adapter::hl7v2 {

std::string Delimiters::encoding_characters() const {
  // MSH-2 is positional: an undeclared escape or subcomponent ('\0', from a 2- or 3-character
  // MSH-2) is left out rather than written as a NUL byte.
  std::string s{component, repetition};
  if (escape != '\0') s.push_back(escape);
  if (subcomponent != '\0') s.push_back(subcomponent);
  if (truncation != '\0') s.push_back(truncation);
  return s;
}

std::string_view hl7_name(Charset charset) {
  switch (charset) {
    case Charset::ascii:
      return "ASCII";
    case Charset::latin1:
      return "8859/1";
    case Charset::utf8:
      return "UNICODE UTF-8";
  }
  return "UNICODE UTF-8";
}

std::string Location::to_string() const {
  if (segment.empty()) {
    return segment_index == 0 ? std::string("message") : "segment " + std::to_string(segment_index);
  }
  std::string s = segment;
  if (occurrence > 1) s += "[" + std::to_string(occurrence) + "]";
  if (field == 0) return s;
  s += "-" + std::to_string(field);
  if (repetition > 1) s += "[" + std::to_string(repetition) + "]";
  if (component > 0) {
    s += "." + std::to_string(component);
    if (subcomponent > 0) s += "." + std::to_string(subcomponent);
  }
  return s;
}

std::string ParseError::to_string() const {
  const std::string where = location.to_string();
  return where == "message" ? message : where + ": " + message;
}

}  // namespace adapter::hl7v2
