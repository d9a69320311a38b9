// A small JSON value for the mapping engine: what templates, lookups and expressions produce,
// and what becomes the FHIR output. Objects keep their member order (FHIR readers and golden
// files are easier to read that way); numbers keep their exact text, so that 0.480 stays 0.480
// (FHIR decimals carry precision) and large integers are never rounded.
//
// Values are immutable once built and cheap to copy (children are shared).
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace adapter::mapping {

class Json;
struct JsonMember;
// Builders: what code assembles before making an immutable array or object of it.
using JsonArray = std::vector<Json>;
using JsonObject = std::vector<std::pair<std::string, Json>>;

// Sets `key` in `members`: replaces the value in place when the key exists (keeping the member
// order), appends it otherwise. Used for $merge and for feed.json overrides.
void set_member(JsonObject& members, std::string_view key, Json value);

class Json {
 public:
  enum class Kind : std::uint8_t { null, boolean, number, string, array, object };

  Json() noexcept : raw_{} {}  // all zero: null
  Json(const Json& other) noexcept : raw_(other.raw_) {
    if (on_heap()) retain(heap_.rep);
  }
  Json(Json&& other) noexcept : raw_(other.raw_) { other.raw_ = {}; }
  Json& operator=(const Json& other) noexcept {
    if (this != &other) {
      Json copy(other);
      swap(copy);
    }
    return *this;
  }
  Json& operator=(Json&& other) noexcept {
    if (this != &other) {
      Json moved(std::move(other));
      swap(moved);
    }
    return *this;
  }
  ~Json() {
    if (on_heap()) release(*this);
  }
  void swap(Json& other) noexcept { std::swap(raw_, other.raw_); }

  static Json boolean(bool b) {
    Json j;
    j.heap_.kind = Kind::boolean;
    j.heap_.flag = b;
    return j;
  }
  static Json number(std::string_view text) { return text_value(Kind::number, text); }
  static Json number(const char* text) { return number(std::string_view(text)); }
  static Json number(const std::string& text) { return number(std::string_view(text)); }
  static Json number(double value);
  static Json string(std::string_view s) { return text_value(Kind::string, s); }
  // `a` then `b` as one string, written where the string keeps its text (no temporary).
  static Json string(std::string_view a, std::string_view b);
  static Json array(JsonArray items);
  static Json object(JsonObject members);
  // The same from items or members held elsewhere, which are moved out (the renderer's stacks).
  static Json adopt_array(std::span<Json> items);
  static Json adopt_object(std::span<JsonMember> members);

  Kind kind() const { return in_.kind; }
  bool is_null() const { return kind() == Kind::null; }
  bool is_string() const { return kind() == Kind::string; }
  bool is_number() const { return kind() == Kind::number; }
  bool is_bool() const { return kind() == Kind::boolean; }
  bool is_array() const { return kind() == Kind::array; }
  bool is_object() const { return kind() == Kind::object; }

  // Each throws std::bad_variant_access for a value of another kind. Views are valid while this
  // value (or a copy of it) lives.
  bool as_bool() const { return expect(Kind::boolean), heap_.flag; }
  std::string_view as_string() const { return expect(Kind::string), text(); }
  std::string_view number_text() const { return expect(Kind::number), text(); }
  double as_double() const;
  std::span<const Json> as_array() const;  // (these four are defined below JsonMember)
  std::span<const JsonMember> as_object() const;
  // The members as a builder, to change some and make a new object.
  JsonObject object_members() const;

  // Member of an object by key (null when absent or not an object).
  const Json* find(std::string_view key) const;

  // "Nothing" in the template sense: null, "", [] or {} (such values are omitted from output).
  bool is_empty() const;

  // The block this value shares with its copies, or null when it holds its value inline (null,
  // booleans, short strings and numbers, empty arrays and objects). Two values with the same
  // block are equal; equal values may have different blocks.
  const void* block() const { return on_heap() ? heap_.rep : nullptr; }

  // Serialises as compact or indented (2 spaces) JSON, object members in order.
  std::string dump(bool pretty = false) const;
  // Appends the compact form to `out`.
  void dump_to(std::string& out) const;

  friend bool operator==(const Json& a, const Json& b);

  // A block: what a value longer than the inline form holds, shared by its copies. Defined
  // here, not in json.cpp, so that reading a value (text, items, members, find) is inline: the
  // renderer, the output checks and the serialiser read every value several times.
  struct alignas(8) Rep {
    std::atomic<std::uint32_t> refs;
    std::uint32_t size;  // bytes (string, number), items (array) or members (object)
    Kind kind;
    char* payload() { return reinterpret_cast<char*>(this + 1); }  // NOLINT: the block's tail
    Json* items() { return reinterpret_cast<Json*>(payload()); }   // NOLINT
    JsonMember* members() { return reinterpret_cast<JsonMember*>(payload()); }  // NOLINT
  };

 private:
  // 24 bytes, no allocation for null, booleans and strings or numbers of up to 22 bytes (codes,
  // statuses, dates, most identifiers). Anything longer is one block: a reference count, a size
  // and the bytes, items or members after it. Blocks are shared by copies (a template literal is
  // copied into every output that uses it) and recycled through a per-thread pool (json.cpp),
  // because a mapping makes and drops a few hundred of them.
  static constexpr std::uint8_t kHeap = 0xFF;
  static constexpr std::size_t kInline = 22;
  struct Inline {
    Kind kind;
    std::uint8_t tag;  // string or number: its length when held here, else kHeap
    char chars[kInline];
  };
  struct Heap {
    Kind kind;
    std::uint8_t tag;  // kHeap: `rep` holds the value (null for an empty array or object)
    bool flag;         // a boolean's value
    Rep* rep;
    std::uint64_t unused;
  };
  struct Words {
    std::uint64_t words[3];
  };
  union {
    Inline in_;
    Heap heap_;
    Words raw_;  // what copies and moves copy
  };

  bool on_heap() const { return in_.tag == kHeap && heap_.rep != nullptr; }
  std::string_view text() const {
    if (in_.tag != kHeap) return {in_.chars, in_.tag};
    return {heap_.rep->payload(), heap_.rep->size};
  }
  static Json text_value(Kind kind, std::string_view text);
  template <class Element>
  static Json adopt(Kind kind, std::span<Element> elements);
  static void retain(Rep* rep) noexcept;
  static void release(Json& j) noexcept;
  void expect(Kind kind) const {
    if (in_.kind != kind) throw std::bad_variant_access();
  }
};
static_assert(sizeof(Json) == 24);

// An object member. The key is a string Json (shared, or held inline when short).
struct JsonMember {
  Json key;
  Json value;
  std::string_view name() const { return key.as_string(); }
};

inline std::span<const Json> Json::as_array() const {
  expect(Kind::array);
  if (heap_.rep == nullptr) return {};
  return {heap_.rep->items(), heap_.rep->size};
}

inline std::span<const JsonMember> Json::as_object() const {
  expect(Kind::object);
  if (heap_.rep == nullptr) return {};
  return {heap_.rep->members(), heap_.rep->size};
}

inline const Json* Json::find(std::string_view key) const {
  if (!is_object()) return nullptr;
  for (const JsonMember& m : as_object()) {
    if (m.name() == key) return &m.value;
  }
  return nullptr;
}

inline bool Json::is_empty() const {
  switch (kind()) {
    case Kind::null:
      return true;
    case Kind::string:
      return in_.tag == 0;  // an empty string is always held inline
    case Kind::array:
    case Kind::object:
      return heap_.rep == nullptr || heap_.rep->size == 0;
    default:
      return false;
  }
}

// Differences between two JSON values, one line each with its path:
//   "entry[3].resource.valueQuantity.value: expected 0.48, got 0.480"
std::vector<std::string> json_diff(const Json& expected, const Json& actual, std::size_t max = 50);

}  // namespace adapter::mapping
