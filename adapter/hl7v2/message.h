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
#include <cstring>
#include <iterator>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "hl7v2/path.h"
#include "hl7v2/types.h"

namespace adapter::hl7v2 {

class Message;

namespace detail {

// What a Value needs to split and decode itself: the message's delimiters, its character set
// and, per byte value, which delimiter it is (one table lookup per byte when walking a field).
struct Syntax {
  enum ByteClass : std::uint8_t {
    kText = 0,
    kSubcomponent = 1,
    kComponent = 2,
    kRepetition = 3,
    kEscape = 4,
    kField = 5
  };
  Delimiters delimiters;
  Charset charset = Charset::utf8;
  std::uint8_t byte_class[256] = {};

  void set(const Delimiters& d, Charset cs) {
    delimiters = d;
    charset = cs;
    std::memset(byte_class, kText, sizeof byte_class);
    auto mark = [this](char c, ByteClass k) {
      if (c != '\0') byte_class[static_cast<unsigned char>(c)] = k;
    };
    mark(d.subcomponent, kSubcomponent);
    mark(d.component, kComponent);
    mark(d.repetition, kRepetition);
    mark(d.escape, kEscape);
    mark(d.field, kField);
  }
};

// Position of the first `c` in [p, end), or end. Values between delimiters are mostly a few
// bytes long, where a plain loop beats memchr's call and setup; long ones (report text) take
// memchr.
inline const char* find_byte(const char* p, const char* end, char c) {
  if (end - p > 32) {
    const void* hit = std::memchr(p, c, static_cast<std::size_t>(end - p));
    return hit == nullptr ? end : static_cast<const char*>(hit);
  }
  while (p != end && *p != c) ++p;
  return p;
}
}  // namespace detail

// A piece of a message at one level: a field, a repetition, a component or a subcomponent.
// raw() is the text as sent (still escaped); text() is the decoded UTF-8 value.
class Value {
  friend class Message;

 public:
  enum class Level : std::uint8_t { field, repetition, component, subcomponent, literal };

  Value() = default;
  Value(std::string_view raw, Level level, const detail::Syntax* syntax)
      : raw_(raw), s_(syntax), level_(level) {}

  std::string_view raw() const { return raw_; }
  bool empty() const { return raw_.empty(); }
  // The explicit null "" ("delete this value" in HL7), distinct from an empty value.
  bool is_null() const { return raw_ == "\"\""; }
  // True when the value has content: neither empty nor the explicit null.
  bool has_value() const { return !empty() && !is_null(); }

  std::string text() const;                  // decoded
  void append_text(std::string& out) const;  // decoded, appended
  // Decoded, without a copy when nothing needs decoding (most values): the view is raw() itself,
  // or `scratch` (cleared and filled) when escapes had to be decoded. Valid until the Message or
  // `scratch` changes.
  std::string_view text(std::string& scratch) const {
    if (!needs_decoding()) return raw_;
    scratch.clear();
    append_decoded_text(scratch);
    return scratch;
  }
  bool needs_decoding() const {  // false: text() == raw()
    if (escapes_ != Escapes::unknown) return escapes_ == Escapes::some;
    return level_ != Level::literal && s_ != nullptr && s_->delimiters.escape != '\0' &&
           detail::find_byte(raw_.data(), raw_.data() + raw_.size(), s_->delimiters.escape) !=
               raw_.data() + raw_.size();
  }

  // Children, 1-based; an absent child is an empty Value. Asking a field for a component reads
  // its first repetition, as HL7 does.
  Value repetition(std::size_t n) const;
  Value component(std::size_t n) const;
  Value subcomponent(std::size_t n) const;
  std::size_t repetition_count() const;  // 0 for an empty field
  std::size_t component_count() const;   // 0 for an empty value
  std::size_t subcomponent_count() const;

  // Iteration without re-scanning: for (Value rep : field.repetitions()) ...
  class Range;
  inline Range repetitions() const;
  inline Range components() const;
  inline Range subcomponents() const;

