#include "hl7v2/message.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/utf8.h"
#include "hl7v2/charset.h"
#include "hl7v2/escape.h"

namespace adapter::hl7v2 {

// ---------------------------------------------------------------------------------------------
// Value

std::string Value::text() const {
  std::string out;
  append_text(out);
  return out;
}

void Value::append_decoded_text(std::string& out) const {
  append_decoded(out, raw_, s_->delimiters, s_->charset);
}

Value Value::split(char sep, Level child, std::size_t n) const {
  if (n == 0 || raw_.empty()) return Value({}, child, s_);
  if (sep == '\0') return n == 1 ? Value(raw_, child, s_) : Value({}, child, s_);
  std::size_t begin = 0;
  for (std::size_t i = 1; i < n; ++i) {
    const void* hit = std::memchr(raw_.data() + begin, sep, raw_.size() - begin);
    if (hit == nullptr) return Value({}, child, s_);
    begin = static_cast<std::size_t>(static_cast<const char*>(hit) - raw_.data()) + 1;
  }
  const void* hit = std::memchr(raw_.data() + begin, sep, raw_.size() - begin);
  const std::size_t end =
      hit == nullptr ? raw_.size()
                     : static_cast<std::size_t>(static_cast<const char*>(hit) - raw_.data());
  return Value(raw_.substr(begin, end - begin), child, s_);
}

std::size_t Value::count(char sep) const {
  if (raw_.empty()) return 0;
  if (sep == '\0') return 1;
  return 1 + static_cast<std::size_t>(std::count(raw_.begin(), raw_.end(), sep));
}

Value Value::repetition(std::size_t n) const {
  if (level_ == Level::field && s_ != nullptr)
    return split(s_->delimiters.repetition, Level::repetition, n);
  return n == 1 ? *this : Value({}, level_, s_);
}

Value Value::component(std::size_t n) const {
  if (s_ != nullptr && (level_ == Level::field || level_ == Level::repetition)) {
    return as_repetition().split(s_->delimiters.component, Level::component, n);
  }
  return n == 1 ? *this : Value({}, level_, s_);
}

Value Value::subcomponent(std::size_t n) const {
  if (s_ != nullptr && level_ != Level::subcomponent && level_ != Level::literal) {
    return as_component().split(s_->delimiters.subcomponent, Level::subcomponent, n);
  }
  return n == 1 ? *this : Value({}, level_, s_);
}

std::size_t Value::repetition_count() const {
  if (level_ == Level::field && s_ != nullptr) return count(s_->delimiters.repetition);
  return raw_.empty() ? 0 : 1;
}

std::size_t Value::component_count() const {
  if (s_ != nullptr && (level_ == Level::field || level_ == Level::repetition)) {
    return as_repetition().count(s_->delimiters.component);
  }
  return raw_.empty() ? 0 : 1;
}

std::size_t Value::subcomponent_count() const {
  if (s_ != nullptr && level_ != Level::subcomponent && level_ != Level::literal) {
    return as_component().count(s_->delimiters.subcomponent);
  }
  return raw_.empty() ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// Segment

std::string_view Segment::id() const {
  const auto& s = m_->segments_[index_];
  return std::string_view(m_->text_).substr(s.begin, 3);
}

std::uint32_t Segment::occurrence() const {
  const std::string_view my_id = id();
  std::uint32_t n = 1;
  for (std::size_t i = 0; i < index_; ++i) {
    if (m_->segment(i).id() == my_id) ++n;
  }
  return n;
}

std::string_view Segment::raw() const {
  const auto& s = m_->segments_[index_];
  return std::string_view(m_->text_).substr(s.begin, s.end - s.begin);
}

Value Message::header_field(const SegmentIndex& s, std::size_t n) const {
  if (n == 1)
    return Value(std::string_view(text_).substr(s.begin + 3, 1), Value::Level::literal, &syntax_);
  return s.piece_count > 1 ? Value(piece(s, 1), Value::Level::literal, &syntax_)
                           : Value({}, Value::Level::literal, &syntax_);
}

Location Segment::location(std::uint32_t field) const {
  Location loc;
  loc.segment = std::string(id());
  loc.segment_index = static_cast<std::uint32_t>(index_ + 1);
  loc.occurrence = occurrence();
  loc.field = field;
  return loc;
}

// ---------------------------------------------------------------------------------------------
// Message

namespace {

ParseError error_at(Errc code, std::string message, Location loc = {}) {
  return ParseError{code, std::move(message), std::move(loc)};
}

Location msh_field(std::uint32_t field) {
  Location loc;
  loc.segment = "MSH";
  loc.segment_index = 1;
  loc.occurrence = 1;
  loc.field = field;
  return loc;
}

bool is_segment_separator(char c) {
  return c == '\r' || c == '\n';
}

// Reads MSH-1 and MSH-2 into `d`.
std::optional<ParseError> read_delimiters(std::string_view text, Delimiters& d) {
  if (text.size() < 4 || is_segment_separator(text[3])) {
    return error_at(Errc::bad_delimiters, "MSH-1 (the field separator) is missing", msh_field(1));
  }
  const char fs = text[3];
  auto bad_char = [](char c) { return !Delimiters::usable(c); };
  if (bad_char(fs)) {
    return error_at(Errc::bad_delimiters, "MSH-1 is not a usable field separator", msh_field(1));
  }
  std::size_t end = 4;
  while (end < text.size() && text[end] != fs && !is_segment_separator(text[end])) ++end;
  const std::string_view enc = text.substr(4, end - 4);
  if (enc.size() < 2 || enc.size() > 5) {
    return error_at(
        Errc::bad_delimiters,
        "MSH-2 must hold the encoding characters: component, repetition, escape, subcomponent "
        "(and truncation in v2.7+), normally ^~\\& ; found " +
            std::to_string(enc.size()) + " characters",
        msh_field(2));
  }
  char chars[6] = {fs, '\0', '\0', '\0', '\0', '\0'};
  for (std::size_t i = 0; i < enc.size(); ++i) {
    const char c = enc[i];
    if (bad_char(c)) {
      return error_at(Errc::bad_delimiters, "MSH-2 holds a letter, digit, space or non-ASCII byte",
                      msh_field(2));
    }
    for (std::size_t j = 0; j <= i; ++j) {
      if (chars[j] == c) {
        return error_at(Errc::bad_delimiters,
                        std::string("MSH-2 declares '") + c +
                            "' twice: field, component, repetition, escape and subcomponent "
                            "characters must all differ",
                        msh_field(2));
      }
    }
    chars[i + 1] = c;
  }
  d = Delimiters::from(chars);
  return std::nullopt;
}

}  // namespace

Result<Message, ParseError> Message::parse(std::string_view bytes, const ParseOptions& options) {
  return parse_owned(std::string(bytes), options);
}

Result<Message, ParseError> Message::parse(std::string&& bytes, const ParseOptions& options) {
  return parse_owned(std::move(bytes), options);
}

Result<Message, ParseError> Message::parse_owned(std::string text, const ParseOptions& options) {
  // A UTF-8 byte-order mark and blank lines before MSH are transport noise.
  std::size_t skip = 0;
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) skip = 3;
  while (skip < text.size() && is_segment_separator(text[skip])) ++skip;
  if (skip > 0) text.erase(0, skip);

  const std::string_view head = std::string_view(text).substr(0, 3);
  if (head == "FHS" || head == "BHS") {
    Location loc;
    loc.segment = std::string(head);
    loc.segment_index = 1;
    return error_at(Errc::bad_batch,
                    "this is a batch (" + std::string(head) +
                        "), not a single message: split it into messages first",
                    loc);
  }
  if (head != "MSH") {
    Location loc;
    loc.segment_index = 1;
    return error_at(
        Errc::not_hl7,
        text.empty() ? "the message is empty" : "the message does not start with an MSH segment",
        loc);
  }

  Message m;
  Delimiters d;
  if (auto err = read_delimiters(text, d)) return std::move(*err);

  // Offsets are 32-bit.
  if (text.size() > std::numeric_limits<std::uint32_t>::max() - 2) {
    return error_at(Errc::not_hl7, "message larger than 4 GiB");
  }
  m.text_ = std::move(text);
  m.syntax_.set(d, options.default_charset);
  bool non_ascii = false;
  if (auto err = m.build_index(non_ascii)) return std::move(*err);

  // Character set, from MSH-18 (first repetition) read through the index. Every supported set
  // is ASCII-compatible, so delimiters and segment IDs were found correctly whatever it is.
  std::string_view msh18 = m.msh(18).raw();
  msh18 = msh18.substr(0, msh18.find(d.repetition));
  const bool declared = !msh18.empty();
  Charset cs = options.default_charset;
  if (declared) {
    if (auto named = charset_from_name(msh18)) {
      cs = *named;
    } else {
      return error_at(Errc::unsupported_charset,
                      "character set '" + std::string(msh18) +
                          "' is not supported (supported: ASCII, 8859/1, UNICODE UTF-8)",
                      msh_field(18));
    }
  }
  m.syntax_.charset = cs;
  if (cs == Charset::latin1 && non_ascii) {
    // Rare: convert to UTF-8 and index again (offsets move).
    std::string converted;
    append_latin1_as_utf8(converted, m.text_);
    if (converted.size() > std::numeric_limits<std::uint32_t>::max() - 2) {
      return error_at(Errc::not_hl7, "message larger than 4 GiB");
    }
    m.text_ = std::move(converted);
    m.segments_.clear();
    m.piece_begins_.clear();
    if (auto err = m.build_index(non_ascii)) return std::move(*err);
  }

  // Declared ASCII or UTF-8 (or nothing, read as UTF-8): the bytes must be valid UTF-8. ASCII
  // feeds that carry UTF-8 are accepted, since UTF-8 is a superset and nothing is lost.
  if (non_ascii && cs != Charset::latin1) {
    const std::string_view t = m.text_;
    const std::size_t bad = find_invalid_utf8(t);
    if (bad != std::string_view::npos) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(t[bad]));
      return error_at(Errc::bad_encoding,
                      std::string("byte ") + hex + " is not valid UTF-8 (character set " +
                          std::string(hl7_name(cs)) +
                          (declared ? ", from MSH-18" : ", the listener default") +
                          "); a sender using ISO 8859-1 should declare 8859/1 in MSH-18",
                      m.locate(bad));
    }
  }
  return m;
}

