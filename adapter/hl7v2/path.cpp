#include "hl7v2/path.h"

#include <charconv>

namespace adapter::hl7v2 {
namespace {

// Reads a positive decimal number at text[pos]; 0 when there is none or it is out of range.
std::uint32_t read_number(std::string_view text, std::size_t& pos) {
  std::uint32_t value = 0;
  const char* begin = text.data() + pos;
  auto [ptr, ec] = std::from_chars(begin, text.data() + text.size(), value);
  if (ec != std::errc() || value == 0) return 0;
  pos += static_cast<std::size_t>(ptr - begin);
  return value;
}

// "[n]" at text[pos], if present.
bool read_index(std::string_view text, std::size_t& pos, std::uint32_t& out, bool& bad) {
  if (pos >= text.size() || text[pos] != '[') return false;
  ++pos;
  out = read_number(text, pos);
  if (out == 0 || pos >= text.size() || text[pos] != ']') {
    bad = true;
    return false;
  }
  ++pos;
  return true;
}

}  // namespace

std::string Path::to_string() const {
  std::string s(segment_id());
  if (occurrence > 1) s += "[" + std::to_string(occurrence) + "]";
  if (field == 0) return s;
  s += "-" + std::to_string(field);
  if (repetition > 0) s += "[" + std::to_string(repetition) + "]";
  if (component > 0) {
    s += "." + std::to_string(component);
    if (subcomponent > 0) s += "." + std::to_string(subcomponent);
  }
  return s;
}

Result<Path> parse_path(std::string_view text) {
  auto fail = [&](const std::string& why) {
    return make_error(Errc::bad_path, "invalid HL7 path '" + std::string(text) + "': " + why);
  };
  Path p;
  if (text.size() < 3) return fail("expected a segment ID such as PID");
  for (int i = 0; i < 3; ++i) {
    const char c = text[static_cast<std::size_t>(i)];
    if (!((c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9'))) {
      return fail("expected a segment ID such as PID");
    }
    p.segment[i] = c;
  }
  std::size_t pos = 3;
  bool bad = false;
  read_index(text, pos, p.occurrence, bad);
  if (bad) return fail("segment occurrence must be [n] with n >= 1");
  if (pos == text.size()) return p;
  if (text[pos] != '-' && text[pos] != '.')
    return fail("expected '-' and a field number after the segment");
  ++pos;
  p.field = read_number(text, pos);
  if (p.field == 0) return fail("field numbers start at 1");
  read_index(text, pos, p.repetition, bad);
  if (bad) return fail("repetition must be [n] with n >= 1");
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    p.component = read_number(text, pos);
    if (p.component == 0) return fail("component numbers start at 1");
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      p.subcomponent = read_number(text, pos);
      if (p.subcomponent == 0) return fail("subcomponent numbers start at 1");
    }
  }
  if (pos != text.size()) return fail("unexpected text after position " + std::to_string(pos));
  return p;
}

}  // namespace adapter::hl7v2
