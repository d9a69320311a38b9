// Fuzz target for the XML entry point (adapter/xml): xml::parse, as the daemon calls it on a lab
// report (app/translate.cpp), then a short walk of the result with the XPath API the mapping
// templates use.
//
// The input is the document exactly as a lab would send it, so the XML fixtures are seeds as
// they are. Beyond "no crash, no UB, no hang", it checks what callers rely on:
//   - a refusal is an Errc::not_xml or Errc::xml_refused with a one-line, UTF-8 message, placed
//     at "XML ..."; a well-formedness, namespace or depth error names its line (and column); the
//     depth refusal is always ours, never libxml2's; an empty body is not_xml;
//   - the size and depth limits are exact: one byte or one level less and the document is refused;
//   - a parsed document holds no DTD and no entity (nothing was declared, so nothing expanded),
//     no unresolved namespace prefix, is recognised by looks_like_xml when it has a BOM,
//     is no deeper than the limit, and all its names and text are UTF-8, whatever the input's
//     encoding;
//   - XPath agrees with the tree: //*, //@* and //text() find every element, attribute and text
//     node, count(), local-name() and namespace-uri() agree, and namespace nodes are never handed
//     out (libxml2 frees them with the node-set);
//   - node_path() gives "/root/..." for every node found, one step per level, ending in "@name"
//     for an attribute and "text()" for text;
//   - bad XPath (a syntax error, an unregistered prefix) is an error value, never a crash.
// Every bug it finds gets a reproducer in fixtures/fuzz/xml_parse/regress-*.
#include <libxml/tree.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/utf8.h"
#include "fuzz_check.h"
#include "xml/document.h"
#include "xml/xpath.h"

