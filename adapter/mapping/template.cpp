#include "mapping/template.h"

#include "xml/xpath.h"

#include <algorithm>
#include <bit>
#include <set>

#include "common/sha256.h"
#include "mapping/functions.h"
#include "mapping/purity.h"
#include "xml/xpath.h"

namespace adapter::mapping {
namespace {

// "$ignore" rules for HL7: SEG, SEG-n or SEG-n.c (segment IDs are three capitals or digits).
bool valid_ignore_rule(const std::string& rule) {
  auto is_id_char = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (rule.size() < 3 || !is_id_char(rule[0]) || !is_id_char(rule[1]) || !is_id_char(rule[2])) {
    return false;
  }
  if (rule.size() == 3) return true;
  std::size_t i = 3;
  auto number = [&] {
    const std::size_t start = i;
    while (i < rule.size() && rule[i] >= '0' && rule[i] <= '9') ++i;
    return i > start && i - start <= 3 && rule[start] != '0';
  };
  if (rule[i++] != '-' || !number()) return false;
  if (i == rule.size()) return true;
  if (rule[i++] != '.' || !number()) return false;
  return i == rule.size();
}

class Compiler {
 public:
  explicit Compiler(std::vector<Error>& errors) : errors_(errors) {}

  void error(const SourcePos& pos, std::string message) {
    errors_.push_back(make_error(Errc::bad_config, std::move(message), pos.to_string()));
  }

  ExprPtr expression(const PNode& n, std::string_view where) {
    if (n.kind != PNode::Kind::string) {
      error(n.pos, std::string(where) + " must be a string holding an expression");
      return nullptr;
    }
    std::string_view text = n.text;
    // "{{ x }}" and "x" both work for directives that only take an expression.
    std::size_t offset = 1;  // the opening quote
    if (text.size() >= 4 && text.substr(0, 2) == "{{" && text.substr(text.size() - 2) == "}}") {
      text = text.substr(2, text.size() - 4);
      offset += 2;
    }
    auto e = parse_expression(text, n.pos.shifted(static_cast<std::uint32_t>(offset)),
                              builtin_functions());
    if (!e) {
      errors_.push_back(e.error());
      return nullptr;
    }
    note_includes(**e);
    return *e;
  }

  TNodePtr node(const PNode& n, bool array_item = false) {
    auto t = std::make_shared<TNode>();
    t->pos = n.pos;
    switch (n.kind) {
      case PNode::Kind::null:
        t->kind = TNode::Kind::literal;
        break;
      case PNode::Kind::boolean:
        t->kind = TNode::Kind::literal;
        t->literal = Json::boolean(n.boolean);
        break;
      case PNode::Kind::number:
        t->kind = TNode::Kind::literal;
        t->literal = Json::number(n.text);
        break;
      case PNode::Kind::string:
        text(n, *t);
        break;
      case PNode::Kind::array:
        t->kind = TNode::Kind::array;
        for (const PNode& item : n.items) t->items.push_back(node(item, true));
        break;
      case PNode::Kind::object:
        object(n, *t, array_item);
        break;
    }
    fold_constant(*t);
    return t;
  }

  // Partial names used anywhere; checked once every partial is loaded.
  std::vector<std::pair<std::string, SourcePos>> includes;

 private:
  void note_includes(const Expr& e) {
    if (e.op == Expr::Op::call && e.name == "include" && !e.args.empty() &&
        e.args[0]->op == Expr::Op::literal && e.args[0]->value.is_string()) {
      includes.emplace_back(e.args[0]->value.as_string(), e.args[0]->pos);
    }
    for (const auto& a : e.args) note_includes(*a);
    if (e.path.filter) note_includes(*e.path.filter);
  }

