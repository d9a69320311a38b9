#include "mapping/document_id.h"

#include <libxml/tree.h>

#include <cmath>

#include "xml/xpath.h"

namespace adapter::mapping {

namespace {

std::string trimmed(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string content_of(const xmlNode* node) {
  xmlChar* content = xmlNodeGetContent(node);
  if (content == nullptr) return {};
  std::string out(reinterpret_cast<const char*>(content));
  xmlFree(content);
  return out;
}

}  // namespace

Result<std::string> document_identifier(const Template& tmpl, const xml::Document& document) {
  if (tmpl.document_id.empty()) return std::string();
  xml::XPath xpath(document.get());
  for (const auto& [prefix, uri] : tmpl.namespaces) xpath.register_namespace(prefix, uri);
  auto value = xpath.evaluate(tmpl.document_id, nullptr);
  if (!value) {
    return make_error(Errc::internal,
                      "$document_id of " + tmpl.file + ": " + value.error().message);
  }
  std::string id;
  switch (value->kind) {
    case xml::XPathValue::Kind::nodes:
      if (!value->nodes.empty()) id = trimmed(content_of(value->nodes.front()));
      break;
    case xml::XPathValue::Kind::text:
      id = trimmed(value->text);
      break;
    case xml::XPathValue::Kind::number:
      if (std::isfinite(value->number)) id = std::to_string(static_cast<long long>(value->number));
      break;
    case xml::XPathValue::Kind::boolean:
      break;
  }
  if (id.empty()) {
    return make_error(Errc::not_xml, "the document has no identifier where its template (" +
                                         tmpl.file + ") expects one: " + tmpl.document_id);
  }
  if (id.size() > kMaxDocumentIdBytes) {
    return make_error(Errc::not_xml, "the document identifier is longer than " +
                                         std::to_string(kMaxDocumentIdBytes) + " bytes");
  }
  return id;
}

}  // namespace adapter::mapping
