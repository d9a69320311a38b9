#include "hl7v2/header.h"

#include <vector>

#include "common/utf8.h"
#include "hl7v2/charset.h"
#include "hl7v2/escape.h"

namespace adapter::hl7v2 {
namespace {

std::string first_of(std::string_view raw, char sep) {
  return std::string(raw.substr(0, sep == '\0' ? raw.size() : raw.find(sep)));
}

std::string decoded(std::string_view raw, const Delimiters& d) {
  std::string out;
  append_decoded(out, raw, d, Charset::utf8);
  return out;
}

void fill_derived(Header& h) {
  const std::string_view type = h.message_type;
  const std::string_view first_rep = type.substr(0, type.find(h.delimiters.repetition));
  const std::size_t c1 = first_rep.find(h.delimiters.component);
  h.message_code = decoded(first_rep.substr(0, c1), h.delimiters);
  if (c1 != std::string_view::npos) {
    const std::string_view rest = first_rep.substr(c1 + 1);
    h.trigger_event = decoded(rest.substr(0, rest.find(h.delimiters.component)), h.delimiters);
  }
  h.version = first_of(h.version, h.delimiters.component);
  h.accept_ack_type = decoded(h.accept_ack_type, h.delimiters);
  h.application_ack_type = decoded(h.application_ack_type, h.delimiters);
}

bool usable_delimiter(char c) {
  return Delimiters::usable(c);
}

// MSH-2 read as the parser reads it (2 to 5 usable characters, all different, none equal to
// MSH-1); when it would reject them, the standard "^~\&" with any character equal to MSH-1
// replaced, so that the result is always a set the parser accepts.
Delimiters sniffed_delimiters(char fs, std::string_view enc) {
  char chars[6] = {fs, '\0', '\0', '\0', '\0', '\0'};
  bool usable = enc.size() >= 2 && enc.size() <= 5;
  for (std::size_t i = 0; usable && i < enc.size(); ++i) {
    usable = usable_delimiter(enc[i]);
    for (std::size_t j = 0; usable && j <= i; ++j) usable = chars[j] != enc[i];
    chars[i + 1] = enc[i];
  }
  if (!usable) {
    std::size_t n = 1;
    for (char c : {'^', '~', '\\', '&', '!'}) {
      if (c != fs && n < 5) chars[n++] = c;
    }
    chars[5] = '\0';
  }
  return Delimiters::from(chars);
}

// Header values are UTF-8 whatever the sender's character set: a Latin-1 value is converted,
// and bytes that are not text become \Xhh\ escapes (which decode back to the same bytes), so
// that an ACK echoing them is valid text.
std::string as_utf8(std::string_view raw, Charset cs, const Delimiters& d) {
  if (is_ascii(raw)) return std::string(raw);
  std::string out;
  if (cs == Charset::latin1) {
    append_latin1_as_utf8(out, raw);
    return out;
  }
  append_utf8_replacing_invalid(out, raw, [&d](std::string& o, unsigned char byte) {
    if (d.escape == '\0') {
      o.push_back('?');
      return;
    }
    o.push_back(d.escape);
    o.push_back('X');
    append_hex_byte(o, byte);
    o.push_back(d.escape);
  });
  return out;
}

}  // namespace

std::string Header::type_and_trigger() const {
  return trigger_event.empty() ? message_code : message_code + "^" + trigger_event;
}

Header header_of(const Message& message) {
  Header h;
  h.found = true;
  h.delimiters = message.delimiters();
  auto raw = [&](std::size_t f) { return std::string(message.msh(f).raw()); };
  h.sending_application = raw(3);
  h.sending_facility = raw(4);
  h.receiving_application = raw(5);
  h.receiving_facility = raw(6);
  h.message_type = raw(9);
  h.control_id = raw(10);
  h.processing_id = raw(11);
  h.version = raw(12);
  h.accept_ack_type = raw(15);
  h.application_ack_type = raw(16);
  h.charset = first_of(message.msh(18).raw(), h.delimiters.repetition);
  fill_derived(h);
  return h;
}

Header sniff_header(std::string_view bytes) {
  Header h;
  if (bytes.size() >= 3 && bytes.compare(0, 3, "\xEF\xBB\xBF") == 0) bytes.remove_prefix(3);
  while (!bytes.empty() && (bytes.front() == '\r' || bytes.front() == '\n')) bytes.remove_prefix(1);
  if (bytes.size() < 4 || bytes.compare(0, 3, "MSH") != 0) return h;
  const std::string_view line = bytes.substr(0, bytes.find_first_of("\r\n"));
  if (line.size() < 4) return h;  // "MSH" then a separator: no MSH-1
  const char fs = line[3];
  if (!usable_delimiter(fs)) return h;  // the parser could not read it either
  h.found = true;
  std::vector<std::string_view> pieces;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t next = line.find(fs, pos);
    pieces.push_back(
        line.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  // Use the declared encoding characters when the parser would accept them, else standard ones
  // that differ from MSH-1: an ACK written with these delimiters must parse.
  h.delimiters = sniffed_delimiters(fs, pieces.size() > 1 ? pieces[1] : std::string_view());
  // Piece k holds MSH-(k+1). MSH-18 first: it says how to read the others.
  const std::string_view msh18 = pieces.size() > 17 ? pieces[17] : std::string_view();
  const auto cs = charset_from_name(msh18.substr(0, msh18.find(h.delimiters.repetition)));
  auto field = [&](std::size_t f) {
    return f - 1 < pieces.size() ? as_utf8(pieces[f - 1], cs.value_or(Charset::utf8), h.delimiters)
                                 : std::string();
  };
  h.sending_application = field(3);
  h.sending_facility = field(4);
  h.receiving_application = field(5);
  h.receiving_facility = field(6);
  h.message_type = field(9);
  h.control_id = field(10);
  h.processing_id = field(11);
  h.version = field(12);
  h.accept_ack_type = field(15);
  h.application_ack_type = field(16);
  h.charset = first_of(field(18), h.delimiters.repetition);
  fill_derived(h);
  return h;
}

Result<void, ParseError> check_required(const Header& header) {
  auto missing = [](std::uint32_t field, std::uint32_t component, std::string what) {
    Location loc;
    loc.segment = "MSH";
    loc.segment_index = 1;
    loc.occurrence = 1;
    loc.field = field;
    loc.component = component;
    return ParseError{Errc::missing_field, std::move(what), loc};
  };
  if (header.message_code.empty()) return missing(9, 1, "MSH-9 (message type) is empty");
  if (header.trigger_event.empty()) return missing(9, 2, "MSH-9.2 (trigger event) is empty");
  if (header.control_id.empty()) return missing(10, 0, "MSH-10 (message control ID) is empty");
  if (header.version.empty()) return missing(12, 0, "MSH-12 (version ID) is empty");
  return {};
}

}  // namespace adapter::hl7v2
