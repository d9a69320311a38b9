#include "hl7v2/builder.h"

#include "hl7v2/escape.h"

namespace adapter::hl7v2 {

SegmentBuilder::SegmentBuilder(std::string_view id, const Delimiters& d) : id_(id), d_(d) {}

std::string& SegmentBuilder::slot(std::size_t field) {
  if (fields_.size() <= field) fields_.resize(field + 1);
  return fields_[field];
}

SegmentBuilder& SegmentBuilder::text(std::size_t field, std::string_view text) {
  std::string& s = slot(field);
  s.clear();
  append_escaped(s, text, d_);
  return *this;
}

SegmentBuilder& SegmentBuilder::components(std::size_t field,
                                           std::initializer_list<std::string_view> parts) {
  std::string& s = slot(field);
  s.clear();
  bool first = true;
  for (std::string_view part : parts) {
    if (!first) s.push_back(d_.component);
    first = false;
    append_escaped(s, part, d_);
  }
  // Trailing empty components carry nothing.
  while (!s.empty() && s.back() == d_.component) s.pop_back();
  return *this;
}

SegmentBuilder& SegmentBuilder::raw(std::size_t field, std::string_view raw) {
  slot(field).assign(raw);
  return *this;
}

void SegmentBuilder::append_to(std::string& out) const {
  out += id_;
  const bool header = is_header_segment(id_);
  std::size_t first = 1;
  if (header) {
    out.push_back(d_.field);
    out += d_.encoding_characters();
    first = 3;
  }
  std::size_t last = fields_.empty() ? 0 : fields_.size() - 1;
  while (last >= first && fields_[last].empty()) --last;
  for (std::size_t f = first; f <= last && f < fields_.size(); ++f) {
    out.push_back(d_.field);
    out += fields_[f];
  }
  out.push_back('\r');
}

SegmentBuilder& MessageBuilder::segment(std::string_view id) {
  return segments_.emplace_back(id, d_);
}

std::string MessageBuilder::encode() const {
  std::string out;
  for (const auto& s : segments_) s.append_to(out);
  return out;
}

namespace {

// The parser converts 8859/1 text to UTF-8 (every character a single byte or a C2/C3 pair);
// this writes it back in 8859/1, the set MSH-18 declares.
void append_utf8_as_latin1(std::string& out, std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if ((c == 0xC2 || c == 0xC3) && i + 1 < text.size()) {
      const auto next = static_cast<unsigned char>(text[++i]);
      out.push_back(static_cast<char>(((c & 0x03u) << 6) | (next & 0x3Fu)));
    } else {
      out.push_back('?');  // not reachable for text the parser converted from 8859/1
    }
  }
}

}  // namespace

std::string encode(const Message& message) {
  std::string out;
  out.reserve(message.text().size() + 1);
  // 8859/1 when MSH-18 declares it; 8859/1 assumed by the listener default (MSH-18 empty) is
  // written as UTF-8, so that the output reads the same without that default.
  const bool latin1 =
      message.charset() == Charset::latin1 && !message.msh(18).repetition(1).empty();
  for (std::size_t i = 0; i < message.segment_count(); ++i) {
    if (latin1) {
      append_utf8_as_latin1(out, message.segment(i).raw());
    } else {
      out += message.segment(i).raw();
    }
    out.push_back('\r');
  }
  return out;
}

}  // namespace adapter::hl7v2