namespace {

namespace xml = adapter::xml;
using adapter::Errc;

// node_path() is linear in depth times siblings: checked on this many nodes of each result, so
// a wide document cannot make one input quadratic.
constexpr std::size_t kPathChecks = 256;

std::string_view text_of(const xmlChar* s) {
  return s != nullptr ? std::string_view(reinterpret_cast<const char*>(s)) : std::string_view();
}

bool valid_utf8(const xmlChar* s) {
  return adapter::find_invalid_utf8(text_of(s)) == std::string_view::npos;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// What the tree holds, counted without XPath (iteratively: recursion is what deep documents
// attack).
struct Census {
  std::size_t elements = 0;
  std::size_t attributes = 0;
  std::size_t texts = 0;  // text and CDATA nodes inside elements
  int depth = 0;          // deepest element nesting, the root being 1
  const xmlNode* deepest = nullptr;
};

Census take_census(const xmlDoc* doc) {
  Census c;
  // Top level: only the root element, comments and processing instructions; no DTD.
  for (const xmlNode* n = doc->children; n != nullptr; n = n->next) {
    FUZZ_CHECK(n->type == XML_ELEMENT_NODE || n->type == XML_COMMENT_NODE ||
               n->type == XML_PI_NODE);
  }
  std::vector<std::pair<const xmlNode*, int>> pending{{xmlDocGetRootElement(doc), 1}};
  while (!pending.empty()) {
    const auto [node, depth] = pending.back();
    pending.pop_back();
    ++c.elements;
    if (depth > c.depth) {
      c.depth = depth;
      c.deepest = node;
    }
    FUZZ_CHECK(valid_utf8(node->name));
    // Namespaces resolved: a name keeps its prefix (u:report) only when it was undeclared.
    FUZZ_CHECK(text_of(node->name).find(':') == std::string_view::npos);
    if (node->ns != nullptr) FUZZ_CHECK(valid_utf8(node->ns->href));
    for (const xmlAttr* a = node->properties; a != nullptr; a = a->next) {
      ++c.attributes;
      FUZZ_CHECK(valid_utf8(a->name));
      FUZZ_CHECK(text_of(a->name).find(':') == std::string_view::npos);
      for (const xmlNode* v = a->children; v != nullptr; v = v->next) {
        // An attribute value is plain text: an entity reference here would be an expansion.
        FUZZ_CHECK(v->type == XML_TEXT_NODE);
        FUZZ_CHECK(valid_utf8(v->content));
      }
    }
    for (const xmlNode* child = node->children; child != nullptr; child = child->next) {
      switch (child->type) {
        case XML_ELEMENT_NODE:
          pending.emplace_back(child, depth + 1);
          break;
        case XML_TEXT_NODE:
        case XML_CDATA_SECTION_NODE:
          ++c.texts;
          FUZZ_CHECK(valid_utf8(child->content));
          break;
        case XML_COMMENT_NODE:
        case XML_PI_NODE:
          break;
        default:
          // Entity references, entity declarations, DTD nodes: none can exist when every
          // DOCTYPE is refused and nothing is substituted.
          std::fprintf(stderr, "unexpected node type %d under an element\n", child->type);
          FUZZ_CHECK(false);
      }
    }
  }
  return c;
}

// node_path of a node found by XPath: "/<root>/...", as many steps as the node is deep.
void check_path(const xmlNode* node, const std::string& root_step) {
  const std::string path = xml::node_path(node);
  FUZZ_CHECK(starts_with(path, "/"));
  FUZZ_CHECK(path == root_step || starts_with(path, root_step + "/") ||
             starts_with(path, root_step + "["));
  std::size_t steps = 0;
  for (const xmlNode* n = node; n != nullptr && n->type != XML_DOCUMENT_NODE; n = n->parent) {
    ++steps;
  }
  // Element names cannot contain '/', but text() and @name steps are counted the same way.
  std::size_t slashes = 0;
  for (char ch : path) slashes += ch == '/' ? 1 : 0;
  FUZZ_CHECK(slashes == steps);
  if (node->type == XML_ATTRIBUTE_NODE) {
    FUZZ_CHECK(ends_with(path, "/@" + std::string(text_of(node->name))));
  } else if (node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) {
    FUZZ_CHECK(ends_with(path, "/text()"));
  }
}

xml::XPathValue evaluate(xml::XPath& xp, const std::string& expression, xmlNode* context,
                         xml::XPathValue::Kind kind) {
  auto value = xp.evaluate(expression, context);
  if (!value) {
    std::fprintf(stderr, "%s: %s\n", expression.c_str(), value.error().to_string().c_str());
    FUZZ_CHECK(value.ok());
    return {};
  }
  FUZZ_CHECK(value->kind == kind);
  return std::move(*value);
}

void check_nodes(const xml::XPathValue& value, std::size_t expected, xmlElementType type,
                 const std::string& root_step) {
  FUZZ_CHECK(value.nodes.size() == expected);
  for (std::size_t i = 0; i < value.nodes.size(); ++i) {
    const xmlNode* n = value.nodes[i];
    const bool text = n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE;
    FUZZ_CHECK(type == XML_TEXT_NODE ? text : n->type == type);
    if (i < kPathChecks) check_path(n, root_step);
  }
}

void check_xpath(const xml::Document& doc, const Census& census) {
  xmlNode* root = doc.root();
  const std::string root_step = "/" + doc.root_name();
  FUZZ_CHECK(xml::node_path(root) == root_step);

  xml::XPath xp(doc.get());
  const std::string root_ns = doc.root_namespace();
  if (!root_ns.empty()) xp.register_namespace("r", root_ns);
  // The prefixes the FoundationOne templates register.
  xp.register_namespace("rr", "http://integration.foundationmedicine.com/reporting");
  xp.register_namespace("vr", "http://foundationmedicine.com/compbio/variant-report-external");

  using Kind = xml::XPathValue::Kind;
  check_nodes(evaluate(xp, "//*", nullptr, Kind::nodes), census.elements, XML_ELEMENT_NODE,
              root_step);
  check_nodes(evaluate(xp, "//@*", nullptr, Kind::nodes), census.attributes, XML_ATTRIBUTE_NODE,
              root_step);
  check_nodes(evaluate(xp, "//text()", nullptr, Kind::nodes), census.texts, XML_TEXT_NODE,
              root_step);
  // Compiled once, cached, evaluated again: the same answer.
  FUZZ_CHECK(evaluate(xp, "//*", nullptr, Kind::nodes).nodes.size() == census.elements);
  FUZZ_CHECK(evaluate(xp, "count(//*)", nullptr, Kind::number).number ==
             static_cast<double>(census.elements));
  FUZZ_CHECK(evaluate(xp, "local-name(/*)", nullptr, Kind::text).text == doc.root_name());
  FUZZ_CHECK(evaluate(xp, "namespace-uri(/*)", nullptr, Kind::text).text == root_ns);
  FUZZ_CHECK(evaluate(xp, "boolean(//@*)", nullptr, Kind::boolean).boolean ==
             (census.attributes > 0));
  // Namespace nodes are libxml2's temporary copies: never handed out, never read after free.
  FUZZ_CHECK(evaluate(xp, "//namespace::*", nullptr, Kind::nodes).nodes.empty());
  const std::string text = evaluate(xp, "string(/*)", nullptr, Kind::text).text;
  FUZZ_CHECK(adapter::find_invalid_utf8(text) == std::string_view::npos);
  evaluate(xp, "normalize-space(//*[@*][1]/@*[1])", nullptr, Kind::text);
  evaluate(xp, "//vr:short-variant[@gene]/@allele-fraction|//rr:*[1]", nullptr, Kind::nodes);
  if (!root_ns.empty()) {
    // The root is in its own namespace, so at least it matches.
    FUZZ_CHECK(!evaluate(xp, "//r:*", nullptr, Kind::nodes).nodes.empty());
  }

  // Relative to a context node: its ancestors and itself are exactly as deep as it is.
  auto* deepest = const_cast<xmlNode*>(census.deepest);
  const auto line = evaluate(xp, "ancestor-or-self::*", deepest, Kind::nodes);
  FUZZ_CHECK(line.nodes.size() == static_cast<std::size_t>(census.depth));
  if (!line.nodes.empty()) FUZZ_CHECK(line.nodes.front() == root && line.nodes.back() == deepest);
  evaluate(xp, "../*|preceding::node()|following-sibling::*", deepest, Kind::nodes);

  // Mistakes in a template are errors, not crashes.
  for (const char* bad : {"//*[", "//nope:x", "count(", "//@*[position()=", "$undefined"}) {
    auto r = xp.evaluate(bad, nullptr);
    FUZZ_CHECK(!r.ok());
    if (!r) {
      FUZZ_CHECK(!r.error().message.empty());
      FUZZ_CHECK(r.error().where.find(bad) != std::string::npos);
    }
  }
}

void check_refusal(const adapter::Error& e, std::string_view input) {
  FUZZ_CHECK(e.code == Errc::not_xml || e.code == Errc::xml_refused);
  FUZZ_CHECK(!e.message.empty());
  FUZZ_CHECK(starts_with(e.where, "XML"));
  // One line, valid UTF-8: messages go into HL7 ERR-8, OperationOutcomes and sidecar files.
  FUZZ_CHECK(e.message.find_first_of("\r\n\t") == std::string::npos);
  FUZZ_CHECK(e.where.find_first_of("\r\n\t") == std::string::npos);
  FUZZ_CHECK(adapter::find_invalid_utf8(e.message) == std::string_view::npos);
  if (input.empty()) FUZZ_CHECK(e.code == Errc::not_xml && e.message == "empty document");
  // A well-formedness, namespace or depth error says where it is: "XML line 3, column 7"
  // (column when known); namespace and depth errors also name the element's path.
  if (starts_with(e.message, "not well-formed: ") || starts_with(e.message, "namespace error") ||
      starts_with(e.message, "elements are nested deeper than ")) {
    FUZZ_CHECK(starts_with(e.where, "XML line "));
    FUZZ_CHECK(!starts_with(e.where, "XML line 0"));
  }
  if (starts_with(e.message, "elements are nested deeper than ")) {
    FUZZ_CHECK(e.code == Errc::xml_refused);
    FUZZ_CHECK(e.message.find(" levels at /") != std::string::npos);
  }
  // The adapter's depth limit fires before libxml2's own ("Excessive depth in document: 256
  // use XML_PARSE_HUGE option"), so that message never reaches a sender.
  FUZZ_CHECK(!starts_with(e.message, "not well-formed: Excessive depth"));
  // A DOCTYPE is refused as a refused feature (a malformed one may fail earlier, as not_xml).
  if (starts_with(e.message, "a DOCTYPE declaration is not accepted")) {
    FUZZ_CHECK(e.code == Errc::xml_refused);
  }
}

void check_document(const xml::Document& doc, std::string_view input) {
  FUZZ_CHECK(doc.get() != nullptr);
  const xmlNode* root = doc.root();
  FUZZ_CHECK(root != nullptr && root->type == XML_ELEMENT_NODE);
  FUZZ_CHECK(doc.root_name() == text_of(root->name));
  FUZZ_CHECK(!doc.root_name().empty());
  FUZZ_CHECK(doc.get()->intSubset == nullptr && doc.get()->extSubset == nullptr);

  const Census census = take_census(doc.get());
  const xml::Limits defaults;
  FUZZ_CHECK(census.depth >= 1 && census.depth <= defaults.max_depth);
  check_xpath(doc, census);

  // The limits are exact: one level or one byte less and the same document is refused.
  xml::Limits shallower;
  shallower.max_depth = census.depth - 1;
  auto refused = xml::parse(input, shallower);
  FUZZ_CHECK(!refused.ok());
  if (!refused) {
    FUZZ_CHECK(refused.error().code == Errc::xml_refused);
    check_refusal(refused.error(), input);
  }
  xml::Limits smaller;
  smaller.max_bytes = input.size() - 1;  // a document is never empty
  auto too_big = xml::parse(input, smaller);
  FUZZ_CHECK(!too_big.ok());
  if (!too_big) FUZZ_CHECK(too_big.error().code == Errc::xml_refused);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  xml::looks_like_xml(input);
  auto doc = xml::parse(input);
  if (doc) {
    // What parses behind a byte-order mark is recognised as XML, UTF-16 included.
    if (starts_with(input, "\xFF\xFE") || starts_with(input, "\xFE\xFF") ||
        starts_with(input, "\xEF\xBB\xBF")) {
      FUZZ_CHECK(xml::looks_like_xml(input));
    }
    check_document(*doc, input);
  } else {
    check_refusal(doc.error(), input);
  }
  return 0;
}
