// XML as a mapping source (libxml2): node text and members, XPath with the template's
// namespaces, and the XML half of the unmapped report.
#include <libxml/tree.h>

#include <cmath>

#include "mapping/evaluator.h"

namespace adapter::mapping {

namespace {

std::optional<std::string> trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return std::nullopt;
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string content_of(const xmlNode* node) {
  xmlChar* content = xmlNodeGetContent(node);
  if (content == nullptr) return {};
  std::string out(reinterpret_cast<const char*>(content));
  xmlFree(content);
  return out;
}

// The unmapped report shows what was left, not whole paragraphs of it.
std::string shortened(const std::string& s) {
  std::string one_line;
  for (char c : s) one_line.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  if (one_line.size() <= 80) return one_line;
  std::size_t cut = 77;
  while (cut > 0 && (static_cast<unsigned char>(one_line[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  return one_line.substr(0, cut) + "...";
}

}  // namespace

std::optional<std::string> Evaluator::xml_text(XmlRef node) {
  if (node.node == nullptr) return std::nullopt;
  consume_xml(node.node);
  // Surrounding layout whitespace is not data.
  return trimmed(content_of(node.node));
}

Value Evaluator::xml_member(XmlRef node, const std::string& name) {
  if (node.node == nullptr || node.node->type != XML_ELEMENT_NODE) return Value();
  const auto* n = reinterpret_cast<const xmlChar*>(name.c_str());
  if (xmlAttrPtr attr = xmlHasProp(node.node, n)) {
    return Value(XmlRef{reinterpret_cast<xmlNode*>(attr)});
  }
  for (xmlNode* c = node.node->children; c != nullptr; c = c->next) {
    if (c->type == XML_ELEMENT_NODE && xmlStrEqual(c->name, n)) return Value(XmlRef{c});
  }
  return Value();
}

_xmlNode* Evaluator::xml_context() const {
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
    if (it->xml != nullptr) return it->xml;
  }
  return nullptr;
}

Value Evaluator::xpath(const std::string& expression, const Value* context, const SourcePos& pos) {
  if (document_ == nullptr) {
    issue(Issue::Severity::error, "xpath() needs an XML source; this message is HL7 v2", pos);
    return Value();
  }
  xmlNode* node = xml_context();
  if (context != nullptr) {
    const Value& c =
        context->is_list() && context->items().size() == 1 ? context->items()[0] : *context;
    if (!c.is_xml()) return Value();  // a path inside nothing is nothing
    node = c.xml().node;
  }
  if (!xpath_) {
    xpath_ = std::make_unique<xml::XPath>(document_->get());
    for (const auto& [prefix, uri] : template_.namespaces) xpath_->register_namespace(prefix, uri);
  }
  auto result = xpath_->evaluate(expression, node);
  if (!result) {
    issue(Issue::Severity::error, result.error().to_string(), pos);
    return Value();
  }
  switch (result->kind) {
    case xml::XPathValue::Kind::nodes: {
      if (result->nodes.size() == 1) return Value(XmlRef{result->nodes[0]});
      ValueList list;
      list.reserve(result->nodes.size());
      for (xmlNode* n : result->nodes) list.emplace_back(XmlRef{n});
      return Value::list(std::move(list));
    }
    case xml::XPathValue::Kind::text:
      return result->text.empty() ? Value() : Value::string(std::move(result->text));
    case xml::XPathValue::Kind::number:
      return std::isfinite(result->number) ? Value(Json::number(result->number)) : Value();
    case xml::XPathValue::Kind::boolean:
      return Value(Json::boolean(result->boolean));
  }
  return Value();
}

void Evaluator::consume_xml(const _xmlNode* node) {
  if (node != nullptr) xml_consumed_.insert(node);
}

std::vector<std::string> Evaluator::xml_unmapped_report() {
  std::vector<std::string> out;
  if (document_ == nullptr || document_->root() == nullptr) return out;
  // $ignore entries that are XPaths ("//rcomment", "/report/version") mark what they select.
  for (const std::string& spec : template_.ignore) {
    if (spec.empty() || spec[0] != '/') continue;
    const Value selected =
        xpath(spec, nullptr, SourcePos{std::make_shared<const std::string>(template_.file), 0, 0});
    consume(selected);
  }
  // Depth-first, in document order; a consumed node covers everything inside it.
  struct Pending {
    const xmlNode* node;
    bool covered;
  };
  std::vector<Pending> pending{{document_->root(), false}};
  while (!pending.empty()) {
    const Pending p = pending.back();
    pending.pop_back();
    const bool covered = p.covered || xml_consumed_.count(p.node) > 0;
    if (covered) continue;
    for (const xmlAttr* a = p.node->properties; a != nullptr; a = a->next) {
      if (xml_consumed_.count(a) > 0) continue;
      const auto value = trimmed(content_of(reinterpret_cast<const xmlNode*>(a)));
      if (!value) continue;
      // Namespace declarations are not attributes in libxml2; xsi:* plumbing is not data.
      if (a->ns != nullptr &&
          xmlStrEqual(a->ns->href, reinterpret_cast<const xmlChar*>(
                                       "http://www.w3.org/2001/XMLSchema-instance"))) {
        continue;
      }
      out.push_back(xml::node_path(reinterpret_cast<const xmlNode*>(a)) + " = " +
                    shortened(*value));
    }
    std::string text;
    std::vector<Pending> children;
    for (const xmlNode* c = p.node->children; c != nullptr; c = c->next) {
      if (c->type == XML_ELEMENT_NODE) {
        children.push_back({c, false});
      } else if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) &&
                 xml_consumed_.count(c) == 0 && c->content != nullptr) {
        text += reinterpret_cast<const char*>(c->content);
      }
    }
    if (auto value = trimmed(text))
      out.push_back(xml::node_path(p.node) + " = " + shortened(*value));
    for (auto it = children.rbegin(); it != children.rend(); ++it) pending.push_back(*it);
  }
  return out;
}

}  // namespace adapter::mapping
