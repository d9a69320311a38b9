// A small JSON value for the mapping engine: what templates, lookups and expressions produce,
// and what becomes the FHIR output. Objects keep their member order (FHIR readers and golden
// files are easier to read that way); numbers keep their exact text, so that 0.480 stays 0.480
// (FHIR decimals carry precision) and large integers are never rounded.
//
// Values are immutable once built and cheap to copy (children are shared).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace adapter::mapping {

class Json;
using JsonArray = std::vector<Json>;
using JsonObject = std::vector<std::pair<std::string, Json>>;

// Sets `key` in `members`: replaces the value in place when the key exists (keeping the member
// order), appends it otherwise. Used for $merge and for feed.json overrides.
void set_member(JsonObject& members, std::string_view key, Json value);

class Json {
 public:
  enum class Kind { null, boolean, number, string, array, object };
  struct Number {
    std::string text;  // exactly as written, e.g. "0.480" or "-12"
  };

  Json() = default;
  static Json boolean(bool b) {
    Json j(Kind::boolean);
    j.bool_ = b;
    return j;
  }
  static Json number(std::string text) {
    Json j(Kind::number);
    j.shared_ = std::make_shared<const std::string>(std::move(text));
    return j;
  }
  static Json number(double value);
  static Json string(std::string s) {
    Json j(Kind::string);
    j.shared_ = std::make_shared<const std::string>(std::move(s));
    return j;
  }
  static Json array(JsonArray items) {
    Json j(Kind::array);
    j.shared_ = std::make_shared<const JsonArray>(std::move(items));
    return j;
  }
  static Json object(JsonObject members) {
    Json j(Kind::object);
    j.shared_ = std::make_shared<const JsonObject>(std::move(members));
    return j;
  }

  Kind kind() const { return kind_; }
  bool is_null() const { return kind() == Kind::null; }
  bool is_string() const { return kind() == Kind::string; }
  bool is_number() const { return kind() == Kind::number; }
  bool is_bool() const { return kind() == Kind::boolean; }
  bool is_array() const { return kind() == Kind::array; }
  bool is_object() const { return kind() == Kind::object; }

  // Each throws std::bad_variant_access for a value of another kind.
  bool as_bool() const { return expect(Kind::boolean), bool_; }
  const std::string& as_string() const {
    return expect(Kind::string), *static_cast<const std::string*>(shared_.get());
  }
  const std::string& number_text() const {
    return expect(Kind::number), *static_cast<const std::string*>(shared_.get());
  }
  double as_double() const;
  const JsonArray& as_array() const {
    return expect(Kind::array), *static_cast<const JsonArray*>(shared_.get());
  }
  const JsonObject& as_object() const {
    return expect(Kind::object), *static_cast<const JsonObject*>(shared_.get());
  }

  // Member of an object by key (null when absent or not an object).
  const Json* find(std::string_view key) const;

  // "Nothing" in the template sense: null, "", [] or {} (such values are omitted from output).
  bool is_empty() const;

  // Serialises as compact or indented (2 spaces) JSON, object members in order.
  std::string dump(bool pretty = false) const;

  friend bool operator==(const Json& a, const Json& b);

 private:
  // Plain members rather than a std::variant: the engine copies, moves and drops JSON values
  // all the time, and these compile to a few inline instructions with no dispatch on the kind.
  // Strings, numbers, arrays and objects are shared (template variables and literals are copied
  // on every read, and a copy must not copy the text).
  explicit Json(Kind kind) : kind_(kind) {}
  void expect(Kind kind) const {
    if (kind_ != kind) throw std::bad_variant_access();
  }
  Kind kind_ = Kind::null;
  bool bool_ = false;
  std::shared_ptr<const void> shared_;  // std::string (string, number text), JsonArray, JsonObject
};

// Differences between two JSON values, one line each with its path:
//   "entry[3].resource.valueQuantity.value: expected 0.48, got 0.480"
std::vector<std::string> json_diff(const Json& expected, const Json& actual, std::size_t max = 50);

}  // namespace adapter::mapping
