#include "hl7v2/escape.h"

#include <cstring>

#include "common/utf8.h"

namespace adapter::hl7v2 {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// \Xhh..\ : returns false (leave the sequence verbatim) when the digits are not hex pairs or the
// bytes are not text in the message's character set.
bool append_hex(std::string& out, std::string_view digits, Charset cs) {
  if (digits.empty() || digits.size() % 2 != 0) return false;
  std::string bytes;
  bytes.reserve(digits.size() / 2);
  for (std::size_t i = 0; i < digits.size(); i += 2) {
    const int hi = hex_value(digits[i]);
    const int lo = hex_value(digits[i + 1]);
    if (hi < 0 || lo < 0) return false;
    bytes.push_back(static_cast<char>(hi * 16 + lo));
  }
  if (cs == Charset::latin1) {
    append_latin1_as_utf8(out, bytes);
    return true;
  }
  if (find_invalid_utf8(bytes) != std::string_view::npos) return false;
  out += bytes;
  return true;
}

// The argument of a formatting command (\.sp2\, \.in+4\, \.ti -2\): an optional space, a sign
// when `sign` allows one, then decimal digits and nothing else. An empty argument is valid only
// when `optional`.
bool formatting_argument(std::string_view arg, bool sign, bool optional) {
  if (arg.empty()) return optional;
  if (arg.front() == ' ') arg.remove_prefix(1);
  if (sign && !arg.empty() && (arg.front() == '+' || arg.front() == '-')) arg.remove_prefix(1);
  if (arg.empty()) return false;
  for (char c : arg) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// One sequence between escape characters (without them). Returns false to keep it verbatim.
bool append_sequence(std::string& out, std::string_view seq, const Delimiters& d, Charset cs) {
  if (seq.size() == 1) {
    switch (seq[0]) {
      case 'F':
        out.push_back(d.field);
        return true;
      case 'S':
        out.push_back(d.component);
        return true;
      case 'T':
        if (d.subcomponent == '\0') return false;  // no subcomponent declared (MSH-2 "^~" or "^~\")
        out.push_back(d.subcomponent);
        return true;
      case 'R':
        out.push_back(d.repetition);
        return true;
      case 'E':
        out.push_back(d.escape);
        return true;
      case 'P':
        if (d.truncation == '\0') return false;
        out.push_back(d.truncation);
        return true;
      case 'H':  // start highlighting: formatting only
      case 'N':  // normal text: formatting only
        return true;
      default:
        return false;
    }
  }
  if (seq.empty()) return false;
  if (seq[0] == 'X') return append_hex(out, seq.substr(1), cs);
  if (seq[0] == '.') {
    // Only the documented forms; anything else (\.spam\, \.finish\) is kept verbatim.
    const std::string_view cmd = seq.substr(1, 2);
    const std::string_view arg = seq.substr(cmd.size() + 1);
    if (cmd == "br" && arg.empty()) {
      out.push_back('\n');
      return true;
    }
    if (cmd == "sp" && formatting_argument(arg, false, true)) {
      out.push_back('\n');
      return true;
    }
    // Layout only, no text to keep.
    if (cmd == "fi" || cmd == "nf" || cmd == "ce") return arg.empty();
    if (cmd == "in" || cmd == "ti") return formatting_argument(arg, true, false);
    if (cmd == "sk") return formatting_argument(arg, false, false);
    return false;
  }
  return false;  // \Cxxyy\ \Mxxyyzz\ \Zxx\ and unknown: verbatim
}

}  // namespace

void append_decoded(std::string& out, std::string_view raw, const Delimiters& d, Charset cs) {
  if (d.escape == '\0') {
    out += raw;
    return;
  }
  std::size_t pos = 0;
  while (pos < raw.size()) {
    const std::size_t open = raw.find(d.escape, pos);
    if (open == std::string_view::npos) {
      out.append(raw.substr(pos));
      return;
    }
    out.append(raw.substr(pos, open - pos));
    const std::size_t close = raw.find(d.escape, open + 1);
    if (close == std::string_view::npos) {  // unterminated: keep the rest as written
      out.append(raw.substr(open));
      return;
    }
    const std::string_view seq = raw.substr(open + 1, close - open - 1);
    if (!append_sequence(out, seq, d, cs)) out.append(raw.substr(open, close - open + 1));
    pos = close + 1;
  }
}

void append_escaped(std::string& out, std::string_view text, const Delimiters& d) {
  if (d.escape == '\0') {
    // A message that declares no escape character cannot carry a delimiter inside a value:
    // the closest faithful text is a space in its place, and CR/LF become spaces too.
    for (char c : text) out.push_back(d.is_delimiter(c) || c == '\r' || c == '\n' ? ' ' : c);
    return;
  }
  const char e = d.escape;
  auto emit = [&](std::string_view code) {
    out.push_back(e);
    out += code;
    out.push_back(e);
  };
  for (char c : text) {
    if (c == d.field)
      emit("F");
    else if (c == d.component)
      emit("S");
    else if (d.subcomponent != '\0' && c == d.subcomponent)
      emit("T");
    else if (c == d.repetition)
      emit("R");
    else if (c == e)
      emit("E");
    else if (d.truncation != '\0' && c == d.truncation)
      emit("P");
    else if (c == '\n')
      emit(".br");
    else if (c == '\r')
      emit("X0D");
    else
      out.push_back(c);
  }
}

}  // namespace adapter::hl7v2