  // Where a leaf (a subcomponent) sits inside this value; 1-based.
  struct LeafPosition {
    std::uint32_t repetition = 1;
    std::uint32_t component = 1;
    std::uint32_t subcomponent = 1;
  };
  // Calls fn(LeafPosition, Value) for every subcomponent of this value in order, empty ones
  // included, in a single pass over its bytes: the fastest way to read a whole field.
  //   field.for_each_leaf([&](Value::LeafPosition at, Value leaf) { leaf.append_text(out); });
  template <class Fn>
  void for_each_leaf(Fn&& fn) const;

 private:
  enum class Escapes : std::uint8_t { unknown, none, some };  // found while splitting, if known

  void append_decoded_text(std::string& out) const;
  Value split(char sep, Level child, std::size_t n) const;
  std::size_t count(char sep) const;
  Value as_repetition() const {  // a field read as its first repetition
    if (level_ != Level::field || s_ == nullptr) return *this;
    return split(s_->delimiters.repetition, Level::repetition, 1);
  }
  Value as_component() const {  // a field or repetition read as its first component
    if (s_ == nullptr || (level_ != Level::field && level_ != Level::repetition)) return *this;
    return as_repetition().split(s_->delimiters.component, Level::component, 1);
  }

  std::string_view raw_;
  const detail::Syntax* s_ = nullptr;
  Level level_ = Level::field;
  Escapes escapes_ = Escapes::unknown;
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
    iterator(const Range* range, std::size_t pos, bool end) : range_(range), pos_(pos), end_(end) {
      if (!end_) load();
    }
    Value operator*() const { return current_; }
    iterator& operator++() {
      if (next_ == std::string_view::npos) {
        end_ = true;
      } else {
        pos_ = next_;
        load();
      }
      return *this;
    }
    iterator operator++(int) {
      iterator t = *this;
      ++*this;
      return t;
    }
    bool operator==(const iterator& o) const { return end_ == o.end_ && (end_ || pos_ == o.pos_); }

   private:
    void load() {
      const std::string_view raw = range_->parent_.raw_;
      const char* end = raw.data() + raw.size();
      const char* hit =
          range_->sep_ == '\0' ? end : detail::find_byte(raw.data() + pos_, end, range_->sep_);
      const auto stop = static_cast<std::size_t>(hit - raw.data());
      current_ = Value(raw.substr(pos_, stop - pos_), range_->child_, range_->parent_.s_);
      next_ = hit == end ? std::string_view::npos : stop + 1;
    }
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
  inline std::size_t field_count() const;
  // Field n (1-based). MSH-1 is the field separator and MSH-2 the encoding characters, both
  // returned literally; the same holds for FHS and BHS.
  inline Value field(std::size_t n) const;
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

  const Delimiters& delimiters() const { return syntax_.delimiters; }
  Charset charset() const { return syntax_.charset; }
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

  // Where a leaf sits: segment index (0-based), then field, repetition, component and
  // subcomponent (1-based).
  struct LeafAt {
    std::uint32_t segment = 0;
    std::uint32_t field = 1;
    std::uint32_t repetition = 1;
    std::uint32_t component = 1;
    std::uint32_t subcomponent = 1;
  };
  // Calls fn(LeafAt, Value) for every subcomponent of every field of every segment, in order,
  // empty ones included, in one pass over the text (16 bytes at a time where SSE2 is
  // available). MSH-1 and MSH-2 (and those of FHS/BHS) come as literal values. The fastest way
  // to read a whole message: an unmapped-data report, a benchmark, a full copy.
  template <class Fn>
  void for_each_leaf(Fn&& fn) const;

 private:
  friend class Segment;
  struct SegmentIndex {
    std::uint32_t begin;        // offset of the segment ID
    std::uint32_t end;          // offset one past the last byte
    std::uint32_t first_piece;  // index into piece_begins_ of piece 0 (the ID)
    std::uint32_t piece_count;  // pieces split on the field separator, ID included
    bool header;                // MSH, FHS or BHS: field 1 is the separator itself
  };

