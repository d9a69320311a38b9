// Fuzz target for the HL7 v2 reader (adapter/hl7v2): Message::parse and everything intake does
// with its result, on the raw payload of one MLLP frame.
//
// The input is the payload exactly as a sender would send it, so HL7 files (fixtures/hl7v2/
// samples) are seeds as they are. Beyond "no crash, no UB, no hang", it checks what callers rely
// on: both parse overloads agree; every view stays inside the message text; iteration agrees
// with indexed access; the ORU^R01 view places every segment exactly once; encode() re-parses to
// the same segments; every ACK the adapter would send (accepting, refusing, or rejecting from
// sniff_header) parses and answers the right control ID; split_batch returns slices of the input.
// Every bug it found has a reproducer in fixtures/fuzz/hl7v2_parse/regress-*; none is exempted.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/utf8.h"
#include "fuzz_check.h"
#include "hl7v2/ack.h"
#include "hl7v2/batch.h"
#include "hl7v2/builder.h"
#include "hl7v2/charset.h"
#include "hl7v2/header.h"
#include "hl7v2/message.h"
#include "hl7v2/oru_r01.h"

namespace {

namespace hl7 = adapter::hl7v2;
using hl7::Message;
using hl7::Value;

// Inputs above this are still parsed, but not walked value by value: the walk is quadratic in
// the worst case (Segment::occurrence) and libFuzzer's inputs stay far below it anyway.
constexpr std::size_t kWalkLimit = 64 * 1024;

bool within(std::string_view inner, std::string_view outer) {
  if (inner.empty()) return true;  // an empty view may point anywhere (or nowhere)
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

// The delimiter rules of read_delimiters (message.cpp): ASCII, not a letter, digit, space, CR,
// LF or NUL, all different; escape, subcomponent and truncation may be undeclared ('\0').
bool delimiters_valid(const hl7::Delimiters& d) {
  const char chars[] = {d.field, d.component, d.repetition, d.escape, d.subcomponent, d.truncation};
  for (std::size_t i = 0; i < std::size(chars); ++i) {
    const char c = chars[i];
    if (c == '\0' && i >= 3) continue;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ' ' ||
        c == '\r' || c == '\n' || c == '\0' || static_cast<unsigned char>(c) >= 0x80) {
      return false;
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (chars[j] == c) return false;
    }
  }
  // MSH-2 is positional: nothing declared after an undeclared character.
  if (d.escape == '\0' && d.subcomponent != '\0') return false;
  return d.subcomponent != '\0' || d.truncation == '\0';
}

// ---------------------------------------------------------------------------------------------

// What a value written with append_escaped() reads back as: itself, unless MSH-2 declares no
// escape character, in which case delimiters, CR and LF were written as spaces.
std::string expected_text(const hl7::Delimiters& d, std::string_view text) {
  std::string out(text);
  if (d.escape != '\0') return out;
  for (char& c : out) {
    if (d.is_delimiter(c) || c == '\r' || c == '\n') c = ' ';
  }
  return out;
}

// Checks one level of children: iteration (Range) and indexed access (repetition(n), ...)
// must agree on count and content, and every child must lie inside its parent.
template <class Children, class At, class Count, class Recurse>
void check_children(const Value& parent, Children children, At at, Count count, Recurse recurse) {
  std::size_t n = 0;
  for (Value child : children) {
    ++n;
    FUZZ_CHECK(within(child.raw(), parent.raw()));
    FUZZ_CHECK(at(n).raw() == child.raw());
    recurse(child);
  }
  FUZZ_CHECK(n == count());
  FUZZ_CHECK(at(n + 1).empty());
  FUZZ_CHECK(at(0).empty());
}

void check_value(const Value& v, std::string_view text) {
  FUZZ_CHECK(within(v.raw(), text));
  FUZZ_CHECK(v.has_value() == (!v.empty() && !v.is_null()));
  const std::string decoded = v.text();
  if (!v.needs_decoding()) FUZZ_CHECK(decoded == v.raw());
  std::string appended = "prefix";
  v.append_text(appended);
  FUZZ_CHECK(appended == "prefix" + decoded);
  // The index is over UTF-8 text and text() promises UTF-8, whatever the escapes say.
  FUZZ_CHECK(adapter::find_invalid_utf8(v.raw()) == std::string_view::npos);
  FUZZ_CHECK(adapter::find_invalid_utf8(decoded) == std::string_view::npos);
}

void walk_value(const Value& field, std::string_view text) {
  check_value(field, text);
  check_children(
      field, field.repetitions(), [&](std::size_t n) { return field.repetition(n); },
      [&] { return field.repetition_count(); },
      [&](const Value& rep) {
        check_value(rep, text);
        check_children(
            rep, rep.components(), [&](std::size_t n) { return rep.component(n); },
            [&] { return rep.component_count(); },
            [&](const Value& comp) {
              check_value(comp, text);
              check_children(
                  comp, comp.subcomponents(), [&](std::size_t n) { return comp.subcomponent(n); },
                  [&] { return comp.subcomponent_count(); },
                  [&](const Value& sub) { check_value(sub, text); });
            });
      });
  // A field asked for a component reads its first repetition, as HL7 does.
  FUZZ_CHECK(field.component(1).raw() == field.repetition(1).component(1).raw());
  FUZZ_CHECK(field.subcomponent(1).raw() == field.component(1).subcomponent(1).raw());
}

void check_paths(const Message& m) {
  // Valid paths always parse; what they find must match the equivalent navigation.
  for (std::string_view p :
       {"MSH-9", "MSH-9.1", "MSH-9.2", "MSH-10", "MSH-12", "PID-3", "PID-3[2].4.1", "PID.3.1",
        "OBX[2]-5", "OBX-5[3].2.1", "ZZ9-1", "MSH[2]-1", "NTE[99]-3.1.1"}) {
    auto v = m.get(p);
    FUZZ_CHECK(v.ok());
    if (!v) continue;
    FUZZ_CHECK(within(v->raw(), m.text()));
    v->text();
  }
  FUZZ_CHECK(m.get("MSH-9.1")->raw() == m.msh(9).component(1).raw());
  FUZZ_CHECK(m.get("MSH-1")->raw() == std::string_view(&m.delimiters().field, 1));
  FUZZ_CHECK(m.get("MSH")->raw() == m.segment(0).raw());
  // Malformed paths fail, and say why.
  for (std::string_view p :
       {"", "P", "pid-3", "PID-0", "PID-3[0]", "PID-3.", "PID-3x", "PID[-1]"}) {
    auto v = m.get(p);
    FUZZ_CHECK(!v.ok());
    if (!v) FUZZ_CHECK(!v.error().message.empty());
  }
  // A path naming each segment present, through find() and get().
  for (std::size_t i = 0; i < m.segment_count() && i < 32; ++i) {
    const hl7::Segment seg = m.segment(i);
    const std::string id(seg.id());
    auto p = hl7::parse_path(id + "[" + std::to_string(seg.occurrence()) + "]-1");
    if (!p) continue;  // IDs with digits in first place are valid segments but not paths
    const auto found = m.find(id, seg.occurrence());
    FUZZ_CHECK(found && found->index() == i);
    FUZZ_CHECK(m.count(id) >= seg.occurrence());
    FUZZ_CHECK(!m.find(id, m.count(id) + 1));
    FUZZ_CHECK(m.get(*p).raw() == seg.field(1).raw());
  }
}

void check_oru_view(const Message& m) {
  // Every segment after MSH sits in exactly one place.
  const std::vector<hl7::SegmentRef> all = hl7::view_oru_r01(m).all_segments();
  FUZZ_CHECK(all.size() == m.segment_count() - 1);
  for (std::size_t i = 0; i < all.size(); ++i) FUZZ_CHECK(all[i] == i + 1);
}

void check_encode(const Message& m) {
  const std::string wire = hl7::encode(m);
  auto again = Message::parse(wire);
  if (!again) {
    std::fprintf(stderr, "encode() does not parse: %s\n", again.error().to_string().c_str());
    FUZZ_CHECK(again.ok());
    return;
  }
  FUZZ_CHECK(again->segment_count() == m.segment_count());
  FUZZ_CHECK(again->delimiters().field == m.delimiters().field);
  for (std::size_t i = 0; i < m.segment_count(); ++i) {
    FUZZ_CHECK(again->segment(i).raw() == m.segment(i).raw());
  }
}

// The ACK must be a message the sender (and this adapter) can read, and must answer this
// message: MSA-1 the code, MSA-2 its control ID. `sniffed`: the header came from sniff_header
// (a rejected message), not from a parsed one.
void check_ack(const hl7::Header& in, hl7::AckCode code, const hl7::AckError* error, bool sniffed) {
  hl7::AckOptions opts;
  opts.control_id = "ACK-1";
  opts.timestamp = "20240102030405";  // fixed: the ACK must not depend on the clock
  const std::string ack = hl7::make_ack(in, code, error, opts);
  // Original mode always answers; enhanced mode decides by MSH-15.
  if (!in.enhanced_mode()) FUZZ_CHECK(hl7::should_send(in, code));
  if (in.accept_ack_type == "AL") FUZZ_CHECK(hl7::should_send(in, code));
  if (in.accept_ack_type == "NE") FUZZ_CHECK(!hl7::should_send(in, code));
  // sniff_header must pick delimiters the parser accepts, or the ACK cannot parse.
  if (sniffed) FUZZ_CHECK(delimiters_valid(in.delimiters));
  auto parsed = Message::parse(ack);
  if (!parsed) {
    std::fprintf(stderr, "ACK does not parse: %s\n", parsed.error().to_string().c_str());
    FUZZ_CHECK(parsed.ok());
    return;
  }
  FUZZ_CHECK(parsed->msh(10).text() == expected_text(in.delimiters, opts.control_id));
  const auto msa = parsed->find("MSA");
  FUZZ_CHECK(msa.has_value());
  FUZZ_CHECK(msa->field(1).text() == hl7::to_string(code));
  // Header values are UTF-8 (sniffed ones converted), and an ACK that declares 8859/1 is written
  // in it, so the control ID reads back exactly.
  FUZZ_CHECK(msa->field(2).raw() == in.control_id);
  FUZZ_CHECK((error != nullptr) == parsed->find("ERR").has_value());
}

void check_message(const Message& m, std::string_view input) {
  FUZZ_CHECK(m.segment_count() >= 1);
  FUZZ_CHECK(m.segment(0).id() == "MSH");
  FUZZ_CHECK(delimiters_valid(m.delimiters()));
  FUZZ_CHECK(m.msh(2).raw() == m.delimiters().encoding_characters());
  const std::string_view text = m.text();
  const bool walk = input.size() <= kWalkLimit;
  for (std::size_t i = 0; i < m.segment_count(); ++i) {
    const hl7::Segment seg = m.segment(i);
    FUZZ_CHECK(within(seg.raw(), text));
    FUZZ_CHECK(seg.raw().substr(0, 3) == seg.id());
    FUZZ_CHECK(seg.raw().find_first_of("\r\n") == std::string_view::npos);
    FUZZ_CHECK(seg.index() == i);
    if (!walk) continue;
    FUZZ_CHECK(seg.occurrence() >= 1);
    const hl7::Location loc = seg.location(1);
    FUZZ_CHECK(loc.segment == seg.id() && loc.segment_index == i + 1);
    const std::size_t fields = seg.field_count();
    for (std::size_t f = 0; f <= fields + 1; ++f) {
      const Value v = seg.field(f);
      if (f == 0 || f > fields) FUZZ_CHECK(v.empty());
      walk_value(v, text);
    }
  }
  if (walk) check_paths(m);
  check_oru_view(m);
  check_encode(m);

  const hl7::Header h = hl7::header_of(m);
  FUZZ_CHECK(h.found);
  FUZZ_CHECK(h.delimiters.field == m.delimiters().field);
  // Intake answers a message without the MSH fields it needs with an ACK naming the field.
  if (auto required = hl7::check_required(h); !required) {
    FUZZ_CHECK(!required.error().message.empty());
    FUZZ_CHECK(required.error().location.segment == "MSH");
    const hl7::AckError missing{required.error().code, required.error().message,
                                required.error().location, 'E'};
    check_ack(h, hl7::ack_code_for(h, missing.code), &missing, false);
  } else {
    FUZZ_CHECK(!h.message_code.empty() && !h.trigger_event.empty());
    FUZZ_CHECK(!h.control_id.empty() && !h.version.empty());
  }
  check_ack(h, hl7::ack_code_for(h, adapter::Errc::ok), nullptr, false);
  // The refusal intake sends for an unwanted message type quotes the type, so the decoded MSH-9
  // reaches MSA-3 and ERR-8.
  hl7::AckError refused{adapter::Errc::message_type_refused,
                        "message type " + h.type_and_trigger() + " is not accepted by listener 'x'",
                        m.segment(0).location(9), 'E'};
  check_ack(h, hl7::ack_code_for(h, refused.code), &refused, false);
}

// A rejected message is answered from sniff_header with the parse error (as app/intake.cpp
// does); the sender must be able to read that answer too.
void check_rejection(const hl7::ParseError& e, std::string_view input) {
  FUZZ_CHECK(!e.message.empty());
  FUZZ_CHECK(!e.to_string().empty());
  const hl7::Header h = hl7::sniff_header(input);
  if (!h.found) return;
  hl7::AckError error{e.code, e.message, e.location, 'E'};
  check_ack(h, hl7::ack_code_for(h, e.code), &error, true);
}

void check_parse(std::string_view input, const hl7::ParseOptions& options) {
  auto by_view = Message::parse(input, options);
  auto by_move = Message::parse(std::string(input), options);
  FUZZ_CHECK(by_view.ok() == by_move.ok());
  if (by_view) {
    FUZZ_CHECK(by_view->text() == by_move->text());
    FUZZ_CHECK(by_view->segment_count() == by_move->segment_count());
    check_message(*by_view, input);
  } else {
    FUZZ_CHECK(by_view.error().code == by_move.error().code);
    FUZZ_CHECK(by_view.error().message == by_move.error().message);
    check_rejection(by_view.error(), input);
  }
}

void check_batch(std::string_view input) {
  hl7::sniff_header(input);
  const bool looks = hl7::looks_like_batch(input);
  auto batch = hl7::split_batch(input);
  if (!batch) {
    FUZZ_CHECK(!batch.error().message.empty());
    return;
  }
  FUZZ_CHECK(!batch->messages.empty());
  // Intake only splits what looks_like_batch flags; anything else must be a single message.
  if (!looks) FUZZ_CHECK(batch->messages.size() == 1 && !batch->enveloped());
  for (std::string_view part :
       {batch->file_header, batch->batch_header, batch->batch_trailer, batch->file_trailer}) {
    FUZZ_CHECK(within(part, input));
  }
  for (std::string_view message : batch->messages) {
    FUZZ_CHECK(!message.empty() && within(message, input));
    FUZZ_CHECK(message.substr(0, 3) == "MSH");
  }
  // Each message of a real batch is parsed on its own; bound the work for huge batches.
  if (batch->messages.size() > 1) {
    for (std::size_t i = 0; i < batch->messages.size() && i < 8; ++i) {
      check_parse(batch->messages[i], {});
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_parse(input, {});
  // A listener may default to Latin-1; that only changes anything for non-ASCII input.
  if (!adapter::is_ascii(input)) check_parse(input, {adapter::hl7v2::Charset::latin1});
  check_batch(input);
  return 0;
}
