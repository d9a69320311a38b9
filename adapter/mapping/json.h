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
  static Json boolean(bool b) { return Json(Data(b)); }
  static Json number(std::string text) { return Json(Data(Number{std::move(text)})); }
  static Json number(double value);
  static Json string(std::string s) {
    return Json(Data(std::make_shared<const std::string>(std::move(s))));
  }
  static Json array(JsonArray items) {
    return Json(Data(std::make_shared<const JsonArray>(std::move(items))));
  }
  static Json object(JsonObject members) {
    return Json(Data(std::make_shared<const JsonObject>(std::move(members))));
  }

  Kind kind() const { return static_cast<Kind>(data_.index()); }
  bool is_null() const { return kind() == Kind::null; }
  bool is_string() const { return kind() == Kind::string; }
  bool is_number() const { return kind() == Kind::number; }
  bool is_bool() const { return kind() == Kind::boolean; }
  bool is_array() const { return kind() == Kind::array; }
  bool is_object() const { return kind() == Kind::object; }

  bool as_bool() const { return std::get<bool>(data_); }
  const std::string& as_string() const { return *std::get<StringPtr>(data_); }
  const std::string& number_text() const { return std::get<Number>(data_).text; }
  double as_double() const;
  const JsonArray& as_array() const { return *std::get<ArrayPtr>(data_); }
  const JsonObject& as_object() const { return *std::get<ObjectPtr>(data_); }

  // Member of an object by key (null when absent or not an object).
  const Json* find(std::string_view key) const;

  // "Nothing" in the template sense: null, "", [] or {} (such values are omitted from output).
  bool is_empty() const;

  // Serialises as compact or indented (2 spaces) JSON, object members in order.
  std::string dump(bool pretty = false) const;

  friend bool operator==(const Json& a, const Json& b);

 private:
  // Strings are shared like arrays and objects: template variables and literals are copied on
  // every read, and a copy must not copy the text.
  using StringPtr = std::shared_ptr<const std::string>;
  using ArrayPtr = std::shared_ptr<const JsonArray>;
  using ObjectPtr = std::shared_ptr<const JsonObject>;
  using Data = std::variant<std::monostate, bool, Number, StringPtr, ArrayPtr, ObjectPtr>;
  explicit Json(Data d) : data_(std::move(d)) {}
  Data data_;
};

// Differences between two JSON values, one line each with its path:
//   "entry[3].resource.valueQuantity.value: expected 0.48, got 0.480"
std::vector<std::string> json_diff(const Json& expected, const Json& actual, std::size_t max = 50);

}  // namespace adapter::mapping
