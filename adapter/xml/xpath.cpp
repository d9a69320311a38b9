#include "xml/xpath.h"

#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include <cmath>

namespace adapter::xml {

namespace {

// libxml2 2.9 hands XPath errors to the context's hook with only a code (its message table is
// private), so the reasons are spelled out here, in its words.
std::string xpath_reason(int code) {
  static const char* const kReasons[] = {"Ok",
                                         "Number encoding",
                                         "Unfinished literal",
                                         "Start of literal",
                                         "Expected $ for variable reference",
                                         "Undefined variable",
                                         "Invalid predicate",
                                         "Invalid expression",
                                         "Missing closing curly brace",
                                         "Unregistered function",
                                         "Invalid operand",
                                         "Invalid type",
                                         "Invalid number of arguments",
                                         "Invalid context size",
                                         "Invalid context position",
                                         "Memory allocation error",
                                         "Syntax error",
                                         "Resource error",
                                         "Sub resource error",
                                         "Undefined namespace prefix",
                                         "Encoding error",
                                         "Char out of XML range",
                                         "Invalid or incomplete context"};
  const int n = code - XML_XPATH_EXPRESSION_OK;
  if (n >= 0 && n < static_cast<int>(sizeof(kReasons) / sizeof(kReasons[0]))) return kReasons[n];
  return "XPath error " + std::to_string(code);
}

// libxml2 reports XPath problems through the context's structured error hook; keep the first.
void keep_first_error(void* user_data, xmlErrorPtr error) {
  auto* out = static_cast<std::string*>(user_data);
  if (!out->empty() || error == nullptr) return;
  std::string m = error->message != nullptr ? error->message : xpath_reason(error->code);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  *out = std::move(m);
}

struct CompiledFree {
  void operator()(xmlXPathCompExpr* c) const { xmlXPathFreeCompExpr(c); }
};

}  // namespace

struct XPath::State {
  xmlXPathContextPtr context = nullptr;
  std::string last_error;
  std::unordered_map<std::string, std::unique_ptr<xmlXPathCompExpr, CompiledFree>> compiled;
};

std::string check_xpath(std::string_view expression) {
  std::string error;
  xmlXPathContextPtr ctx = xmlXPathNewContext(nullptr);
  if (ctx == nullptr) return "libxml2 could not create an XPath context";
  ctx->error = keep_first_error;
  ctx->userData = &error;
  const std::string expr(expression);
  xmlXPathCompExprPtr c = xmlXPathCtxtCompile(ctx, reinterpret_cast<const xmlChar*>(expr.c_str()));
  if (c == nullptr && error.empty()) error = "invalid XPath expression";
  if (c != nullptr) xmlXPathFreeCompExpr(c);
  xmlXPathFreeContext(ctx);
  return error.empty() ? std::string() : "XPath '" + expr + "': " + error;
}

XPath::XPath(_xmlDoc* doc) : state_(std::make_unique<State>()) {
  state_->context = xmlXPathNewContext(doc);
  if (state_->context != nullptr) {
    state_->context->error = keep_first_error;
    state_->context->userData = &state_->last_error;
  }
}

XPath::~XPath() {
  state_->compiled.clear();
  if (state_->context != nullptr) xmlXPathFreeContext(state_->context);
}

void XPath::register_namespace(const std::string& prefix, const std::string& uri) {
  if (state_->context == nullptr) return;
  xmlXPathRegisterNs(state_->context, reinterpret_cast<const xmlChar*>(prefix.c_str()),
                     reinterpret_cast<const xmlChar*>(uri.c_str()));
}

Result<XPathValue> XPath::evaluate(const std::string& expression, _xmlNode* context) {
  xmlXPathContextPtr ctx = state_->context;
  if (ctx == nullptr) return make_error(Errc::internal, "no XPath context", expression);
  state_->last_error.clear();
  auto it = state_->compiled.find(expression);
  if (it == state_->compiled.end()) {
    xmlXPathCompExprPtr c =
        xmlXPathCtxtCompile(ctx, reinterpret_cast<const xmlChar*>(expression.c_str()));
    if (c == nullptr) {
      return make_error(
          Errc::bad_config,
          state_->last_error.empty() ? "invalid XPath expression" : state_->last_error,
          "XPath '" + expression + "'");
    }
    it = state_->compiled.emplace(expression, std::unique_ptr<xmlXPathCompExpr, CompiledFree>(c))
             .first;
  }
  ctx->node = context != nullptr ? context : xmlDocGetRootElement(ctx->doc);
  xmlXPathObjectPtr obj = xmlXPathCompiledEval(it->second.get(), ctx);
  if (obj == nullptr) {
    return make_error(Errc::bad_config,
                      state_->last_error.empty() ? "the XPath expression could not be evaluated"
                                                 : state_->last_error,
                      "XPath '" + expression + "'");
  }
  XPathValue out;
  switch (obj->type) {
    case XPATH_NODESET:
      out.kind = XPathValue::Kind::nodes;
      if (obj->nodesetval != nullptr) {
        for (int i = 0; i < obj->nodesetval->nodeNr; ++i) {
          xmlNodePtr n = obj->nodesetval->nodeTab[i];
          // Namespace nodes in a node-set are copies libxml2 frees with the set: not kept.
          if (n != nullptr && n->type != XML_NAMESPACE_DECL) out.nodes.push_back(n);
        }
      }
      break;
    case XPATH_STRING:
      out.kind = XPathValue::Kind::text;
      if (obj->stringval != nullptr) out.text = reinterpret_cast<const char*>(obj->stringval);
      break;
    case XPATH_NUMBER:
      out.kind = XPathValue::Kind::number;
      out.number = obj->floatval;
      break;
    case XPATH_BOOLEAN:
      out.kind = XPathValue::Kind::boolean;
      out.boolean = obj->boolval != 0;
      break;
    default:
      xmlXPathFreeObject(obj);
      return make_error(Errc::bad_config, "the XPath result type is not supported",
                        "XPath '" + expression + "'");
  }
  xmlXPathFreeObject(obj);
  return out;
}

std::string node_path(const _xmlNode* node) {
  std::vector<std::string> parts;
  for (const xmlNode* n = node; n != nullptr && n->type != XML_DOCUMENT_NODE; n = n->parent) {
    const std::string name = n->name != nullptr ? reinterpret_cast<const char*>(n->name) : "";
    if (n->type == XML_ATTRIBUTE_NODE) {
      parts.push_back("@" + name);
    } else if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
      parts.emplace_back("text()");
    } else if (n->type == XML_ELEMENT_NODE) {
      int position = 0;
      int same = 0;
      if (n->parent != nullptr && n->parent->type == XML_ELEMENT_NODE) {
        for (const xmlNode* s = n->parent->children; s != nullptr; s = s->next) {
          if (s->type != XML_ELEMENT_NODE || !xmlStrEqual(s->name, n->name)) continue;
          ++same;
          if (s == n) position = same;
        }
      }
      parts.push_back(same > 1 ? name + "[" + std::to_string(position) + "]" : name);
    }
  }
  std::string out;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) out += "/" + *it;
  return out.empty() ? "/" : out;
}

}  // namespace adapter::xml
