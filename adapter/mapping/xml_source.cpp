// XML places for templates (libxml2): text and attributes of nodes.
#include <libxml/tree.h>

#include "mapping/evaluator.h"

namespace adapter::mapping {

std::optional<std::string> Evaluator::xml_text(XmlRef node) const {
  if (node.node == nullptr) return std::nullopt;
  xmlChar* content = xmlNodeGetContent(node.node);
  if (content == nullptr) return std::nullopt;
  std::string out(reinterpret_cast<const char*>(content));
  xmlFree(content);
  // Surrounding layout whitespace is not data.
  const auto b = out.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return std::nullopt;
  const auto e = out.find_last_not_of(" \t\r\n");
  return out.substr(b, e - b + 1);
}

Value Evaluator::xml_attribute(XmlRef node, const std::string& name) const {
  if (node.node == nullptr || node.node->type != XML_ELEMENT_NODE) return Value();
  xmlChar* v = xmlGetProp(node.node, reinterpret_cast<const xmlChar*>(name.c_str()));
  if (v == nullptr) return Value();
  std::string s(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return s.empty() ? Value() : Value::string(std::move(s));
}

}  // namespace adapter::mapping