// One pass over the text: every field separator, CR and LF is an event (found 16 bytes at a time
// with SSE2 where available); segments open after a separator run and close at the next one.
std::optional<ParseError> Message::build_index(bool& non_ascii) {
  const char* t = text_.data();
  const std::size_t n = text_.size();
  const char fs = syntax_.delimiters.field;
  segments_.reserve(n / 64 + 4);
  piece_begins_.reserve(n / 6 + 8);

  SegmentIndex cur{};
  bool open = false;
  auto open_segment = [&](std::size_t pos) -> std::optional<ParseError> {
    const auto number = static_cast<std::uint32_t>(segments_.size() + 1);
    // The ID: three capital letters or digits (a letter first), then the field separator or the
    // end of the segment. Peeking ahead is safe: the whole text is here.
    auto id_char = [&](std::size_t k, bool first) {
      if (pos + k >= n) return false;
      const char c = t[pos + k];
      return (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9');
    };
    const char after = pos + 3 < n ? t[pos + 3] : '\r';
    if (!id_char(0, true) || !id_char(1, false) || !id_char(2, false) ||
        !(after == fs || is_segment_separator(after))) {
      Location loc;
      loc.segment_index = number;
      return error_at(Errc::bad_segment,
                      "segment does not start with a segment ID (three capital letters or digits "
                      "followed by the field separator)",
                      loc);
    }
    const std::string_view id(t + pos, 3);
    if (number > 1 && (id == "MSH" || id == "FHS" || id == "BHS" || id == "BTS" || id == "FTS")) {
      Location loc;
      loc.segment = std::string(id);
      loc.segment_index = number;
      return error_at(Errc::bad_batch,
                      id == "MSH" ? "a second MSH starts another message: split the batch first"
                                  : "batch segment " + std::string(id) + " inside a message",
                      loc);
    }
    cur = SegmentIndex{static_cast<std::uint32_t>(pos), 0,
                       static_cast<std::uint32_t>(piece_begins_.size()), 1, is_header_segment(id)};
    piece_begins_.push_back(static_cast<std::uint32_t>(pos));
    open = true;
    return std::nullopt;
  };
  auto close_segment = [&](std::size_t end) {
    cur.end = static_cast<std::uint32_t>(end);
    piece_begins_.push_back(static_cast<std::uint32_t>(end + 1));  // sentinel
    segments_.push_back(cur);
    open = false;
  };
  // A segment separator (rare: once per segment) ends the open segment and may open the next.
  auto on_separator = [&](std::size_t pos) -> std::optional<ParseError> {
    if (open) close_segment(pos);
    if (pos + 1 < n && !is_segment_separator(t[pos + 1])) return open_segment(pos + 1);
    return std::nullopt;
  };
  // Field separators are the common event: handled inline, one store each.
  auto on_field = [&](std::size_t pos) {
    if (!open) return;
    piece_begins_.push_back(static_cast<std::uint32_t>(pos + 1));
    ++cur.piece_count;
  };

  if (auto e = open_segment(0)) return e;  // parse_owned checked that the text starts with MSH
  std::size_t i = 0;
  unsigned high = 0;
#if defined(__SSE2__)
  const __m128i vfs = _mm_set1_epi8(fs);
  const __m128i vcr = _mm_set1_epi8('\r');
  const __m128i vlf = _mm_set1_epi8('\n');
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t + i));
    high |= static_cast<unsigned>(_mm_movemask_epi8(v));
    auto fields = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, vfs)));
    auto separators = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, vcr), _mm_cmpeq_epi8(v, vlf))));
    if (separators == 0) {
      // The usual block: only field separators, all in the open segment.
      while (fields != 0) {
        on_field(i + static_cast<std::size_t>(__builtin_ctz(fields)));
        fields &= fields - 1;
      }
      continue;
    }
    unsigned all = fields | separators;
    while (all != 0) {
      const auto bit = static_cast<std::size_t>(__builtin_ctz(all));
      all &= all - 1;
      if ((fields >> bit) & 1u) {
        on_field(i + bit);
      } else if (auto e = on_separator(i + bit)) {
        return e;
      }
    }
  }