  // An object or array with no expression and no directive anywhere below it renders to the
  // same JSON for every message: it becomes a literal, built here once and shared by every
  // output (a copy is a reference count). The renderer would otherwise build it again each time,
  // member by member; the shipped templates hold many (codings, categories, profiles). Objects
  // naming a resourceType are kept, so that --explain still reports where each resource came
  // from (render_object).
  static void fold_constant(TNode& t) {
    const auto literal = [](const TNodePtr& x) { return x->kind == TNode::Kind::literal; };
    if (t.kind == TNode::Kind::array) {
      if (!std::all_of(t.items.begin(), t.items.end(), literal)) return;
      JsonArray items;
      for (const TNodePtr& item : t.items) {
        if (!item->literal.is_empty()) items.push_back(item->literal);
      }
      t.literal = items.empty() ? Json() : Json::array(std::move(items));
      t.items.clear();
      t.kind = TNode::Kind::literal;
      return;
    }
    if (t.kind != TNode::Kind::object) return;
    const bool directives = t.if_expr || !t.lets.empty() || t.each || t.each_body || t.with ||
                            !t.include.empty() || t.merge || !t.requires_members.empty() ||
                            !t.checks.empty();
    if (directives) return;
    if (!std::all_of(t.members.begin(), t.members.end(),
                     [&](const TNode::Member& m) { return literal(m.value); })) {
      return;
    }
    if (std::any_of(t.members.begin(), t.members.end(),
                    [](const TNode::Member& m) { return m.key == "resourceType"; })) {
      return;
    }
    JsonObject members;
    for (const TNode::Member& m : t.members) {
      if (!m.value->literal.is_empty()) members.emplace_back(m.key, m.value->literal);
    }
    t.literal = members.empty() ? Json() : Json::object(std::move(members));
    t.members.clear();
    t.kind = TNode::Kind::literal;
  }

  void text(const PNode& n, TNode& t) {
    const std::string& s = n.text;
    std::size_t pos = 0;
    while (pos < s.size()) {
      const std::size_t open = s.find("{{", pos);
      if (open == std::string::npos) break;
      const std::size_t close = s.find("}}", open + 2);
      if (close == std::string::npos) {
        error(n.pos.shifted(static_cast<std::uint32_t>(open + 1)), "'{{' without '}}'");
        break;
      }
      if (open > pos) t.parts.push_back({s.substr(pos, open - pos), nullptr});
      auto e = parse_expression(std::string_view(s).substr(open + 2, close - open - 2),
                                n.pos.shifted(static_cast<std::uint32_t>(open + 3)),
                                builtin_functions());
      if (!e) {
        errors_.push_back(e.error());
      } else {
        note_includes(**e);
        t.parts.push_back({{}, *e});
      }
      pos = close + 2;
    }
    if (t.parts.empty()) {
      t.kind = TNode::Kind::literal;
      t.literal = Json::string(s);
      return;
    }
    if (pos < s.size()) t.parts.push_back({s.substr(pos), nullptr});
    t.kind = TNode::Kind::text;
  }

  void object(const PNode& n, TNode& t, bool array_item) {
    t.kind = TNode::Kind::object;
    static const std::set<std::string, std::less<>> kDirectives = {
        "$if", "$let", "$each", "$as", "$do", "$with", "$include", "$merge", "$requires", "$check"};
    for (const auto& m : n.members) {
      if (m.key.empty() || m.key[0] != '$') {
        t.members.push_back({m.key, node(m.value), Json::string(m.key)});
        continue;
      }
      if (!kDirectives.count(m.key)) {
        // Root-level keys ($template, $version, $ignore, $partial, $params) are read by the loader.
        static const std::set<std::string, std::less<>> kRoot = {
            "$template",    "$version", "$ignore", "$namespaces",
            "$document_id", "$partial", "$params"};
        if (!kRoot.count(m.key)) {
          error(m.key_pos,
                "unknown directive '" + m.key +
                    "' (known: $if $let $each $as $do $with $include $merge $requires $check)");
        }
        continue;
      }
      if (m.key == "$if") {
        t.if_expr = expression(m.value, "$if");
      } else if (m.key == "$let") {
        if (m.value.kind != PNode::Kind::object) {
          error(m.value.pos, "$let must be an object of name: value");
          continue;
        }
        for (const auto& v : m.value.members) t.lets.emplace_back(v.key, node(v.value));
      } else if (m.key == "$each") {
        if (!array_item) error(m.key_pos, "$each is only allowed on an item of an array");
        t.each = expression(m.value, "$each");
      } else if (m.key == "$as") {
        if (m.value.kind != PNode::Kind::string || m.value.text.empty() || m.value.text[0] == '$') {
          error(m.value.pos, "$as must be a variable name without '$'");
        } else {
          t.each_as = m.value.text;
        }
      } else if (m.key == "$do") {
        t.each_body = node(m.value);
      } else if (m.key == "$with") {
        t.with = expression(m.value, "$with");
      } else if (m.key == "$include") {
        if (m.value.kind != PNode::Kind::string) {
          error(m.value.pos, "$include must name a partial");
        } else {
          t.include = m.value.text;
          includes.emplace_back(t.include, m.value.pos);
        }
      } else if (m.key == "$check") {
        if (auto e = expression(m.value, "$check")) t.checks.push_back(e);
      } else if (m.key == "$merge") {
        t.merge = node(m.value);
      } else if (m.key == "$requires") {
        if (m.value.kind == PNode::Kind::string) {
          t.requires_members.push_back(m.value.text);
        } else if (m.value.kind == PNode::Kind::array) {
          for (const auto& r : m.value.items) t.requires_members.push_back(r.text);
        } else {
          error(m.value.pos, "$requires must be a member name or a list of them");
        }
      }
    }
    if (t.each_body && !t.each) error(n.pos, "$do needs $each");
    if (n.find("$as") && !t.each) error(n.pos, "$as needs $each");
  }

