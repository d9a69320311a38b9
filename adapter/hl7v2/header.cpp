#include "hl7v2/header.h"

#include <vector>

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
  const char fs = line[3];
  if (fs == '\r' || fs == '\n' || (fs >= 'A' && fs <= 'Z') || (fs >= '0' && fs <= '9')) return h;
  h.found = true;
  std::vector<std::string_view> pieces;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t next = line.find(fs, pos);
    pieces.push_back(line.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  // Use the declared encoding characters when they are usable, else the standard ones.
  h.delimiters.field = fs;
  if (pieces.size() > 1 && pieces[1].size() >= 4) {
    const std::string_view enc = pieces[1];
    const bool distinct = enc[0] != enc[1] && enc[0] != enc[2] && enc[0] != enc[3] &&
                          enc[1] != enc[2] && enc[1] != enc[3] && enc[2] != enc[3];
    if (distinct) {
      h.delimiters.component = enc[0];
      h.delimiters.repetition = enc[1];
      h.delimiters.escape = enc[2];
      h.delimiters.subcomponent = enc[3];
      if (enc.size() == 5 && enc[4] != enc[0] && enc[4] != enc[1] && enc[4] != enc[2] && enc[4] != enc[3]) {
        h.delimiters.truncation = enc[4];
      }
    }
  }
  // Piece k holds MSH-(k+1).
  auto field = [&](std::size_t f) { return f - 1 < pieces.size() ? std::string(pieces[f - 1]) : std::string(); };
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
