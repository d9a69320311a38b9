// The template interpreter (internal to mapping/): renders template nodes and evaluates
// expressions against one source message. One Evaluator per mapping; not thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "hl7v2/message.h"
#include "hl7v2/oru_r01.h"
#include "mapping/engine.h"
#include "mapping/template.h"
#include "mapping/value.h"
#include "xml/document.h"
#include "xml/xpath.h"

namespace adapter::mapping {

// OBX-4 sub-ID to the variant/region group it belongs to: "2a" -> "2a", "1a.a" -> "1a",
// "1.a" -> "1a", "1" -> "1".
std::string subid_group_key(std::string_view sub_id);

class Evaluator {
 public:
  // Exactly one of `message` (HL7 v2) and `document` (XML) is the source.
  Evaluator(const TemplateSet& set, const Template& tmpl, const hl7v2::Message* message,
            const xml::Document* document, const MappingSettings& settings, MappingResult& result);

  Json render(const TNode& node);
  Value eval(const Expr& e);

  // Conversions used by functions. Reading an HL7 value's text marks it as mapped.
  std::optional<std::string> text(const Value& v);
  Json to_json(const Value& v);
  std::vector<Value> to_list(const Value& v);
  bool truthy(const Value& v);

  void issue(Issue::Severity severity, std::string message, const SourcePos& pos,
             const Value* at = nullptr);
  std::string source_path(const Value& v) const;  // "OBX[4]-5.1" for HL7 places

  const TemplateSet& set() const { return set_; }
  const MappingSettings& settings() const { return settings_; }
  const hl7v2::Message* message() const { return message_; }

  // HL7 structure, relative to the current context.
  std::vector<Value> groups(std::string_view kind);  // ORU^R01 groups inside the context
  std::vector<Value> subid_groups();                 // OBX by OBX-4 sub-ID group
  std::vector<Value> segments(std::string_view id);  // segments in the innermost group having them
  std::vector<Value> notes();  // NTE of the innermost OBSERVATION, ORDER_OBSERVATION or PATIENT
  Value render_partial(const std::string& name, std::vector<Value> args, const SourcePos& pos);

  // XML places (xml_source.cpp). Reading a node's text marks it (and what it contains) mapped.
  std::optional<std::string> xml_text(XmlRef node);
  Value xml_member(XmlRef node, const std::string& name);  // attribute, else first child element
  // XPath relative to `context` (or the innermost XML node of the template's context).
  Value xpath(const std::string& expression, const Value* context, const SourcePos& pos);

  // Marks everything of a place (or a group's segments) as deliberately handled.
  void consume(const Value& v);
  std::vector<std::string> unmapped_report();

  // XML, in xml_source.cpp: the innermost XML node in scope, and the unmapped report's XML half.
  _xmlNode* xml_context() const;
  void consume_xml(const _xmlNode* node);
  std::vector<std::string> xml_unmapped_report();

 private:
  struct Scope {
    Hl7GroupPtr group;          // a group, or
    std::int64_t segment = -1;  // one segment, or
    _xmlNode* xml = nullptr;    // an XML node
  };
  struct Var {
    std::string name;
    Value value;
  };
  class VarGuard;
  class ScopeGuard;

  Json render_object(const TNode& node, bool each_element = false);
  Json render_array(const TNode& node);
  Json render_text(const TNode& node);
  Value eval_path(const Expr& e);
  Value member(const Value& base, const std::string& name, const Expr& e);
  const Value* lookup_var(std::string_view name) const;
  bool in_scope_push(const Value& v);  // pushes a scope when v is a group/segment; false otherwise
  std::vector<std::uint32_t> candidates(const char id[3], const Scope* base) const;
  const hl7v2::OruR01& oru();
  std::vector<int> parent_orders(const std::vector<hl7v2::OruOrder>& orders);
  std::string hl7_text(const Hl7Ref& r);

  const TemplateSet& set_;
  const Template& template_;
  const hl7v2::Message* message_;
  const xml::Document* document_;
  std::unique_ptr<xml::XPath> xpath_;  // created on first use, with the template's namespaces
  std::unordered_set<const void*> xml_consumed_;
  const MappingSettings& settings_;
  MappingResult& result_;
  std::vector<Var> vars_;
  std::vector<Scope> scopes_;
  std::optional<hl7v2::OruR01> oru_;
  std::vector<std::uint64_t> consumed_;  // keys of what was read (sorted for the report)
  int depth_ = 0;
};

}  // namespace adapter::mapping
