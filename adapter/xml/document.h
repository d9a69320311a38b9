// Hardened XML parsing (libxml2) for lab-vendor reports.
//
//   auto doc = xml::parse(bytes, limits);  // Result<xml::Document>
//   if (!doc) return reject(doc.error());  // "XML line 3, column 7: ..." / "DOCTYPE ... refused"
//   doc->root_name(); doc->root_namespace();
//
// What is refused, and why: vendor reports never need a DTD, and a DTD is where XML's attacks
// live (external entities read files or URLs: XXE; nested internal entities expand to gigabytes:
// "billion laughs"). So any DOCTYPE is refused outright, the parser never touches the network
// (XML_PARSE_NONET), never loads or validates against a DTD and never substitutes entities.
// Size and element depth are bounded. Namespace errors (an undeclared prefix, a misused xmlns),
// which libxml2 only warns about, are refused. UTF-8 and, with a byte-order mark, UTF-16 are
// read, as is any encoding an XML declaration names that libxml2 knows; the tree is UTF-8.
// Errors are values carrying the line and column (and the element's path where it helps), on
// one line.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

struct _xmlDoc;   // NOLINT(bugprone-reserved-identifier): libxml2's own name for xmlDoc
struct _xmlNode;  // NOLINT(bugprone-reserved-identifier): libxml2's own name for xmlNode

namespace adapter::xml {

struct Limits {
  // Bytes of input as received, whatever the encoding (UTF-16 takes about twice UTF-8's).
  std::size_t max_bytes = 16 * 1024 * 1024;
  // Element nesting; vendor reports stay under 20. Capped at libxml2's own limit (256), which
  // only XML_PARSE_HUGE (off: it lifts libxml2's other caps too) would raise.
  int max_depth = 128;
};

// A parsed document (move-only; frees the libxml2 tree).
class Document {
 public:
  Document() = default;
  _xmlDoc* get() const { return doc_.get(); }
  _xmlNode* root() const;
  std::string root_name() const;       // local name of the root element
  std::string root_namespace() const;  // its namespace URI, or empty

 private:
  friend Result<Document> parse(std::string_view bytes, const Limits& limits);
  struct Free {
    void operator()(_xmlDoc* d) const;
  };
  std::unique_ptr<_xmlDoc, Free> doc_;
};

Result<Document> parse(std::string_view bytes, const Limits& limits = {});

// True when the bytes look like XML rather than HL7 v2: the first non-blank character is '<',
// after an optional UTF-8 byte-order mark, or in UTF-16 after its byte-order mark (FF FE, FE FF).
bool looks_like_xml(std::string_view bytes);

}  // namespace adapter::xml
