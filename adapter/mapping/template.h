// Compiled templates. A template file looks like the FHIR JSON it produces; strings may embed
// expressions ("{{ OBX-5.1 }}", expr.h) and objects may carry directives, keys that start
// with '$', applied in the order listed:
//
//   "$each": "expr", "$as": "x"   (array items only) one item per element of expr; HL7 groups,
//                                 segments and XML nodes become the context of the item
//   "$with": "expr"               evaluate this object inside a group/segment/node
//   "$let": {"name": "{{...}}"}   variables for this object and below ($name)
//   "$if": "expr"                 keep this object only when expr is true (may use the $let)
//   "$do": <template>             with $each: what each element produces (else the object)
//   "$include": "partial"         replace this object by a partial; other members are its
//                                 arguments
//   "$merge": <template>          add the members of an object template to this object
//   "$requires": ["code"]         drop this object unless these members have values
//   "$check": "expr"              evaluated for its issues only (e.g. issue('warning', ...))
//
// Whatever evaluates to nothing (null, "", [], {}) is omitted, so output never holds empty
// elements. See mappings/README.md for the full language with examples.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "mapping/expr.h"
#include "mapping/json.h"
#include "mapping/source_text.h"

namespace adapter::mapping {

struct TNode;
using TNodePtr = std::shared_ptr<const TNode>;

struct TPart {
  std::string text;  // literal text, or
  ExprPtr expr;      // an expression
};

struct TNode {
  enum class Kind { literal, text, object, array };
  Kind kind = Kind::literal;
  SourcePos pos;
  Json literal;
  std::vector<TPart> parts;  // text: a single expression part keeps its type
  struct Member {
    std::string key;
    TNodePtr value;
    Json name;  // `key` as the string every rendered object shares
  };
  std::vector<Member> members;  // object: output members in order
  std::vector<TNodePtr> items;  // array
  // Directives (objects only).
  ExprPtr if_expr;
  // The $if reads none of the $let variables (purity.cpp): it is evaluated first, and an object
  // it drops costs no $let.
  bool if_first = false;
  std::vector<std::pair<std::string, TNodePtr>> lets;
  ExprPtr each;
  std::string each_as = "it";
  // The names of `lets` and `each_as`, interned in TemplateSet::variable_names (bind_names).
  std::vector<std::string_view> let_variables;
  std::string_view each_variable;
  TNodePtr each_body;
  ExprPtr with;
  std::string include;  // partial name
  // Bound once the whole template set is loaded (bind_names in template.cpp): the partial
  // `include` names, and for each of its parameters the index of the member that passes it (-1:
  // not passed). Members that name no parameter are reported when the object is rendered.
  const Partial* partial = nullptr;
  std::vector<int> param_members;
  std::vector<int> stray_members;  // members that name no parameter (reported when rendered)
  TNodePtr merge;
  std::vector<std::string> requires_members;
  std::vector<ExprPtr> checks;
};

struct Partial {
  std::string name;
  std::vector<std::string> params;
  TNodePtr body;
  SourcePos pos;
  // Set once the whole set is loaded (purity.cpp): whether a call's output depends only on its
  // arguments, so that an Evaluator may reuse it for a second call with the same arguments.
  // `pure` says what the templates allow: the partial reads no variable but its parameters and
  // the globals ($feed, $source, $template), and reads the source only through its arguments or,
  // when `context_segments` is not empty, through paths in the context that its root "$with"
  // makes of parameter `context_param`. The Evaluator checks the rest per call (that context
  // really holds those segments, no issue or explain line was made).
  bool pure = false;
  int context_param = -1;
  std::vector<std::string> context_segments;      // segment IDs its paths name without a base
  std::size_t index = 0;                          // position in TemplateSet::partials
  std::vector<std::string_view> param_variables;  // `params`, interned (bind_names)
};

// Keys to rows, for lookup(), which runs for nearly every OBX several times: open addressing
// over a power of two of slots, FNV-1a, each slot keeping its key's hash. Keys are a few bytes
// (codes, coding-system labels), where std::unordered_map's hash and its division by a prime
// bucket count were most of a lookup. Built once the set is loaded; read-only after.
class TableIndex {
 public:
  void build(const std::map<std::string, Json, std::less<>>& rows);
  const Json* find(std::string_view key) const {
    if (slots_.empty()) return nullptr;
    const std::uint64_t h = hash(key);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.row == nullptr) return nullptr;
      if (s.hash == h && s.key == key) return s.row;
    }
  }
  static std::uint64_t hash(std::string_view key) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const char c : key) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    return h ^ (h >> 32);  // the low bits pick the slot: fold the better-mixed high ones in
  }

 private:
  struct Slot {
    std::uint64_t hash = 0;
    std::string_view key;       // into the table's rows
    const Json* row = nullptr;  // null: a free slot
  };
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
};

// A lookup table: key -> row (column name -> value). CSV: the first column is the key and the
// header names the columns; JSON: an object of key -> value (a value may be an object).
struct Table {
  std::string name;
  std::vector<std::string> columns;  // CSV only
  std::map<std::string, Json, std::less<>> rows;
  TableIndex index;  // `rows`, built once the set is loaded (bind_names)
};

struct Template {
  std::string name;
  std::string version;
  std::string file;
  TNodePtr body;
  std::vector<std::string> ignore;  // "OBX-1", "MSH", or an XPath "//rcomment": not mapped
  std::vector<std::pair<std::string, std::string>> namespaces;  // XPath prefix -> namespace URI
  // XML: an XPath (with `namespaces`) whose string value identifies the document, e.g.
  // "concat(//ReportId, '/v', //Version)". Ingress deduplicates on it: the same identifier from
  // the same feed is the same document. Empty: the document's SHA-256 identifies it.
  std::string document_id;
};

// Which template a message goes to. Every condition given must hold; a list means "any of".
struct Route {
  std::string name;
  std::map<std::string, std::vector<std::string>> match;  // message_type, sending_application,
                                                          // sending_facility, version, xml_root,
                                                          // xml_namespace
  std::string template_file;
  SourcePos pos;
};

struct TemplateSet {
  std::vector<Route> routes;
  std::map<std::string, Template, std::less<>> templates;  // by file
  std::map<std::string, Partial, std::less<>> partials;    // by name
  std::map<std::string, Table, std::less<>> tables;        // by name
  // Every variable name the templates bind or read, once: the templates hold views into it, so
  // that two names are the same variable exactly when their addresses are equal.
  std::set<std::string, std::less<>> variable_names;
  std::size_t pure_filters = 0;  // segment filters given a Hl7PathSpec::memo_slot (purity.cpp)
  std::string version;           // content hash of every file, recorded with each mapped message
};

// Where templates come from (a folder on disk for adapterd; strings in tests).
class FileSource {
 public:
  virtual ~FileSource() = default;
  virtual Result<std::string> read(const std::string& path) const = 0;
  // Files under `folder` (recursively) whose names end with `suffix`, as paths for read().
  virtual std::vector<std::string> list(const std::string& folder,
                                        const std::string& suffix) const = 0;
};

// Loads routes.json, the templates it names, partials/**.json and tables/**.{csv,json}.
// Every problem is reported, each as "file:line:column: message".
Result<std::shared_ptr<const TemplateSet>, std::vector<Error>> load_template_set(
    const FileSource& files);

}  // namespace adapter::mapping