#endif
  for (; i < n; ++i) {
    const char c = t[i];
    high |= static_cast<unsigned char>(c) & 0x80u;
    if (c == fs) {
      on_field(i);
    } else if (is_segment_separator(c)) {
      if (auto e = on_separator(i)) return e;
    }
  }
  if (open) close_segment(n);
  non_ascii = high != 0;
  return std::nullopt;
}

Location Message::locate(std::size_t offset) const {
  auto it = std::upper_bound(segments_.begin(), segments_.end(), offset,
                             [](std::size_t off, const SegmentIndex& s) { return off < s.begin; });
  if (it == segments_.begin()) return {};
  const std::size_t index = static_cast<std::size_t>(it - segments_.begin()) - 1;
  const SegmentIndex& s = segments_[index];
  std::uint32_t piece = 0;
  for (std::uint32_t k = 1; k < s.piece_count; ++k) {
    if (piece_begins_[s.first_piece + k] <= offset) piece = k;
  }
  const Segment seg = segment(index);
  const std::uint32_t field = is_header_segment(seg.id()) && piece > 0 ? piece + 1 : piece;
  return seg.location(field);
}

std::optional<Segment> Message::find(std::string_view id, std::size_t occurrence) const {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    if (std::string_view(text_).substr(segments_[i].begin, 3) == id && ++seen == occurrence) {
      return Segment(this, i);
    }
  }
  return std::nullopt;
}

std::size_t Message::count(std::string_view id) const {
  std::size_t seen = 0;
  for (const auto& s : segments_) {
    if (std::string_view(text_).substr(s.begin, 3) == id) ++seen;
  }
  return seen;
}

Value Message::get(const Path& path) const {
  const auto seg = find(path.segment_id(), path.occurrence == 0 ? 1 : path.occurrence);
  if (!seg) return Value({}, Value::Level::field, &syntax_);
  if (path.field == 0) return Value(seg->raw(), Value::Level::literal, &syntax_);
  Value v = seg->field(path.field);
  if (path.repetition > 0) v = v.repetition(path.repetition);
  if (path.component > 0) v = v.component(path.component);
  if (path.subcomponent > 0) v = v.subcomponent(path.subcomponent);
  return v;
}

Result<Value> Message::get(std::string_view path) const {
  auto p = parse_path(path);
  if (!p) return p.error();
  return get(*p);
}

}  // namespace adapter::hl7v2
