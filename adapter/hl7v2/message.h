// A parsed HL7 v2 message: an index over its text, with views for segments, fields, repetitions,
// components and subcomponents, and access by path ("PID-3[2].4.1", "OBX[4]-5").
//
// Parsing validates structure (MSH first, delimiters, segment IDs, character set) and builds an
// offset index in one pass; values are split and unescaped only when read, so reading every
// field of a message costs one more pass and allocates only for values that contain escapes.
//
// Views (Segment, Value) borrow from the Message: they are valid while the Message lives and is
// not moved or assigned. A Message is immutable and may be read from several threads at once.
#pragma once

#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "hl7v2/path.h"
#include "hl7v2/types.h"

namespace adapter::hl7v2 {

class Message;

// A piece of a message at one level: a field, a repetition, a component or a subcomponent.
// raw() is the text as sent (still escaped); text() is the decoded UTF-8 value.
class Value {
 public:
  enum class Level : std::uint8_t { field, repetition, component, subcomponent, literal };

  Value() = default;
  Value(std::string_view raw, Level level, const Delimiters* d, Charset cs)
      : raw_(raw), d_(d), level_(level), cs_(cs) {}

  std::string_view raw() const { return raw_; }
  bool empty() const { return raw_.empty(); }
  // The explicit null "" ("delete this value" in HL7), distinct from an empty value.
  bool is_null() const { return raw_ == "\"\""; }
  // True when the value has content: neither empty nor the explicit null.
  bool has_value() const { return !empty() && !is_null(); }

  std::string text() const;                  // decoded
  void append_text(std::string& out) const;  // decoded, appended
  bool needs_decoding() const;               // false: text() == raw()

  // Children, 1-based; an absent child is an empty Value. Asking a field for a component reads
  // its first repetition, as HL7 does.
  Value repetition(std::size_t n) const;
  Value component(std::size_t n) const;
  Value subcomponent(std::size_t n) const;
  std::size_t repetition_count() const;   // 0 for an empty field
  std::size_t component_count() const;    // 0 for an empty value
  std::size_t subcomponent_count() const;

  // Iteration without re-scanning: for (Value rep : field.repetitions()) ...
  class Range;
  Range repetitions() const;
  Range components() const;
  Range subcomponents() const;

 private:
  Value split(char sep, Level child, std::size_t n) const;
  std::size_t count(char sep) const;
  Value as_repetition() const;  // a field read as its first repetition
  Value as_component() const;   // a field/repetition read as its first component

  std::string_view raw_;
  const Delimiters* d_ = nullptr;
  Level level_ = Level::field;
  Charset cs_ = Charset::utf8;
};

class Value::Range {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Value;
    using difference_type = std::ptrdiff_t;
    using pointer = const Value*;
    using reference = Value;

    iterator() = default;
    iterator(const Range* range, std::size_t pos, bool end);
    Value operator*() const { return current_; }
    iterator& operator++();
    iterator operator++(int) { iterator t = *this; ++*this; return t; }
    bool operator==(const iterator& o) const { return end_ == o.end_ && (end_ || pos_ == o.pos_); }

   private:
    void load();
    const Range* range_ = nullptr;
    std::size_t pos_ = 0;   // start of the current piece
    std::size_t next_ = 0;  // start of the following piece
    bool end_ = true;
    Value current_;
  };

  Range(Value parent, char sep, Value::Level child) : parent_(parent), sep_(sep), child_(child) {}
  iterator begin() const { return iterator(this, 0, parent_.empty()); }
  iterator end() const { return iterator(this, 0, true); }

 private:
  friend class iterator;
  Value parent_;
  char sep_;
  Value::Level child_;
};

// A segment of a message.
class Segment {
 public:
  Segment(const Message* m, std::size_t index) : m_(m), index_(index) {}

  std::string_view id() const;
  std::size_t index() const { return index_; }  // 0-based position in the message
  std::uint32_t occurrence() const;             // 1-based among segments with the same ID
  std::string_view raw() const;                 // the whole segment text, without separator
  // Highest field number present (MSH counts MSH-1 and MSH-2 like every other field).
  std::size_t field_count() const;
  // Field n (1-based). MSH-1 is the field separator and MSH-2 the encoding characters, both
  // returned literally; the same holds for FHS and BHS.
  Value field(std::size_t n) const;
  Location location(std::uint32_t field = 0) const;

 private:
  const Message* m_;
  std::size_t index_;
};

struct ParseOptions {
  // Character set assumed when MSH-18 is empty.
  Charset default_charset = Charset::utf8;
};

class Message {
 public:
  // Parses one message (not a batch: see batch.h). Never throws on bad input.
  static Result<Message, ParseError> parse(std::string_view bytes, const ParseOptions& = {});
  static Result<Message, ParseError> parse(std::string&& bytes, const ParseOptions& = {});

  const Delimiters& delimiters() const { return d_; }
  Charset charset() const { return cs_; }
  // The text as indexed: UTF-8, byte-order mark removed. Segment separators are as received.
  std::string_view text() const { return text_; }

  std::size_t segment_count() const { return segments_.size(); }
  Segment segment(std::size_t index) const { return Segment(this, index); }
  // The nth (1-based) segment with this ID.
  std::optional<Segment> find(std::string_view id, std::size_t occurrence = 1) const;
  std::size_t count(std::string_view id) const;

  // Access by path; an absent value is an empty Value. The string form fails only when the
  // path itself is malformed.
  Value get(const Path& path) const;
  Result<Value> get(std::string_view path) const;

  // Header shortcuts (MSH-n).
  Value msh(std::size_t field) const { return segment(0).field(field); }

 private:
  friend class Segment;
  struct SegmentIndex {
    std::uint32_t begin;        // offset of the segment ID
    std::uint32_t end;          // offset one past the last byte
    std::uint32_t first_piece;  // index into piece_begins_ of piece 0 (the ID)
    std::uint32_t piece_count;  // pieces split on the field separator, ID included
  };

  static Result<Message, ParseError> parse_owned(std::string text, const ParseOptions& options);
  Location locate(std::size_t offset) const;
  std::string_view piece(const SegmentIndex& s, std::size_t k) const;

  std::string text_;
  Delimiters d_;
  Charset cs_ = Charset::utf8;
  std::vector<SegmentIndex> segments_;
  // For each segment, the offset where each piece starts, then one sentinel (end + 1).
  std::vector<std::uint32_t> piece_begins_;
};

// True for MSH, FHS and BHS, whose field 1 is the field separator itself.
inline bool is_header_segment(std::string_view id) {
  return id == "MSH" || id == "FHS" || id == "BHS";
}

}  // namespace adapter::hl7v2