  std::vector<Error>& errors_;
};

std::string stem(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  const std::size_t dot = name.find_last_of('.');
  return dot == std::string::npos ? name : name.substr(0, dot);
}

// RFC 4180-ish CSV: commas, double quotes around fields that need them, "" for a quote.
std::vector<std::vector<std::string>> parse_csv(std::string_view text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  bool any = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field.push_back(c);
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        row.push_back(std::move(field));
        rows.push_back(std::move(row));
      }
      row.clear();
      field.clear();
      any = false;
    } else {
      field.push_back(c);
      any = true;
    }
  }
  if (any || !field.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

namespace {

// Resolves the names that templates use to reach partials and tables, once, so that rendering
// a message does no string lookups for them. The set is still private to load_template_set
// here: nothing reads these nodes yet, which is why writing into them is safe.
// Whether a literal could be one side of a numeric comparison: its text as the Evaluator's
// parse_number() reads it (a literal that yields no text, null, is never a number either).
bool literal_reads_as_number(const Json& value) {
  std::string_view text;
  if (value.is_string()) {
    text = value.as_string();
  } else if (value.is_number()) {
    text = value.number_text();
  } else if (value.is_bool()) {
    text = value.as_bool() ? "true" : "false";
  } else {
    return false;
  }
  double ignored = 0;
  return parse_number(text, ignored);
}

class NameBinder {
 public:
  explicit NameBinder(TemplateSet& set) : set_(set) {
    // The variables the Evaluator itself binds.
    for (const char* name : {"feed", "source", "template", "index", "it"}) (void)intern(name);
  }

  std::string_view intern(std::string_view name) {
    auto it = set_.variable_names.find(name);
    if (it == set_.variable_names.end()) it = set_.variable_names.emplace(name).first;
    return *it;
  }

  void node(const TNode& n) {
    auto& t = const_cast<TNode&>(n);  // NOLINT(cppcoreguidelines-pro-type-const-cast): see above
    t.let_variables.clear();
    for (const auto& l : t.lets) t.let_variables.push_back(intern(l.first));
    t.each_variable = intern(t.each_as);
    for (const TPart& p : t.parts) expr(p.expr);
    for (const auto& m : t.members) node(*m.value);
    for (const TNodePtr& i : t.items) node(*i);
    expr(t.if_expr);
    for (const auto& l : t.lets) node(*l.second);
    expr(t.each);
    if (t.each_body) node(*t.each_body);
    expr(t.with);
    if (t.merge) node(*t.merge);
    for (const ExprPtr& c : t.checks) expr(c);
    if (!t.include.empty()) {
      const auto it = set_.partials.find(t.include);
      if (it != set_.partials.end()) {
        t.partial = &it->second;
        t.param_members.assign(it->second.params.size(), -1);
        for (std::size_t p = 0; p < it->second.params.size(); ++p) {
          for (std::size_t m = 0; m < t.members.size(); ++m) {
            if (t.members[m].key == it->second.params[p]) t.param_members[p] = static_cast<int>(m);
          }
        }
        t.stray_members.clear();
        const auto& params = it->second.params;
        for (std::size_t m = 0; m < t.members.size(); ++m) {
          if (std::find(params.begin(), params.end(), t.members[m].key) == params.end()) {
            t.stray_members.push_back(static_cast<int>(m));
          }
        }
      }
    }
  }

  void expr(const ExprPtr& e) {
    if (!e) return;
    auto& x = const_cast<Expr&>(*e);  // NOLINT(cppcoreguidelines-pro-type-const-cast): see above
    if (x.op == Expr::Op::variable) x.variable = intern(x.name);
    if (x.op >= Expr::Op::equal && x.op <= Expr::Op::greater_equal && x.args.size() == 2) {
      for (const ExprPtr& side : x.args) {
        if (side->op == Expr::Op::literal && !literal_reads_as_number(side->value)) {
          x.text_only = true;
        }
      }
    }
    if (x.op == Expr::Op::member && !x.name.empty() && x.name.size() <= 9 &&
        std::all_of(x.name.begin(), x.name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      x.component = static_cast<std::uint32_t>(std::stoul(x.name));
    }
    for (const ExprPtr& a : x.args) expr(a);
    expr(x.path.filter);
    if (x.op == Expr::Op::call && x.args.size() == 1) {
      if (x.name == "exists") x.builtin = Expr::Builtin::exists;
      if (x.name == "empty") x.builtin = Expr::Builtin::empty;
    }
    if (x.op == Expr::Op::call && x.name == "coalesce") x.builtin = Expr::Builtin::coalesce;
    if (x.op == Expr::Op::call && x.name == "in" && x.args.size() >= 2 &&
        std::all_of(x.args.begin() + 1, x.args.end(), [](const ExprPtr& a) {
          return a->op == Expr::Op::literal &&
                 (a->value.is_string() || a->value.is_number() || a->value.is_bool());
        })) {
      x.builtin = Expr::Builtin::in_literals;
    }
    if (x.op != Expr::Op::call || x.args.empty() || x.args[0]->op != Expr::Op::literal ||
        !x.args[0]->value.is_string()) {
      return;
    }
    const std::string_view name = x.args[0]->value.as_string();
    if (x.name == "include") {
      const auto it = set_.partials.find(name);
      if (it != set_.partials.end()) x.partial = &it->second;
    } else if (x.name == "lookup") {
      const auto it = set_.tables.find(name);
      if (it != set_.tables.end()) x.table = &it->second;
      if (x.table != nullptr && (x.args.size() == 2 || x.args.size() == 3)) {
        x.builtin = Expr::Builtin::lookup;
        const std::vector<std::string>& columns = x.table->columns;
        if (x.args.size() == 3 && x.args[2]->op == Expr::Op::literal &&
            x.args[2]->value.is_string()) {
          // An unknown column keeps -1: the call then reports it, where it is made.
          const auto at = std::find(columns.begin(), columns.end(), x.args[2]->value.as_string());
          if (at != columns.end()) x.table_column = static_cast<int>(at - columns.begin());
        } else if (x.args.size() == 2 && columns.size() >= 2) {
          x.table_column = 1;  // without a column: the second
        }
      }
    }
  }

 private:
  TemplateSet& set_;
};

void bind_names(TemplateSet& set) {
  for (auto& [name, table] : set.tables) table.index.build(table.rows);
  NameBinder binder(set);
  for (const auto& [file, t] : set.templates) binder.node(*t.body);
  for (auto& [name, p] : set.partials) {
    p.param_variables.clear();
    for (const std::string& param : p.params) p.param_variables.push_back(binder.intern(param));
    binder.node(*p.body);
  }
}

}  // namespace

Result<std::shared_ptr<const TemplateSet>, std::vector<Error>> load_template_set(
    const FileSource& files) {
  auto set = std::make_shared<TemplateSet>();
  std::vector<Error> errors;
  Compiler compiler(errors);
  Sha256 version;

  auto read_json = [&](const std::string& path) -> std::optional<PNode> {
    auto text = files.read(path);
    if (!text) {
      errors.push_back(make_error(Errc::bad_config, text.error().message, path));
      return std::nullopt;
    }
    version.update(path);
    version.update(std::string_view("\0", 1));
    version.update(*text);
    auto parsed = parse_positioned_json(*text, std::make_shared<const std::string>(path));
    if (!parsed) {
      errors.push_back(parsed.error());
      return std::nullopt;
    }
    return std::move(*parsed);
  };

  // Tables first: they hold no expressions.
  for (const std::string& path : files.list("tables", ".csv")) {
    auto text = files.read(path);
    if (!text) {
      errors.push_back(make_error(Errc::bad_config, text.error().message, path));
      continue;
    }
    version.update(path);
    version.update(*text);
    Table t;
    t.name = stem(path);
    auto rows = parse_csv(*text);
    if (rows.empty()) {
      errors.push_back(
          make_error(Errc::bad_config, "empty table (a header row is needed)", path + ":1:1"));
      continue;
    }
    t.columns = rows[0];
    for (std::size_t r = 1; r < rows.size(); ++r) {
      if (rows[r].size() != t.columns.size()) {
        errors.push_back(make_error(Errc::bad_config,
                                    "row has " + std::to_string(rows[r].size()) +
                                        " columns, the header " + std::to_string(t.columns.size()),
                                    path + ":" + std::to_string(r + 1) + ":1"));
        continue;
      }
      JsonObject row;
      for (std::size_t c = 0; c < t.columns.size(); ++c)
        row.emplace_back(t.columns[c], Json::string(rows[r][c]));
      if (!t.rows.emplace(rows[r][0], Json::object(std::move(row))).second) {
        errors.push_back(make_error(Errc::bad_config, "duplicate key '" + rows[r][0] + "'",
                                    path + ":" + std::to_string(r + 1) + ":1"));
      }
    }
    set->tables.emplace(t.name, std::move(t));
  }
  for (const std::string& path : files.list("tables", ".json")) {
    auto root = read_json(path);
    if (!root) continue;
    if (root->kind != PNode::Kind::object) {
      errors.push_back(make_error(Errc::bad_config, "a JSON table is an object of key: value",
                                  root->pos.to_string()));
      continue;
    }
    Table t;
    t.name = stem(path);
    for (const auto& m : root->members) t.rows.emplace(m.key, to_json(m.value));
    set->tables.emplace(t.name, std::move(t));
  }

  for (const std::string& path : files.list("partials", ".json")) {
    auto root = read_json(path);
    if (!root) continue;
    Partial p;
    p.pos = root->pos;
    const PNode* name = root->find("$partial");
    if (root->kind != PNode::Kind::object || name == nullptr || name->kind != PNode::Kind::string) {
      errors.push_back(make_error(Errc::bad_config,
                                  "a partial is an object with \"$partial\": \"name\"",
                                  root->pos.to_string()));
      continue;
    }
    p.name = name->text;
    if (const PNode* params = root->find("$params")) {
      for (const auto& item : params->items) p.params.push_back(item.text);
    }
    p.body = compiler.node(*root);
    if (set->partials.count(p.name)) {
      errors.push_back(make_error(Errc::bad_config, "partial '" + p.name + "' is defined twice",
                                  name->pos.to_string()));
      continue;
    }
    set->partials.emplace(p.name, std::move(p));
  }

  auto routes = read_json("routes.json");
  if (routes) {
    const PNode* list = routes->find("routes");
    if (list == nullptr || list->kind != PNode::Kind::array) {
      errors.push_back(make_error(Errc::bad_config, "routes.json needs \"routes\": [...]",
                                  routes->pos.to_string()));
    } else {
      static const std::set<std::string, std::less<>> kKeys = {
          "message_type", "sending_application", "sending_facility", "version",
          "xml_root",     "xml_namespace"};
      for (const PNode& r : list->items) {
        Route route;
        route.pos = r.pos;
        const PNode* name = r.find("name");
        const PNode* tmpl = r.find("template");
        const PNode* match = r.find("match");
        if (tmpl == nullptr || tmpl->kind != PNode::Kind::string) {
          errors.push_back(
              make_error(Errc::bad_config, "a route needs \"template\"", r.pos.to_string()));
          continue;
        }
        route.name = name ? name->text : tmpl->text;
        route.template_file = tmpl->text;
        if (match != nullptr) {
          for (const auto& m : match->members) {
            if (!kKeys.count(m.key)) {
              errors.push_back(make_error(Errc::bad_config, "unknown match key '" + m.key + "'",
                                          m.key_pos.to_string()));
              continue;
            }
            auto& values = route.match[m.key];
            if (m.value.kind == PNode::Kind::array) {
              for (const auto& v : m.value.items) values.push_back(v.text);
            } else {
              values.push_back(m.value.text);
            }
          }
        }
        if (!set->templates.count(route.template_file)) {
          auto root = read_json(route.template_file);
          if (root) {
            Template t;
            t.file = route.template_file;
            const PNode* tname = root->find("$template");
            const PNode* tver = root->find("$version");
            if (tname == nullptr || tver == nullptr) {
              errors.push_back(make_error(
                  Errc::bad_config, "a template needs \"$template\" (its name) and \"$version\"",
                  root->pos.to_string()));
            } else {
              t.name = tname->text;
              t.version = tver->text;
            }
            if (const PNode* ignore = root->find("$ignore")) {
              for (const auto& i : ignore->items) {
                // An XPath (XML templates) is compiled now, so a typo is a load error.
                if (!i.text.empty() && i.text[0] == '/') {
                  if (std::string why = xml::check_xpath(i.text); !why.empty()) {
                    errors.push_back(make_error(Errc::bad_config, why, i.pos.to_string()));
                  }
                } else if (!valid_ignore_rule(i.text)) {
                  // A typo must not silently ignore a whole segment ("OBX5" reads as "OBX").
                  errors.push_back(make_error(
                      Errc::bad_config,
                      "'" + i.text +
                          "' is not an ignore rule: write SEG, SEG-n or SEG-n.c (HL7), or an "
                          "XPath starting with /",
                      i.pos.to_string()));
                }
                t.ignore.push_back(i.text);
              }
            }
            if (const PNode* ns = root->find("$namespaces")) {
              if (ns->kind != PNode::Kind::object) {
                errors.push_back(make_error(
                    Errc::bad_config, "$namespaces must be an object of prefix: namespace URI",
                    ns->pos.to_string()));
              } else {
                for (const auto& m : ns->members) t.namespaces.emplace_back(m.key, m.value.text);
              }
            }
            if (const PNode* id = root->find("$document_id")) {
              if (std::string why = xml::check_xpath(id->text); !why.empty()) {
                errors.push_back(
                    make_error(Errc::bad_config, "$document_id: " + why, id->pos.to_string()));
              }
              t.document_id = id->text;
            }
            t.body = compiler.node(*root);
            set->templates.emplace(t.file, std::move(t));
          }
        }
        set->routes.push_back(std::move(route));
      }
    }
  }

  for (const auto& [name, pos] : compiler.includes) {
    if (!set->partials.count(name)) {
      errors.push_back(
          make_error(Errc::bad_config, "no partial named '" + name + "'", pos.to_string()));
    }
  }
  set->version = version.hex_digest().substr(0, 16);
  if (!errors.empty()) return errors;
  bind_names(*set);
  find_pure_calls(*set);
  return std::shared_ptr<const TemplateSet>(std::move(set));
}

void TableIndex::build(const std::map<std::string, Json, std::less<>>& rows) {
  // At most half full, so that a miss (most OBX codes are in no table) ends after a probe or two.
  const std::size_t capacity = std::bit_ceil(std::max<std::size_t>(8, rows.size() * 2));
  slots_.assign(capacity, Slot{});
  mask_ = capacity - 1;
  for (const auto& [key, row] : rows) {
    const std::uint64_t h = hash(key);
    std::size_t i = h & mask_;
    while (slots_[i].row != nullptr) i = (i + 1) & mask_;
    slots_[i] = Slot{h, key, &row};
  }
}

}  // namespace adapter::mapping