  static Result<Message, ParseError> parse_owned(std::string text, const ParseOptions& options);
  std::optional<ParseError> build_index(bool& non_ascii);
  Location locate(std::size_t offset) const;
  std::string_view piece(const SegmentIndex& s, std::size_t k) const {
    const std::uint32_t b = piece_begins_[s.first_piece + k];
    const std::uint32_t e = piece_begins_[s.first_piece + k + 1] - 1;
    return std::string_view(text_).substr(b, e - b);
  }
  Value header_field(const SegmentIndex& s, std::size_t n) const;  // MSH-1, MSH-2 (literal)

  std::string text_;
  detail::Syntax syntax_;
  std::vector<SegmentIndex> segments_;
  // For each segment, the offset where each piece starts, then one sentinel (end + 1).
  std::vector<std::uint32_t> piece_begins_;
};

// True for MSH, FHS and BHS, whose field 1 is the field separator itself.
inline bool is_header_segment(std::string_view id) {
  return id == "MSH" || id == "FHS" || id == "BHS";
}

// ---------------------------------------------------------------------------------------------
// Inline definitions: reading every value of a message is the parser's hot path.

inline void Value::append_text(std::string& out) const {
  if (needs_decoding()) {
    append_decoded_text(out);
  } else {
    out.append(raw_);
  }
}

inline Value::Range Value::repetitions() const {
  if (level_ == Level::field && s_ != nullptr) {
    return Range(*this, s_->delimiters.repetition, Level::repetition);
  }
  return Range(*this, '\0', level_);
}

inline Value::Range Value::components() const {
  if (s_ != nullptr && (level_ == Level::field || level_ == Level::repetition)) {
    return Range(as_repetition(), s_->delimiters.component, Level::component);
  }
  return Range(*this, '\0', level_);
}

inline Value::Range Value::subcomponents() const {
  if (s_ != nullptr && level_ != Level::subcomponent && level_ != Level::literal) {
    return Range(as_component(), s_->delimiters.subcomponent, Level::subcomponent);
  }
  return Range(*this, '\0', level_);
}

template <class Fn>
void Value::for_each_leaf(Fn&& fn) const {
  LeafPosition at;
  if (raw_.empty()) return;
  if (s_ == nullptr || level_ == Level::literal || level_ == Level::subcomponent) {
    fn(at, *this);
    return;
  }
  // Delimiters above this value's level are plain text here (a component has no repetitions).
  const std::uint8_t highest = level_ == Level::field        ? detail::Syntax::kRepetition
                               : level_ == Level::repetition ? detail::Syntax::kComponent
                                                             : detail::Syntax::kSubcomponent;
  const std::uint8_t* cls = s_->byte_class;
  const char* p = raw_.data();
  const char* const end = p + raw_.size();
  const char* start = p;
  bool escaped = false;
  auto emit = [&](const char* stop) {
    Value leaf(std::string_view(start, static_cast<std::size_t>(stop - start)), Level::subcomponent,
               s_);
    leaf.escapes_ = escaped ? Escapes::some : Escapes::none;
    fn(at, leaf);
  };
  for (; p != end; ++p) {
    const std::uint8_t k = cls[static_cast<unsigned char>(*p)];
    if (k == detail::Syntax::kText) continue;
    if (k == detail::Syntax::kEscape) {
      escaped = true;
      continue;
    }
    if (k > highest) continue;
    emit(p);
    start = p + 1;
    escaped = false;
    if (k == detail::Syntax::kSubcomponent) {
      ++at.subcomponent;
    } else if (k == detail::Syntax::kComponent) {
      ++at.component;
      at.subcomponent = 1;
    } else {
      ++at.repetition;
      at.component = 1;
      at.subcomponent = 1;
    }
  }
  emit(end);
}

template <class Fn>
void Message::for_each_leaf(Fn&& fn) const {
  const std::uint8_t* cls = syntax_.byte_class;
  const char* const text_begin = text_.data();
  const char* const text_end = text_begin + text_.size();
  for (std::size_t si = 0; si < segments_.size(); ++si) {
    const SegmentIndex& s = segments_[si];
    LeafAt at;
    at.segment = static_cast<std::uint32_t>(si);
    const char* p = text_begin + s.begin + 3;  // after the segment ID
    const char* const end = text_begin + s.end;
    if (p >= end) continue;  // a segment with no fields
    if (s.header) {
      at.field = 1;
      fn(at, header_field(s, 1));
      if (s.piece_count < 2) continue;
      at.field = 2;
      fn(at, header_field(s, 2));
      p = text_begin + piece_begins_[s.first_piece + 2] - 1;  // the separator before field 3
      if (s.piece_count < 3) continue;
      at.field = 2;  // the separator below moves to field 3
    } else {
      at.field = 0;  // the separator at *p moves to field 1
    }
    const char* start = p + 1;
    bool escaped = false;
    auto emit = [&](const char* stop) {
      Value leaf(std::string_view(start, static_cast<std::size_t>(stop - start)),
                 Value::Level::subcomponent, &syntax_);
      leaf.escapes_ = escaped ? Value::Escapes::some : Value::Escapes::none;
      fn(at, leaf);
    };
    auto on_delimiter = [&](const char* q, std::uint8_t k) {
      if (k == detail::Syntax::kEscape) {
        escaped = true;
        return;
      }
      if (q != p) emit(q);  // the separator at p itself only opens the first field
      start = q + 1;
      escaped = false;
      switch (k) {
        case detail::Syntax::kSubcomponent:
          ++at.subcomponent;
          break;
        case detail::Syntax::kComponent:
          ++at.component;
          at.subcomponent = 1;
          break;
        case detail::Syntax::kRepetition:
          ++at.repetition;
          at.component = at.subcomponent = 1;
          break;
        default:  // kField
          ++at.field;
          at.repetition = at.component = at.subcomponent = 1;
      }
    };
    const char* q = p;
#if defined(__SSE2__)
    const __m128i v_fs = _mm_set1_epi8(syntax_.delimiters.field);
    const __m128i v_cs = _mm_set1_epi8(syntax_.delimiters.component);
    const __m128i v_rs = _mm_set1_epi8(syntax_.delimiters.repetition);
    // Undeclared delimiters ('\0') would match NUL bytes: compare against the field separator
    // instead, which is already looked for.
    const char sub = syntax_.delimiters.subcomponent ? syntax_.delimiters.subcomponent
                                                     : syntax_.delimiters.field;
    const char esc =
        syntax_.delimiters.escape ? syntax_.delimiters.escape : syntax_.delimiters.field;
    const __m128i v_ss = _mm_set1_epi8(sub);
    const __m128i v_es = _mm_set1_epi8(esc);
    // Whole 16-byte blocks that lie inside the text; bits past the segment's end are dropped.
    while (q < end && q + 16 <= text_end) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
      const __m128i hits =
          _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, v_fs), _mm_cmpeq_epi8(v, v_cs)),
                       _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, v_rs), _mm_cmpeq_epi8(v, v_ss)),
                                    _mm_cmpeq_epi8(v, v_es)));
      auto mask = static_cast<unsigned>(_mm_movemask_epi8(hits));
      const auto left = static_cast<std::size_t>(end - q);
      if (left < 16) mask &= (1u << left) - 1;
      while (mask != 0) {
        const char* d = q + __builtin_ctz(mask);
        mask &= mask - 1;
        on_delimiter(d, cls[static_cast<unsigned char>(*d)]);
      }
      q += 16;
    }
#endif
    for (; q < end; ++q) {
      const std::uint8_t k = cls[static_cast<unsigned char>(*q)];
      if (k != detail::Syntax::kText) on_delimiter(q, k);
    }
    emit(end);
  }
}

inline std::size_t Segment::field_count() const {
  const auto& s = m_->segments_[index_];
  return s.header ? s.piece_count : s.piece_count - 1;
}

inline Value Segment::field(std::size_t n) const {
  const auto& s = m_->segments_[index_];
  std::size_t piece = n;
  if (s.header && n != 0) {
    if (n <= 2) return m_->header_field(s, n);
    piece = n - 1;
  }
  if (n == 0 || piece >= s.piece_count) return Value({}, Value::Level::field, &m_->syntax_);
  return Value(m_->piece(s, piece), Value::Level::field, &m_->syntax_);
}

}  // namespace adapter::hl7v2
