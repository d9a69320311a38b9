// What expressions evaluate to: plain JSON data, or a place in the source message (an HL7 v2
// field or a group of segments, an XML node), or a list of those. Source places stay places
// until output needs text, so a template can hand a CWE field to a partial that reads its
// components, and every value read can be traced back to its HL7 path (errors, unmapped report).
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <variant>  // std::bad_variant_access
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
  Value() noexcept : json_() {}
  Value(Json j) noexcept : json_(std::move(j)) {}        // NOLINT: implicit by design
  Value(Hl7Ref r) noexcept : tag_(Tag::hl7), hl7_(r) {}  // NOLINT
  Value(Hl7GroupPtr g) noexcept : tag_(Tag::group), group_(std::move(g)) {}  // NOLINT
  Value(XmlRef x) noexcept : tag_(Tag::xml), xml_(x) {}                      // NOLINT
  static Value list(ValueList items) {
    Value v;
    v.json_.~Json();
    v.tag_ = Tag::list;
    new (&v.list_)
        std::shared_ptr<const ValueList>(std::make_shared<const ValueList>(std::move(items)));
    return v;
  }
  static Value string(std::string_view s) { return Value(Json::string(s)); }
  // JSON that outlives every Value of the mapping (a template literal, a table cell, $feed):
  // held by address, so that reading it copies no JSON (and touches no reference count).
  static Value borrowed(const Json& j) {
    Value v;
    v.json_.~Json();
    v.tag_ = Tag::borrowed;
    v.borrowed_ = &j;
    return v;
  }

  // A tagged union rather than std::variant: values are copied, moved and dropped on every
  // evaluation, and these switches inline where variant's visits were calls through a table.
  Value(const Value& o) noexcept : tag_(o.tag_) { copy_from(o); }
  Value(Value&& o) noexcept : tag_(o.tag_) { move_from(std::move(o)); }
  Value& operator=(const Value& o) noexcept {
    if (this != &o) {
      destroy();
      tag_ = o.tag_;
      copy_from(o);
    }
    return *this;
  }
  Value& operator=(Value&& o) noexcept {
    if (this != &o) {
      destroy();
      tag_ = o.tag_;
      move_from(std::move(o));
    }
    return *this;
  }
  ~Value() { destroy(); }

  bool is_json() const { return tag_ == Tag::json || tag_ == Tag::borrowed; }
  bool is_borrowed() const { return tag_ == Tag::borrowed; }
  bool is_hl7() const { return tag_ == Tag::hl7; }
  bool is_group() const { return tag_ == Tag::group; }
  bool is_xml() const { return tag_ == Tag::xml; }
  bool is_list() const { return tag_ == Tag::list; }
  bool is_nothing() const { return is_json() && json().is_null(); }

  // Each throws std::bad_variant_access for a value of another kind.
  const Json& json() const {
    if (tag_ == Tag::borrowed) return *borrowed_;
    expect(Tag::json);
    return json_;
  }
  // The JSON, moved out when this value owns it (the value is left holding null JSON).
  Json take_json() {
    if (tag_ == Tag::json) return std::move(json_);
    return json();
  }
  const Hl7Ref& hl7() const { return expect(Tag::hl7), hl7_; }
  const Hl7GroupPtr& group() const { return expect(Tag::group), group_; }
  XmlRef xml() const { return expect(Tag::xml), xml_; }
  const ValueList& items() const { return expect(Tag::list), *list_; }

 private:
  enum class Tag : std::uint8_t { json, hl7, group, xml, list, borrowed };
  void expect(Tag t) const {
    if (tag_ != t) throw std::bad_variant_access();
  }
  [[gnu::always_inline]] void copy_from(const Value& o) noexcept {
    switch (tag_) {
      case Tag::json:
        new (&json_) Json(o.json_);
        break;
      case Tag::hl7:
        hl7_ = o.hl7_;
        break;
      case Tag::group:
        new (&group_) Hl7GroupPtr(o.group_);
        break;
      case Tag::xml:
        xml_ = o.xml_;
        break;
      case Tag::list:
        new (&list_) std::shared_ptr<const ValueList>(o.list_);
        break;
      case Tag::borrowed:
        borrowed_ = o.borrowed_;
        break;
    }
  }
  [[gnu::always_inline]] void move_from(Value&& o) noexcept {
    switch (tag_) {
      case Tag::json:
        new (&json_) Json(std::move(o.json_));
        break;
      case Tag::hl7:
        hl7_ = o.hl7_;
        break;
      case Tag::group:
        new (&group_) Hl7GroupPtr(std::move(o.group_));
        break;
      case Tag::xml:
        xml_ = o.xml_;
        break;
      case Tag::list:
        new (&list_) std::shared_ptr<const ValueList>(std::move(o.list_));
        break;
      case Tag::borrowed:
        borrowed_ = o.borrowed_;
        break;
    }
  }
  [[gnu::always_inline]] void destroy() noexcept {
    switch (tag_) {
      case Tag::json:
        json_.~Json();
        break;
      case Tag::group:
        group_.~Hl7GroupPtr();
        break;
      case Tag::list:
        list_.~shared_ptr();
        break;
      default:
        break;
    }
  }

  Tag tag_ = Tag::json;
  union {
    Json json_;
    Hl7Ref hl7_;
    Hl7GroupPtr group_;
    XmlRef xml_;
    std::shared_ptr<const ValueList> list_;
    const Json* borrowed_;
  };
};

}  // namespace adapter::mapping
