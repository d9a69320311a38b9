// What expressions evaluate to: plain JSON data, or a place in the source message (an HL7 v2
// field or a group of segments, an XML node), or a list of those. Source places stay places
// until output needs text, so a template can hand a CWE field to a partial that reads its
// components, and every value read can be traced back to its HL7 path (errors, unmapped report).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mapping/json.h"

struct _xmlNode;  // NOLINT(bugprone-reserved-identifier): libxml2's own name for xmlNode

namespace adapter::hl7v2 {
class Message;
}

namespace adapter::mapping {

// A position in an HL7 v2 message: a segment, or a field, repetition, component or subcomponent
// of it (0 = the whole level).
struct Hl7Ref {
  const hl7v2::Message* message = nullptr;
  std::uint32_t segment = 0;  // index in the message
  std::uint32_t field = 0;
  std::uint32_t repetition = 0;
  std::uint32_t component = 0;
  std::uint32_t subcomponent = 0;
};

// Segments that belong together: the whole message, an ORU^R01 group, the OBX of one OBX-4
// sub-ID group, or one segment. Paths inside a template resolve against the innermost group
// that has the segment they name.
struct Hl7Group {
  const hl7v2::Message* message = nullptr;
  std::string kind;                     // "message", "ORDER_OBSERVATION", "subid", "segment", ...
  std::string key;                      // sub-ID group key ("2a"), or empty
  std::uint32_t index = 0;              // 1-based position among its siblings
  std::vector<std::uint32_t> segments;  // in message order
};
using Hl7GroupPtr = std::shared_ptr<const Hl7Group>;

struct XmlRef {
  _xmlNode* node = nullptr;
};

class Value;
using ValueList = std::vector<Value>;

class Value {
 public:
  Value() = default;
  Value(Json j) : v_(std::move(j)) {}         // NOLINT: implicit by design
  Value(Hl7Ref r) : v_(r) {}                  // NOLINT
  Value(Hl7GroupPtr g) : v_(std::move(g)) {}  // NOLINT
  Value(XmlRef x) : v_(x) {}                  // NOLINT
  static Value list(ValueList items) {
    Value v;
    v.v_ = std::make_shared<const ValueList>(std::move(items));
    return v;
  }
  static Value string(std::string s) { return Value(Json::string(std::move(s))); }
  // JSON that outlives every Value of the mapping (a template literal, a table cell, $feed):
  // held by address, so that reading it copies no JSON (and touches no reference count).
  static Value borrowed(const Json& j) {
    Value v;
    v.v_ = &j;
    return v;
  }

  bool is_json() const { return std::holds_alternative<Json>(v_) || is_borrowed(); }
  bool is_borrowed() const { return std::holds_alternative<const Json*>(v_); }
  bool is_hl7() const { return std::holds_alternative<Hl7Ref>(v_); }
  bool is_group() const { return std::holds_alternative<Hl7GroupPtr>(v_); }
  bool is_xml() const { return std::holds_alternative<XmlRef>(v_); }
  bool is_list() const { return std::holds_alternative<std::shared_ptr<const ValueList>>(v_); }
  bool is_nothing() const { return is_json() && json().is_null(); }

  const Json& json() const {
    if (const Json* const* j = std::get_if<const Json*>(&v_)) return **j;
    return std::get<Json>(v_);
  }
  // The JSON, moved out when this value owns it (the value is left holding null JSON).
  Json take_json() {
    if (Json* j = std::get_if<Json>(&v_)) {
      Json out = std::move(*j);
      *j = Json();
      return out;
    }
    return json();
  }
  const Hl7Ref& hl7() const { return std::get<Hl7Ref>(v_); }
  const Hl7GroupPtr& group() const { return std::get<Hl7GroupPtr>(v_); }
  XmlRef xml() const { return std::get<XmlRef>(v_); }
  const ValueList& items() const { return *std::get<std::shared_ptr<const ValueList>>(v_); }

 private:
  std::variant<Json, Hl7Ref, Hl7GroupPtr, XmlRef, std::shared_ptr<const ValueList>, const Json*> v_;
};

}  // namespace adapter::mapping
