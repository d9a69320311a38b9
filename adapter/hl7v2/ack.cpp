#include "hl7v2/ack.h"

#include <chrono>
#include <utility>

#include "common/utf8.h"
#include "hl7v2/builder.h"
#include "hl7v2/charset.h"
#include "hl7v2/timestamp.h"

namespace adapter::hl7v2 {
namespace {

// "2.3", "2.3.1" and "2.4" predate ERR-2..ERR-8.
bool before_v25(std::string_view version) {
  return version.size() >= 3 && version[0] == '2' && version[1] == '.' && version[2] >= '1' &&
         version[2] <= '4' && (version.size() == 3 || version[3] == '.');
}

// HL7 table 0357 (message error condition codes): the standard text for ERR-3.2.
std::string_view table_0357_text(std::string_view code) {
  static constexpr std::pair<std::string_view, std::string_view> kRows[] = {
      {"0", "Message accepted"},
      {"100", "Segment sequence error"},
      {"101", "Required field missing"},
      {"102", "Data type error"},
      {"103", "Table value not found"},
      {"200", "Unsupported message type"},
      {"201", "Unsupported event code"},
      {"202", "Unsupported processing id"},
      {"203", "Unsupported version id"},
      {"204", "Unknown key identifier"},
      {"205", "Duplicate key identifier"},
      {"206", "Application record locked"},
      {"207", "Application internal error"}};
  for (const auto& [c, text] : kRows) {
    if (c == code) return text;
  }
  return "Application internal error";
}

// At most `max` bytes of `text`, never ending inside a UTF-8 character.
std::string_view utf8_prefix(std::string_view text, std::size_t max) {
  if (text.size() <= max) return text;
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

}  // namespace

std::string_view to_string(AckCode code) {
  switch (code) {
    case AckCode::AA:
      return "AA";
    case AckCode::AE:
      return "AE";
    case AckCode::AR:
      return "AR";
    case AckCode::CA:
      return "CA";
    case AckCode::CE:
      return "CE";
    case AckCode::CR:
      return "CR";
  }
  return "AE";
}

bool is_positive(AckCode code) {
  return code == AckCode::AA || code == AckCode::CA;
}

AckCode ack_code_for(const Header& incoming, Errc outcome) {
  const bool enhanced = incoming.enhanced_mode();
  if (outcome == Errc::ok) return enhanced ? AckCode::CA : AckCode::AA;
  const bool reject = info(outcome).ack_code == "AR";
  if (enhanced) return reject ? AckCode::CR : AckCode::CE;
  return reject ? AckCode::AR : AckCode::AE;
}

bool should_send(const Header& incoming, AckCode code) {
  if (!incoming.enhanced_mode()) return true;
  const std::string& when = incoming.accept_ack_type;
  if (when == "NE") return false;
  if (when == "ER") return !is_positive(code);
  if (when == "SU") return is_positive(code);
  return true;  // AL, and any unknown value: answering is the safe side
}

// Error texts may quote input bytes that are not text (an unknown MSH-18 spelled in Latin-1, say):
// the ACK must stay valid UTF-8, so such bytes are shown as \xHH.
static std::string printable(std::string_view text) {
  if (find_invalid_utf8(text) == std::string_view::npos) return std::string(text);
  std::string out;
  append_utf8_replacing_invalid(out, text, [](std::string& o, unsigned char byte) {
    o += "\\x";
    append_hex_byte(o, byte);
  });
  return out;
}

std::string make_ack(const Header& in, AckCode code, const AckError* error,
                     const AckOptions& options) {
  const std::string error_text = error != nullptr ? printable(error->text) : std::string();
  MessageBuilder b(in.delimiters);
  const std::string version = in.version.empty() ? "2.5.1" : in.version;
  auto& msh = b.segment("MSH");
  if (!in.receiving_application.empty()) {
    msh.raw(3, in.receiving_application);
  } else {
    msh.text(3, options.default_application);
  }
  msh.raw(4, in.receiving_facility)
      .raw(5, in.sending_application)
      .raw(6, in.sending_facility)
      .text(7, options.timestamp.empty() ? format_dtm(std::chrono::system_clock::now())
                                         : options.timestamp);
  if (in.trigger_event.empty()) {
    msh.text(9, "ACK");
  } else {
    msh.components(9, {"ACK", in.trigger_event, "ACK"});
  }
  msh.text(10, options.control_id)
      .raw(11,
           in.processing_id.empty() ? std::string_view("P") : std::string_view(in.processing_id))
      .raw(12, version);
  // MSH-18 only when the adapter knows it: an ACK must not declare a set the adapter rejects.
  if (charset_from_name(in.charset)) msh.raw(18, in.charset);

  auto& msa = b.segment("MSA");
  msa.text(1, to_string(code)).raw(2, in.control_id);
  if (error != nullptr) msa.text(3, utf8_prefix(error_text, 80));  // MSA-3: 80 in v2.3/2.4

  if (error != nullptr) {
    const ErrcInfo& e = info(error->code);
    const Location& loc = error->location;
    const std::string seq = loc.occurrence ? std::to_string(loc.occurrence) : std::string();
    auto num = [](std::uint32_t n) { return n ? std::to_string(n) : std::string(); };
    auto& err = b.segment("ERR");
    if (before_v25(version)) {
      // ERR-1 (ELD): segment ID ^ sequence ^ field position ^ code (CE).
      const Delimiters& d = in.delimiters;
      const std::string eld = loc.segment + d.component + seq + d.component + num(loc.field) +
                              d.component + std::string(e.hl7_0357) + d.subcomponent +
                              std::string(table_0357_text(e.hl7_0357)) + d.subcomponent + "HL70357";
      err.raw(1, eld);
    }
    if (!loc.segment.empty()) {
      err.components(2, {loc.segment, seq, num(loc.field), num(loc.repetition), num(loc.component),
                         num(loc.subcomponent)});
    }
    err.components(3, {e.hl7_0357, table_0357_text(e.hl7_0357), "HL70357"});
    err.text(4, std::string(1, error->severity));
    const std::string where = loc.to_string();
    err.text(8, where == "message" ? error_text : where + ": " + error_text);
  }
  // Header values and our texts are UTF-8; an ACK that declares 8859/1 is written in 8859/1.
  const auto cs = charset_from_name(in.charset);
  if (cs && *cs == Charset::latin1) {
    std::string latin1;
    append_utf8_as_latin1(latin1, b.encode());
    return latin1;
  }
  return b.encode();
}

}  // namespace adapter::hl7v2
