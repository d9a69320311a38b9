// Writing HL7 v2: building new messages (ACKs) with a chosen set of delimiters, and writing a
// parsed message back out.
//
//   MessageBuilder b(incoming.delimiters());
//   b.segment("MSH").raw(3, "ADAPTERD").components(9, {"ACK", "R01", "ACK"});
//   b.segment("MSA").text(1, "AA").raw(2, control_id);
//   std::string wire = b.encode();   // "MSH|^~\\&|ADAPTERD||...\rMSA|AA|...\r"
#pragma once

#include <deque>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "hl7v2/message.h"
#include "hl7v2/types.h"

namespace adapter::hl7v2 {

class SegmentBuilder {
 public:
  SegmentBuilder(std::string_view id, const Delimiters& d);

  // Field n (1-based, HL7 numbering; for MSH n >= 3) set to `text`, escaped.
  SegmentBuilder& text(std::size_t field, std::string_view text);
  // Field n set to components, each escaped: components(9, {"ACK", "R01", "ACK"}).
  SegmentBuilder& components(std::size_t field, std::initializer_list<std::string_view> parts);
  // Field n set to text already encoded with the same delimiters (e.g. copied from a message).
  SegmentBuilder& raw(std::size_t field, std::string_view raw);

  void append_to(std::string& out) const;

 private:
  std::string& slot(std::size_t field);

  std::string id_;
  Delimiters d_;  // a copy: a builder that is copied or moved must not point into its source
  std::vector<std::string> fields_;  // index = field number; [0] unused
};

class MessageBuilder {
 public:
  explicit MessageBuilder(const Delimiters& d = {}) : d_(d) {}

  // Appends a segment; MSH gets MSH-1 and MSH-2 from the delimiters.
  SegmentBuilder& segment(std::string_view id);
  // Segments terminated by CR, as HL7 requires.
  std::string encode() const;
  const Delimiters& delimiters() const { return d_; }

 private:
  Delimiters d_;
  std::deque<SegmentBuilder> segments_;  // deque: references stay valid as segments are added
};

// Writes a parsed message back with its own delimiters: every segment exactly as received,
// each terminated by CR (so LF or CRLF input comes out with standard separators), in the
// character set MSH-18 declares: 8859/1 comes back as 8859/1, not as the UTF-8 of text(); with
// MSH-18 empty the text is written as UTF-8 (whatever ParseOptions::default_charset was).
std::string encode(const Message& message);

}  // namespace adapter::hl7v2
