#include "xml/document.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>

#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

namespace adapter::xml {

namespace {

// What the SAX hooks learn while libxml2 parses (kept in the context's _private slot).
struct ParseState {
  bool refused_doctype = false;
  int refused_line = 0;
  std::string first_error;
  int error_line = 0;
  int error_column = 0;
};

ParseState& state_of(void* ctx) {
  auto* ctxt = static_cast<xmlParserCtxtPtr>(ctx);
  return *static_cast<ParseState*>(ctxt->_private);
}

// Any DOCTYPE stops the parse: the internal subset is where entity declarations (XXE, billion
// laughs) live, and an external subset is a URL or file the parser would otherwise resolve.
void on_doctype(void* ctx, const xmlChar* /*name*/, const xmlChar* /*external_id*/,
                const xmlChar* /*system_id*/) {
  auto* ctxt = static_cast<xmlParserCtxtPtr>(ctx);
  ParseState& s = state_of(ctx);
  s.refused_doctype = true;
  s.refused_line = ctxt->input != nullptr ? ctxt->input->line : 0;
  xmlStopParser(ctxt);
}

void on_entity_declaration(void* ctx, const xmlChar* /*name*/, int /*type*/,
                           const xmlChar* /*public_id*/, const xmlChar* /*system_id*/,
                           xmlChar* /*content*/) {
  on_doctype(ctx, nullptr, nullptr, nullptr);
}

// Structured errors instead of libxml2's default of printing to stderr: the first one is kept
// (later ones are usually consequences), and nothing of the document reaches a log.
void on_error(void* ctx, xmlErrorPtr error) {
  ParseState& s = state_of(ctx);
  if (!s.first_error.empty() || error == nullptr || error->level < XML_ERR_ERROR) return;
  std::string message = error->message != nullptr ? error->message : "unknown XML error";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  s.first_error = std::move(message);
  s.error_line = error->line;
  s.error_column = error->int2;
}

// Deepest element nesting under `root`. Iterative: recursion is what a deeply nested document
// would attack.
int depth_of(const xmlNode* root) {
  int deepest = 0;
  std::vector<std::pair<const xmlNode*, int>> pending{{root, 1}};
  while (!pending.empty()) {
    const auto [node, depth] = pending.back();
    pending.pop_back();
    deepest = std::max(deepest, depth);
    for (const xmlNode* c = node->children; c != nullptr; c = c->next) {
      if (c->type == XML_ELEMENT_NODE) pending.emplace_back(c, depth + 1);
    }
  }
  return deepest;
}

std::string position(int line, int column) {
  std::string s = "XML line " + std::to_string(line);
  if (column > 0) s += ", column " + std::to_string(column);
  return s;
}

}  // namespace

void Document::Free::operator()(_xmlDoc* d) const {
  xmlFreeDoc(d);
}

_xmlNode* Document::root() const {
  return doc_ ? xmlDocGetRootElement(doc_.get()) : nullptr;
}

std::string Document::root_name() const {
  const xmlNode* r = root();
  return r != nullptr ? reinterpret_cast<const char*>(r->name) : "";
}

std::string Document::root_namespace() const {
  const xmlNode* r = root();
  if (r == nullptr || r->ns == nullptr || r->ns->href == nullptr) return {};
  return reinterpret_cast<const char*>(r->ns->href);
}

Result<Document> parse(std::string_view bytes, const Limits& limits) {
  // libxml2 2.9 initialises its globals lazily and not thread-safely: do it once, first.
  static std::once_flag init;
  std::call_once(init, [] { xmlInitParser(); });

  if (bytes.size() > limits.max_bytes) {
    return make_error(Errc::xml_refused,
                      "the document has " + std::to_string(bytes.size()) + " bytes; the limit is " +
                          std::to_string(limits.max_bytes),
                      "XML");
  }
  if (bytes.size() > static_cast<std::size_t>(INT32_MAX)) {
    return make_error(Errc::xml_refused, "the document is too large", "XML");
  }
  xmlParserCtxtPtr ctxt = xmlCreateMemoryParserCtxt(bytes.data(), static_cast<int>(bytes.size()));
  if (ctxt == nullptr) return make_error(Errc::internal, "libxml2 could not start a parse", "XML");
  ParseState state;
  ctxt->_private = &state;
  // No network, no DTD loading or validation, no entity substitution (XML_PARSE_NOENT is what
  // would expand them), CDATA merged as text. XML_PARSE_HUGE stays off: libxml2's own caps on
  // text node size and nesting stay in force beneath ours.
  xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOCDATA);
  ctxt->sax->internalSubset = on_doctype;
  ctxt->sax->externalSubset = on_doctype;
  ctxt->sax->entityDecl = on_entity_declaration;
  ctxt->sax->serror = on_error;
  ctxt->sax->error = nullptr;
  ctxt->sax->warning = nullptr;
  ctxt->vctxt.error = nullptr;
  ctxt->vctxt.warning = nullptr;

  xmlParseDocument(ctxt);
  const bool well_formed = ctxt->wellFormed != 0;
  Document doc;
  doc.doc_.reset(ctxt->myDoc);
  ctxt->myDoc = nullptr;
  ctxt->_private = nullptr;
  xmlFreeParserCtxt(ctxt);

  if (state.refused_doctype) {
    return make_error(Errc::xml_refused,
                      "a DOCTYPE declaration is not accepted (DTDs and entities are refused: "
                      "they are how XXE and entity-expansion attacks work)",
                      position(state.refused_line, 0));
  }
  if (!well_formed || !doc.doc_) {
    return make_error(Errc::not_xml,
                      state.first_error.empty() ? "the document is not well-formed XML"
                                                : "not well-formed: " + state.first_error,
                      position(state.error_line, state.error_column));
  }
  if (doc.root() == nullptr)
    return make_error(Errc::not_xml, "the document has no root element", "XML");
  const int depth = depth_of(doc.root());
  if (depth > limits.max_depth) {
    return make_error(Errc::xml_refused,
                      "elements are nested " + std::to_string(depth) + " deep; the limit is " +
                          std::to_string(limits.max_depth),
                      "XML");
  }
  return doc;
}

bool looks_like_xml(std::string_view bytes) {
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
  const auto first = bytes.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && bytes[first] == '<';
}

}  // namespace adapter::xml
