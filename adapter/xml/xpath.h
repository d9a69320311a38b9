// XPath 1.0 over a parsed Document (libxml2), for templates that map XML reports.
//
//   xml::XPath xp(doc.get());
//   xp.register_namespace("fmi", "http://foundationmedicine.com/compbio/variant-report-external");
//   auto r = xp.evaluate("fmi:variant-report/fmi:short-variants/fmi:short-variant", context_node);
//
// Expressions are compiled once per XPath object and cached. Errors (syntax, an unknown prefix)
// are values with libxml2's reason, never printed to stderr.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "xml/document.h"

namespace adapter::xml {

struct XPathValue {
  enum class Kind { nodes, text, number, boolean };
  Kind kind = Kind::nodes;
  std::vector<_xmlNode*> nodes;  // elements, attributes or text nodes, in document order
  std::string text;
  double number = 0;
  bool boolean = false;
};

// "" when `expression` is valid XPath 1.0 syntax, otherwise libxml2's reason. Used when templates
// load, so a typo is reported at its file:line:column before any message arrives.
std::string check_xpath(std::string_view expression);

class XPath {
 public:
  explicit XPath(_xmlDoc* doc);
  ~XPath();
  XPath(const XPath&) = delete;
  XPath& operator=(const XPath&) = delete;

  void register_namespace(const std::string& prefix, const std::string& uri);
  // Evaluates relative to `context` (the document's root element when null).
  Result<XPathValue> evaluate(const std::string& expression, _xmlNode* context);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A readable location for issues and the unmapped report: /report/variant[2]/gene,
// /report/variant[2]/classification/@value. Positions appear only where siblings share a name;
// namespaces are left out (local names), since these paths are for people, not for evaluation.
std::string node_path(const _xmlNode* node);

}  // namespace adapter::xml
