#include "xml/document.h"

#include <libxml/globals.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <mutex>
#include <string>
#include <utility>

#include "common/utf8.h"
#include "xml/xpath.h"

namespace adapter::xml {

namespace {

// The first error libxml2 reported, with where it was.
struct FirstError {
  std::string message;
  int line = 0;
  int column = 0;
  bool in_namespaces = false;     // a namespace constraint (XML_FROM_NAMESPACE), not syntax
  const xmlNode* node = nullptr;  // the element it concerns, when known
};

// What the SAX hooks learn while libxml2 parses (kept in the context's _private slot).
struct ParseState {
  int depth_limit = 0;
  int depth = 0;
  // libxml2's own SAX2 tree builders, which the depth hooks wrap.
  startElementNsSAX2Func build_start = nullptr;
  endElementNsSAX2Func build_end = nullptr;

  bool refused_doctype = false;
  int refused_line = 0;

  bool too_deep = false;
  int too_deep_line = 0;
  int too_deep_column = 0;
  const xmlNode* too_deep_node = nullptr;

  FirstError first_error;
  // A namespace error is raised while its start tag is parsed, before the element exists: the
  // next element built is the one it concerns.
  bool namespace_error_awaits_element = false;

  // libxml2's character-set converters report to the thread's global error hook, not the
  // parser's, and would otherwise print to stderr (with the bytes they choked on).
  std::string conversion_error;
};

ParseState& state_of(void* ctx) {
  auto* ctxt = static_cast<xmlParserCtxtPtr>(ctx);
  return *static_cast<ParseState*>(ctxt->_private);
}

// One line of valid UTF-8: messages go into HL7 ERR segments, OperationOutcomes and sidecar
// files, and libxml2's sometimes break a line before the bytes they quote.
std::string one_line(std::string_view text) {
  std::string valid;
  append_utf8_replacing_invalid(valid, text, [](std::string& out, unsigned char byte) {
    out += "\\x";
    append_hex_byte(out, byte);
  });
  std::string out;
  out.reserve(valid.size());
  for (const char ch : valid) {
    const auto byte = static_cast<unsigned char>(ch);
    const bool blank = byte < 0x20 || byte == 0x7F || ch == ' ';
    if (!blank) {
      out += ch;
    } else if (!out.empty() && out.back() != ' ') {
      out += ' ';
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
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

// The depth limit is enforced as elements open, so it fires before libxml2's own cap (256
// levels, "Excessive depth in document") and before a deep document is built.
void on_start_element(void* ctx, const xmlChar* local_name, const xmlChar* prefix,
                      const xmlChar* uri, int namespace_count, const xmlChar** namespaces,
                      int attribute_count, int defaulted_count, const xmlChar** attributes) {
  auto* ctxt = static_cast<xmlParserCtxtPtr>(ctx);
  ParseState& s = state_of(ctx);
  ++s.depth;
  s.build_start(ctx, local_name, prefix, uri, namespace_count, namespaces, attribute_count,
                defaulted_count, attributes);
  if (s.namespace_error_awaits_element) {
    s.first_error.node = ctxt->node;
    s.namespace_error_awaits_element = false;
  }
  if (s.depth > s.depth_limit && !s.too_deep) {
    s.too_deep = true;
    s.too_deep_node = ctxt->node;
    s.too_deep_line = ctxt->input != nullptr ? ctxt->input->line : 0;
    s.too_deep_column = ctxt->input != nullptr ? ctxt->input->col : 0;
    xmlStopParser(ctxt);
  }
}

void on_end_element(void* ctx, const xmlChar* local_name, const xmlChar* prefix,
                    const xmlChar* uri) {
  ParseState& s = state_of(ctx);
  --s.depth;
  s.namespace_error_awaits_element = false;  // raised in an end tag: it stays on that element
  s.build_end(ctx, local_name, prefix, uri);
}

// Structured errors instead of libxml2's default of printing to stderr: the first one is kept
// (later ones are usually consequences), and nothing of the document reaches a log.
void on_error(void* ctx, xmlErrorPtr error) {
  ParseState& s = state_of(ctx);
  if (error == nullptr || error->level < XML_ERR_ERROR) return;
  if (!s.first_error.message.empty()) {
    // A syntax error after it: the start tag may never become an element, and the next one
    // built is someone else. The namespace error stays on the enclosing element.
    if (error->domain != XML_FROM_NAMESPACE) s.namespace_error_awaits_element = false;
    return;
  }
  auto* ctxt = static_cast<xmlParserCtxtPtr>(ctx);
  s.first_error.message =
      one_line(error->message != nullptr ? error->message : "unknown XML error");
  s.first_error.line = error->line;
  s.first_error.column = error->int2;
  s.first_error.in_namespaces = error->domain == XML_FROM_NAMESPACE;
  if (s.first_error.in_namespaces) {
    s.first_error.node = ctxt->node;  // the enclosing element, unless another one opens next
    s.namespace_error_awaits_element = true;
  }
}

// The thread's global hook, for errors raised outside the parser context (encoding converters,
// the I/O layer beneath them).
void on_global_error(void* user_data, xmlErrorPtr error) {
  auto* s = static_cast<ParseState*>(user_data);
  if (error == nullptr || error->level < XML_ERR_ERROR || !s->conversion_error.empty()) return;
  if (error->domain == XML_FROM_I18N || error->code == XML_I18N_CONV_FAILED) {
    s->conversion_error = one_line(error->message != nullptr ? error->message : "");
  }
}

// Routes the thread's global libxml2 errors to `state` for the lifetime of the guard.
class GlobalErrorsTo {
 public:
  explicit GlobalErrorsTo(ParseState& state)
      : previous_(xmlStructuredError), previous_context_(xmlStructuredErrorContext) {
    xmlSetStructuredErrorFunc(&state, on_global_error);
  }
  ~GlobalErrorsTo() { xmlSetStructuredErrorFunc(previous_context_, previous_); }
  GlobalErrorsTo(const GlobalErrorsTo&) = delete;
  GlobalErrorsTo& operator=(const GlobalErrorsTo&) = delete;

 private:
  xmlStructuredErrorFunc previous_;
  void* previous_context_;
};

std::string position(int line, int column) {
  if (line <= 0) return "XML";
  std::string s = "XML line " + std::to_string(line);
  if (column > 0) s += ", column " + std::to_string(column);
  return s;
}

// A node's path for a message, shortened in the middle when long: a deep document's path is
// its depth times its (up to 50,000-byte) element names.
std::string path_for_message(const xmlNode* node) {
  constexpr std::size_t kHead = 60;
  constexpr std::size_t kTail = 140;
  std::string path = node_path(node);
  if (path.size() <= kHead + kTail + 5) return path;
  // Cut at step boundaries when there are any, else at UTF-8 character boundaries.
  auto is_continuation = [&](std::size_t i) {
    return (static_cast<unsigned char>(path[i]) & 0xC0) == 0x80;
  };
  std::size_t head_end = path.rfind('/', kHead);
  if (head_end == 0 || head_end == std::string::npos) {
    head_end = kHead;
    while (head_end > 0 && is_continuation(head_end)) --head_end;
  }
  std::size_t tail_start = path.find('/', path.size() - kTail);
  if (tail_start == std::string::npos || tail_start <= head_end) {
    tail_start = path.size() - kTail;
    while (tail_start < path.size() && is_continuation(tail_start)) ++tail_start;
  }
  const bool tail_at_step = path[tail_start] == '/';
  return path.substr(0, head_end) + "/..." + (tail_at_step ? "" : "/") + path.substr(tail_start);
}

// UTF-16 announced by a byte-order mark: "UTF-16LE", "UTF-16BE", or empty.
std::string_view utf16_byte_order(std::string_view bytes) {
  if (bytes.substr(0, 2) == "\xFF\xFE") return "UTF-16LE";
  if (bytes.substr(0, 2) == "\xFE\xFF") return "UTF-16BE";
  return {};
}

// The UTF-16 code unit at `index` (after the byte-order mark).
unsigned utf16_unit(std::string_view bytes, bool big_endian, std::size_t index) {
  const unsigned a = static_cast<unsigned char>(bytes[2 + 2 * index]);
  const unsigned b = static_cast<unsigned char>(bytes[2 + 2 * index + 1]);
  return big_endian ? (a << 8U) | b : (b << 8U) | a;
}

// The ASCII prefix of a UTF-16 document (after its byte-order mark), up to `max_units`: enough
// to read an XML declaration.
std::string utf16_ascii_prefix(std::string_view bytes, bool big_endian, std::size_t max_units) {
  std::string out;
  const std::size_t units = std::min((bytes.size() - 2) / 2, max_units);
  for (std::size_t i = 0; i < units; ++i) {
    const unsigned unit = utf16_unit(bytes, big_endian, i);
    if (unit == 0 || unit >= 0x80) break;
    out += static_cast<char>(unit);
  }
  return out;
}

// The encoding named by an XML declaration at the start of `text`, or empty. Only names the
// grammar allows (EncName: [A-Za-z] ([A-Za-z0-9._] | '-')*); anything else is libxml2's to refuse.
std::string declared_encoding(const std::string& text) {
  if (text.rfind("<?xml", 0) != 0) return {};
  const std::size_t end = text.find("?>");
  const std::size_t key = text.find("encoding", 5);
  if (end == std::string::npos || key == std::string::npos || key > end) return {};
  std::size_t i = key + 8;
  auto skip_blanks = [&] {
    while (i < end && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
      ++i;
  };
  skip_blanks();
  if (i >= end || text[i] != '=') return {};
  ++i;
  skip_blanks();
  if (i >= end || (text[i] != '"' && text[i] != '\'')) return {};
  const char quote = text[i++];
  const std::size_t close = text.find(quote, i);
  if (close == std::string::npos || close > end || close == i) return {};
  std::string name = text.substr(i, close - i);
  const bool valid = std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
  });
  return valid ? name : std::string();
}

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// What libxml2 would do badly with a UTF-16 document, refused with a clear reason: a declaration
// naming another encoding makes it switch decoders after the declaration and report the garbage
// that follows; an odd trailing byte it drops without a word.
Result<void> check_utf16(std::string_view bytes) {
  const std::string_view order = utf16_byte_order(bytes);
  if (order.empty()) return {};
  const std::string mark = "encoding error: the byte-order mark says " + std::string(order);
  if (bytes.size() % 2 != 0) {
    return make_error(Errc::not_xml,
                      mark + " but the document has an odd number of bytes (" +
                          std::to_string(bytes.size()) + ")",
                      "XML");
  }
  const std::string declared =
      declared_encoding(utf16_ascii_prefix(bytes, order == "UTF-16BE", 512));
  if (declared.empty() || same_name(declared, "UTF-16") || same_name(declared, order)) return {};
  return make_error(Errc::not_xml,
                    mark + " but the XML declaration says encoding=\"" + declared + "\"", "XML");
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

  // Limits count bytes of input as received, whatever its encoding.
  if (bytes.size() > limits.max_bytes) {
    return make_error(Errc::xml_refused,
                      "the document has " + std::to_string(bytes.size()) + " bytes; the limit is " +
                          std::to_string(limits.max_bytes),
                      "XML");
  }
  if (bytes.size() > static_cast<std::size_t>(INT32_MAX)) {
    return make_error(Errc::xml_refused, "the document is too large", "XML");
  }
  // libxml2 will not even start on zero bytes; that is a malformed body, not a failure of ours.
  if (bytes.empty()) return make_error(Errc::not_xml, "empty document", "XML");
  if (auto utf16 = check_utf16(bytes); !utf16) return utf16.error();

  xmlParserCtxtPtr ctxt = xmlCreateMemoryParserCtxt(bytes.data(), static_cast<int>(bytes.size()));
  if (ctxt == nullptr) return make_error(Errc::internal, "libxml2 could not start a parse", "XML");
  ParseState state;
  // libxml2 refuses elements past its own cap (without XML_PARSE_HUGE) with its own message, so
  // a larger limit is capped at it, for ours to fire first.
  state.depth_limit =
      std::min(limits.max_depth, static_cast<int>(std::min<unsigned>(xmlParserMaxDepth, INT_MAX)));
  ctxt->_private = &state;
  // No network, no DTD loading or validation, no entity substitution (XML_PARSE_NOENT is what
  // would expand them), CDATA merged as text. XML_PARSE_HUGE stays off: libxml2's own caps on
  // text node size and nesting stay in force beneath ours.
  xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOCDATA);
  ctxt->sax->internalSubset = on_doctype;
  ctxt->sax->externalSubset = on_doctype;
  ctxt->sax->entityDecl = on_entity_declaration;
  state.build_start = ctxt->sax->startElementNs;
  state.build_end = ctxt->sax->endElementNs;
  ctxt->sax->startElementNs = on_start_element;
  ctxt->sax->endElementNs = on_end_element;
  ctxt->sax->serror = on_error;
  ctxt->sax->error = nullptr;
  ctxt->sax->warning = nullptr;
  ctxt->vctxt.error = nullptr;
  ctxt->vctxt.warning = nullptr;

  {
    const GlobalErrorsTo global_errors(state);
    xmlParseDocument(ctxt);
  }
  const bool well_formed = ctxt->wellFormed != 0;
  const bool namespaces_well_formed = ctxt->nsWellFormed != 0;
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
  if (state.too_deep) {
    return make_error(Errc::xml_refused,
                      "elements are nested deeper than " + std::to_string(state.depth_limit) +
                          " levels at " + path_for_message(state.too_deep_node),
                      position(state.too_deep_line, state.too_deep_column));
  }
  const FirstError& first = state.first_error;
  if (!state.conversion_error.empty()) {
    // The converter's reason is the cause; the parser's error ("Premature end of data") follows.
    return make_error(Errc::not_xml, "encoding error: " + state.conversion_error,
                      position(first.line, first.column));
  }
  // Namespace errors (an undeclared prefix, a misused xmlns) leave the document well-formed to
  // libxml2, which only warns; but its element and attribute names would then be wrong.
  if (first.in_namespaces && (!well_formed || !namespaces_well_formed || !doc.doc_)) {
    std::string message = "namespace error";
    if (first.node != nullptr) message += " at " + path_for_message(first.node);
    return make_error(Errc::not_xml, message + ": " + first.message,
                      position(first.line, first.column));
  }
  if (!well_formed || !namespaces_well_formed || !doc.doc_) {
    return make_error(Errc::not_xml,
                      first.message.empty() ? "the document is not well-formed XML"
                                            : "not well-formed: " + first.message,
                      position(first.line, first.column));
  }
  if (doc.root() == nullptr)
    return make_error(Errc::not_xml, "the document has no root element", "XML");
  return doc;
}

bool looks_like_xml(std::string_view bytes) {
  const std::string_view order = utf16_byte_order(bytes);
  if (!order.empty()) {
    const bool big_endian = order == "UTF-16BE";
    for (std::size_t i = 0; i < (bytes.size() - 2) / 2; ++i) {
      const unsigned unit = utf16_unit(bytes, big_endian, i);
      if (unit == ' ' || unit == '\t' || unit == '\r' || unit == '\n') continue;
      return unit == '<';
    }
    return false;
  }
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
  const auto first = bytes.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && bytes[first] == '<';
}

}  // namespace adapter::xml
