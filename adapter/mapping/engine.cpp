#include "mapping/engine.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "common/json_text.h"
#include "common/sha256.h"
#include "hl7v2/types.h"
#include "mapping/evaluator.h"
#include "mapping/fhir_checks.h"
#include "mapping/functions.h"

namespace adapter::mapping {

std::string_view to_string(Issue::Severity s) {
  switch (s) {
    case Issue::Severity::error:
      return "error";
    case Issue::Severity::warning:
      return "warning";
    case Issue::Severity::information:
      return "information";
  }
  return "error";
}

std::string Issue::to_string() const {
  std::string s = std::string(mapping::to_string(severity)) + ": " + message;
  if (!source.empty()) s += " [" + source + "]";
  if (!template_pos.empty()) s += " (" + template_pos + ")";
  return s;
}

bool MappingResult::failed() const {
  return std::any_of(issues.begin(), issues.end(),
                     [](const Issue& i) { return i.severity == Issue::Severity::error; });
}

// ---------------------------------------------------------------------------------------------

namespace {

constexpr int kMaxDepth = 64;

std::uint64_t consume_key(std::uint32_t seg, std::uint32_t field, std::uint32_t rep,
                          std::uint32_t comp, std::uint32_t sub) {
  return (std::uint64_t{seg} << 44) | (std::uint64_t{field & 0xFFF} << 32) |
         (std::uint64_t{rep & 0xFFF} << 20) | (std::uint64_t{comp & 0x3FF} << 10) |
         std::uint64_t{sub & 0x3FF};
}

// Argument identity for cached partial calls. A hash only picks the candidates that
// same_value() then compares, so it may tell apart values that are equal (a miss costs a render,
// never a wrong answer): source places hash by position; groups, lists and JSON held in a block
// by the object they share with their copies, which is what a repeated call passes (a variable,
// a group from the cached groups() / subid_groups(), a template literal); short JSON by value.
std::size_t mix(std::size_t h, std::size_t v) {
  return (h ^ v) * 0x100000001B3ULL;
}

// JSON held inline (no block): null, a boolean, a short string or number, an empty array or
// object.
std::size_t hash_inline_json(const Json& j) {
  const std::size_t h = static_cast<std::size_t>(j.kind()) + 1;
  switch (j.kind()) {
    case Json::Kind::boolean:
      return mix(h, j.as_bool() ? 1 : 0);
    case Json::Kind::number:
      return mix(h, std::hash<std::string_view>()(j.number_text()));
    case Json::Kind::string:
      return mix(h, std::hash<std::string_view>()(j.as_string()));
    default:
      return h;
  }
}

std::size_t hash_value(const Value& v) {
  if (v.is_json()) {
    const Json& j = v.json();
    if (const void* block = j.block()) return mix(0x42, reinterpret_cast<std::uintptr_t>(block));
    return hash_inline_json(j);
  }
  if (v.is_hl7()) {
    const Hl7Ref& r = v.hl7();
    std::size_t h = 0x48;
    for (const std::uint32_t x : {r.segment, r.field, r.repetition, r.component, r.subcomponent})
      h = mix(h, x);
    return h;
  }
  if (v.is_group()) return mix(0x47, reinterpret_cast<std::uintptr_t>(v.group().get()));
  if (v.is_xml()) return mix(0x58, reinterpret_cast<std::uintptr_t>(v.xml().node));
  return mix(0x4C, reinterpret_cast<std::uintptr_t>(&v.items()));
}

bool same_value(const Value& a, const Value& b) {
  if (a.is_json()) {
    if (!b.is_json()) return false;
    const void* block = a.json().block();
    return (block != nullptr && block == b.json().block()) || a.json() == b.json();
  }
  if (a.is_hl7()) {
    if (!b.is_hl7()) return false;
    const Hl7Ref& x = a.hl7();
    const Hl7Ref& y = b.hl7();
    return x.message == y.message && x.segment == y.segment && x.field == y.field &&
           x.repetition == y.repetition && x.component == y.component &&
           x.subcomponent == y.subcomponent;
  }
  if (a.is_group()) {
    if (!b.is_group()) return false;
    const Hl7Group& x = *a.group();
    const Hl7Group& y = *b.group();
    return &x == &y || (x.message == y.message && x.index == y.index && x.kind == y.kind &&
                        x.key == y.key && x.segments == y.segments);
  }
  if (a.is_xml()) return b.is_xml() && a.xml().node == b.xml().node;
  if (!b.is_list()) return false;
  if (&a.items() == &b.items()) return true;
  if (a.items().size() != b.items().size()) return false;
  for (std::size_t i = 0; i < a.items().size(); ++i) {
    if (!same_value(a.items()[i], b.items()[i])) return false;
  }
  return true;
}

}  // namespace

class Evaluator::VarGuard {
 public:
  explicit VarGuard(std::vector<Var>& vars) : vars_(vars), size_(vars.size()) {}
  // (pop_back rather than resize(): the shrinking path alone, inline.)
  ~VarGuard() {
    while (vars_.size() > size_) vars_.pop_back();
  }
  VarGuard(const VarGuard&) = delete;
  VarGuard& operator=(const VarGuard&) = delete;

 private:
  std::vector<Var>& vars_;
  std::size_t size_;
};

class Evaluator::ScopeGuard {
 public:
  explicit ScopeGuard(std::vector<Scope>& scopes) : scopes_(scopes), size_(scopes.size()) {}
  ~ScopeGuard() {
    while (scopes_.size() > size_) scopes_.pop_back();
  }
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;

 private:
  std::vector<Scope>& scopes_;
  std::size_t size_;
};

struct Evaluator::Reusable {
  std::vector<Var> vars;
  std::vector<JsonMember> member_stack;
  std::vector<Json> item_stack;
  std::vector<Scope> scopes;
  ReadSet consumed;
  std::vector<std::uint32_t> segment_ids;
  std::vector<std::unique_ptr<std::vector<Value>>> arg_buffers;
  std::vector<CachedCall> cached_calls;
  std::vector<std::int32_t> call_slots;
  std::vector<Value> cached_args;
  std::vector<CachedGroups> groups_cache;
  std::vector<std::int8_t> filter_cache;

  // Empty again, capacity kept. Values are released here, on the thread that made them.
  void clear() {
    vars.clear();
    member_stack.clear();
    item_stack.clear();
    scopes.clear();
    consumed.clear();
    segment_ids.clear();
    for (const auto& level : arg_buffers) level->clear();
    cached_calls.clear();
    std::fill(call_slots.begin(), call_slots.end(), -1);
    cached_args.clear();
    groups_cache.clear();
    filter_cache.clear();
  }
};

// An Evaluator can run inside another on the same thread (a mapping that maps), so a thread
// keeps a few. Destroyed with the thread.
constexpr std::size_t kReusablePerThread = 4;
thread_local std::vector<std::unique_ptr<Evaluator::Reusable>> Evaluator::spare_;

std::unique_ptr<Evaluator::Reusable, Evaluator::GiveBack> Evaluator::take_reusable() {
  if (spare_.empty()) return std::unique_ptr<Reusable, GiveBack>(new Reusable());
  std::unique_ptr<Reusable, GiveBack> r(spare_.back().release());
  spare_.pop_back();
  return r;
}

void Evaluator::GiveBack::operator()(Reusable* r) const {
  std::unique_ptr<Reusable> owned(r);
  owned->clear();
  if (spare_.size() < kReusablePerThread) spare_.push_back(std::move(owned));
}

Evaluator::Evaluator(const TemplateSet& set, const Template& tmpl, const hl7v2::Message* message,
                     const xml::Document* document, const MappingSettings& settings,
                     MappingResult& result)
    : set_(set),
      template_(tmpl),
      message_(message),
      document_(document),
      settings_(settings),
      result_(result),
      reusable_(take_reusable()),
      vars_(reusable_->vars),
      member_stack_(reusable_->member_stack),
      item_stack_(reusable_->item_stack),
      scopes_(reusable_->scopes),
      consumed_(reusable_->consumed),
      segment_ids_(reusable_->segment_ids),
      arg_buffers_(reusable_->arg_buffers),
      cached_calls_(reusable_->cached_calls),
      call_slots_(reusable_->call_slots),
      cached_args_(reusable_->cached_args),
      groups_cache_(reusable_->groups_cache),
      filter_cache_(reusable_->filter_cache) {
  if (call_slots_.empty()) call_slots_.assign(64, -1);
  // Variables are told apart by the address of their interned name (lookup_var).
  auto interned = [&](std::string_view name) {
    const auto it = set.variable_names.find(name);
    return it != set.variable_names.end() ? std::string_view(*it) : name;
  };
  index_variable_ = interned("index");
  vars_.push_back({interned("feed"), Value::borrowed(settings.feed)});
  vars_.push_back({interned("source"), Value::borrowed(settings.source)});
  vars_.push_back(
      {interned("template"), Value(Json::object({{"name", Json::string(tmpl.name)},
                                                 {"version", Json::string(tmpl.version)},
                                                 {"set", Json::string(set.version)}}))});
  if (message_ != nullptr) {
    auto root = std::make_shared<Hl7Group>();
    root->message = message_;
    root->kind = "message";
    root->index = 1;
    root->segments.resize(message_->segment_count());
    for (std::uint32_t i = 0; i < root->segments.size(); ++i) root->segments[i] = i;
    scopes_.push_back({root, -1});
    segment_ids_.reserve(message_->segment_count());
    // Templates read some fifteen places per segment (the shipped ORU^R01 template 346 in the
    // benchmark message's 24 segments): sized for that, the read set does not grow.
    consumed_.reserve(message_->segment_count() * 16);
    for (std::size_t i = 0; i < message_->segment_count(); ++i) {
      const std::string_view id = message_->segment(i).id();
      segment_ids_.push_back(id.size() == 3 ? packed_id(id.data()) : 0);
    }
  }
  if (document_ != nullptr) scopes_.push_back({nullptr, -1, document_->root()});
}

void Evaluator::issue(Issue::Severity severity, std::string message, const SourcePos& pos,
                      const Value* at) {
  Issue i;
  i.severity = severity;
  i.message = escape_controls(std::move(message));  // it may quote data: "'182\n' is not ..."
  i.template_pos = pos.to_string();
  if (at != nullptr) i.source = source_path(*at);
  result_.issues.push_back(std::move(i));
}

std::string Evaluator::source_path(const Value& v) const {
  if (v.is_list() && !v.items().empty()) return source_path(v.items().front());
  if (v.is_xml() && v.xml().node != nullptr) return xml::node_path(v.xml().node);
  if (!v.is_hl7() || message_ == nullptr) return {};
  const Hl7Ref& r = v.hl7();
  hl7v2::Location loc = message_->segment(r.segment).location(r.field);
  loc.repetition = r.repetition;
  loc.component = r.component;
  loc.subcomponent = r.subcomponent;
  return loc.to_string();
}

// ---------------------------------------------------------------------------------------------
// Rendering

Json Evaluator::render(const TNode& node) {
  switch (node.kind) {
    case TNode::Kind::literal:
      return node.literal;
    case TNode::Kind::text:
      return render_text(node);
    case TNode::Kind::object:
      return render_object(node);
    case TNode::Kind::array:
      return render_array(node);
  }
  return Json();
}

Json Evaluator::render_text(const TNode& node) {
  if (node.parts.size() == 1 && node.parts[0].expr) {
    Value v = eval(*node.parts[0].expr);
    return v.is_json() ? v.take_json() : to_json(v);
  }
  std::string out;
  std::string scratch;
  for (const TPart& p : node.parts) {
    if (!p.expr) {
      out += p.text;
      continue;
    }
    const Value v = eval(*p.expr);
    const auto t = text_view(v, scratch);
    if (!t || t->empty()) return Json();  // "Patient/{{ id }}" without an id is nothing
    out += *t;
  }
  return Json::string(out);
}

// A `$let` or partial argument keeps what its expression yields (a field, a group...), so that
// what receives it can read components; anything else is rendered to JSON.
static const Expr* single_expression(const TNode& n) {
  return n.kind == TNode::Kind::text && n.parts.size() == 1 && n.parts[0].expr
             ? n.parts[0].expr.get()
             : nullptr;
}

Json Evaluator::render_object(const TNode& node, bool each_element) {
  max_depth_ = std::max(max_depth_, ++depth_);
  if (depth_ > kMaxDepth) {
    --depth_;
    issue(Issue::Severity::error,
          "templates nested more than 64 deep (a partial including itself?)", node.pos);
    return Json();
  }
  VarGuard vars(vars_);
  ScopeGuard scopes(scopes_);
  // $with first: the variables of $let usually read the group or segment it names; then $let.
  // $with on nothing omits the object: reading on from the enclosing context instead would
  // silently take values from some other segment.
  if (node.with) {
    const Value context = eval(*node.with);
    if (context.is_nothing() || (context.is_list() && context.items().empty())) {
      --depth_;
      return Json();
    }
    if (!in_scope_push(context) && context.is_list()) {
      issue(Issue::Severity::error,
            "$with names " + std::to_string(context.items().size()) +
                " places; it needs one segment, group or XML node",
            node.with->pos, &context);
      --depth_;
      return Json();
    }
  }
  // $if after $let, so that a condition can use the variables ("$let": {"kind": ...}, "$if":
  // "$kind == ..."); first when it uses none of them, so that a dropped object costs no $let.
  if (node.if_first && !condition(*node.if_expr)) {
    --depth_;
    return Json();
  }
  for (std::size_t i = 0; i < node.lets.size(); ++i) {
    const TNode& value = *node.lets[i].second;
    const Expr* e = single_expression(value);
    vars_.push_back({node.let_variables[i], e != nullptr ? eval(*e) : Value(render(value))});
  }
  if (node.if_expr && !node.if_first && !condition(*node.if_expr)) {
    --depth_;
    return Json();
  }

  for (const ExprPtr& check : node.checks) (void)eval(*check);

  Json result;
  if (each_element && node.each_body) {
    result = render(*node.each_body);
  } else if (!node.include.empty()) {
    Value v;
    if (node.partial == nullptr) {
      v = render_partial(node.include, {}, node.pos);  // reports the unknown name
    } else {
      const Partial& p = *node.partial;
      for (const int stray : node.stray_members) {
        const auto& m = node.members[static_cast<std::size_t>(stray)];
        issue(Issue::Severity::error, "partial '" + p.name + "' has no parameter '" + m.key + "'",
              m.value->pos);
      }
      ArgsBuffer buffer(*this);
      std::vector<Value>& args = buffer.values();
      for (const int m : node.param_members) {
        if (m < 0) {
          args.emplace_back();
          continue;
        }
        const TNode& member = *node.members[static_cast<std::size_t>(m)].value;
        const Expr* e = single_expression(member);
        args.push_back(e != nullptr ? eval(*e) : Value(render(member)));
      }
      v = render_partial(p, args);
    }
    result = v.is_json() ? v.take_json() : to_json(v);
  } else {
    // Members go on a stack shared by every object being rendered (nested objects push above
    // this one's and leave it as they found it), then become the object in one block.
    const std::size_t base = member_stack_.size();
    for (const auto& m : node.members) {
      Json v = render(*m.value);
      if (!v.is_empty()) member_stack_.push_back({m.name, std::move(v)});
    }
    if (node.merge) {
      Json extra = render(*node.merge);
      if (extra.is_object()) {
        for (const JsonMember& em : extra.as_object()) {
          if (em.value.is_empty()) continue;
          const auto end =
              member_stack_.begin() + static_cast<std::ptrdiff_t>(member_stack_.size());
          const auto at =
              std::find_if(member_stack_.begin() + static_cast<std::ptrdiff_t>(base), end,
                           [&](const JsonMember& held) { return held.name() == em.name(); });
          if (at != end) {
            at->value = em.value;
          } else {
            member_stack_.push_back(em);
          }
        }
      }
    }
    const std::span<JsonMember> out(member_stack_.data() + base, member_stack_.size() - base);
    for (const std::string& req : node.requires_members) {
      if (std::none_of(out.begin(), out.end(),
                       [&](const JsonMember& m) { return m.name() == req; })) {
        member_stack_.resize(base);
        --depth_;
        return Json();
      }
    }
    if (!out.empty()) {
      if (settings_.explain) {
        for (const JsonMember& m : out) {
          if (m.name() == "resourceType" && m.value.is_string()) {
            std::string context;
            for (const Scope& s : scopes_) {
              if (s.group && s.group->kind != "message") {
                context += " " + s.group->kind + (s.group->key.empty() ? "" : " " + s.group->key) +
                           "#" + std::to_string(s.group->index);
              } else if (s.segment >= 0) {
                context += " " + source_path(Value(Hl7Ref{
                                     message_, static_cast<std::uint32_t>(s.segment), 0, 0, 0, 0}));
              }
            }
            result_.explain.push_back(std::string(m.value.as_string()) + " from " +
                                      node.pos.to_string() +
                                      (context.empty() ? "" : " in" + context));
          }
        }
      }
      result = Json::adopt_object(out);
    }
    member_stack_.resize(base);
  }
  --depth_;
  return result;
}

Json Evaluator::render_array(const TNode& node) {
  // Items go on a stack shared by every array being rendered, as members do (render_object).
  const std::size_t base = item_stack_.size();
  for (const TNodePtr& item : node.items) {
    if (item->kind == TNode::Kind::object && item->each) {
      const Value each = eval(*item->each);
      // A list (the usual case: segments, groups) is walked in place; to_list() copies.
      const std::vector<Value> converted = each.is_list() ? std::vector<Value>() : to_list(each);
      const std::vector<Value>& elements = each.is_list() ? each.items() : converted;
      std::int64_t index = 0;
      for (const Value& el : elements) {
        VarGuard vars(vars_);
        ScopeGuard scopes(scopes_);
        vars_.push_back({item->each_variable, el});
        vars_.push_back({index_variable_, count_value(static_cast<std::size_t>(++index))});
        in_scope_push(el);
        // The item's own $if, $with and $let apply to each element, then $do (or its members).
        Json r = render_object(*item, true);
        // A $do array (an expression or a literal one) gives several items per element.
        if (r.is_array() && item->each_body &&
            (item->each_body->kind == TNode::Kind::array ||
             (item->each_body->kind == TNode::Kind::literal &&
              item->each_body->literal.is_array()))) {
          for (const Json& x : r.as_array()) {
            if (!x.is_empty()) item_stack_.push_back(x);
          }
        } else if (!r.is_empty()) {
          item_stack_.push_back(std::move(r));
        }
      }
      continue;
    }
    Json r = render(*item);
    if (!r.is_empty()) item_stack_.push_back(std::move(r));
  }
  if (item_stack_.size() == base) return Json();
  Json out =
      Json::adopt_array(std::span<Json>(item_stack_.data() + base, item_stack_.size() - base));
  item_stack_.resize(base);
  return out;
}

Value Evaluator::render_partial(const std::string& name, std::span<const Value> args,
                                const SourcePos& pos) {
  const auto it = set_.partials.find(name);
  if (it == set_.partials.end()) {
    issue(Issue::Severity::error, "no partial named '" + name + "'", pos);
    return Value();
  }
  return render_partial(it->second, args);
}

Value Evaluator::render_partial(const Partial& p, std::span<const Value> args) {
  if (!p.pure) return render_partial_body(p, args);
  std::size_t hash = p.params.size();
  for (std::size_t i = 0; i < p.params.size(); ++i) {
    hash = mix(hash, i < args.size() ? hash_value(args[i]) : 0);
  }
  const std::size_t mask = call_slots_.size() - 1;
  for (std::size_t s = call_slot(p, hash); call_slots_[s] >= 0; s = (s + 1) & mask) {
    const CachedCall& c = cached_calls_[static_cast<std::size_t>(call_slots_[s])];
    if (c.hash != hash || c.partial != &p) continue;
    bool same = true;
    for (std::size_t i = 0; i < p.params.size() && same; ++i) {
      const Value& cached = cached_args_[c.first_arg + i];
      same = i < args.size() ? same_value(cached, args[i]) : cached.is_nothing();
    }
    // A call deeper down could hit the nesting limit where the first did not: render it again.
    if (same && depth_ + c.depth <= kMaxDepth) return c.result;
  }
  // The context its root "$with" makes must hold every segment its paths name, or they would
  // resolve in the caller's context. (A call found above passed this with the same arguments.)
  if (p.context_param >= 0) {
    const auto i = static_cast<std::size_t>(p.context_param);
    if (i >= args.size() || !holds_segments(args[i], p.context_segments)) {
      return render_partial_body(p, args);
    }
  }
  const std::size_t issues = result_.issues.size();
  const std::size_t explained = result_.explain.size();
  const int outer_max = max_depth_;
  max_depth_ = depth_;
  Value result = render_partial_body(p, args);
  const int depth = max_depth_ - depth_;
  max_depth_ = std::max(outer_max, max_depth_);
  if (result_.issues.size() == issues && result_.explain.size() == explained) {
    CachedCall c;
    c.partial = &p;
    c.hash = hash;
    c.first_arg = cached_args_.size();
    for (std::size_t i = 0; i < p.params.size(); ++i) {
      cached_args_.push_back(i < args.size() ? args[i] : Value());
    }
    c.result = result;
    c.depth = depth;
    cached_calls_.push_back(std::move(c));
    if (cached_calls_.size() * 2 > call_slots_.size()) {  // at most half full: short probes
      call_slots_.assign(call_slots_.size() * 2, -1);
      for (std::size_t i = 0; i < cached_calls_.size(); ++i)
        index_call(static_cast<std::int32_t>(i));
    } else {
      index_call(static_cast<std::int32_t>(cached_calls_.size() - 1));
    }
  }
  return result;
}

std::size_t Evaluator::call_slot(const Partial& partial, std::size_t hash) const {
  // Fibonacci hashing: the product's top bits, as many as the table has slots.
  const int bits = std::countr_zero(call_slots_.size());
  return static_cast<std::size_t>((mix(hash, partial.index) * 0x9E3779B97F4A7C15ULL) >>
                                  (64 - bits));
}

void Evaluator::index_call(std::int32_t call) {
  const CachedCall& c = cached_calls_[static_cast<std::size_t>(call)];
  const std::size_t mask = call_slots_.size() - 1;
  std::size_t s = call_slot(*c.partial, c.hash);
  while (call_slots_[s] >= 0) s = (s + 1) & mask;
  call_slots_[s] = call;
}

bool Evaluator::holds_segments(const Value& context, const std::vector<std::string>& ids) const {
  if (context.is_list()) {
    return context.items().size() == 1 && holds_segments(context.items().front(), ids);
  }
  if (message_ == nullptr) return false;
  auto has = [&](const std::string& id, auto&& contains) {
    return id.size() == 3 && contains(packed_id(id.data()));
  };
  if (context.is_hl7() && context.hl7().field == 0) {
    const std::uint32_t own = segment_ids_[context.hl7().segment];
    return std::all_of(ids.begin(), ids.end(), [&](const std::string& id) {
      return has(id, [&](std::uint32_t packed) { return packed == own; });
    });
  }
  if (!context.is_group()) return false;
  const std::vector<std::uint32_t>& segments = context.group()->segments;
  return std::all_of(ids.begin(), ids.end(), [&](const std::string& id) {
    return has(id, [&](std::uint32_t packed) {
      return std::any_of(segments.begin(), segments.end(),
                         [&](std::uint32_t seg) { return segment_ids_[seg] == packed; });
    });
  });
}

Value Evaluator::render_partial_body(const Partial& p, std::span<const Value> args) {
  VarGuard vars(vars_);
  for (std::size_t i = 0; i < p.params.size(); ++i) {
    vars_.push_back({p.param_variables[i], i < args.size() ? args[i] : Value()});
  }
  return Value(render(*p.body));
}

Value Evaluator::count_value(std::size_t n) {
  // $index of every $each element, count(): small numbers, made once for the process. Numbers
  // are held inline (no shared block), so every thread may read them.
  constexpr std::size_t kKept = 1024;
  static const std::vector<Json> kNumbers = [] {
    std::vector<Json> numbers;
    numbers.reserve(kKept);
    for (std::size_t i = 0; i < kKept; ++i) numbers.push_back(Json::number(static_cast<double>(i)));
    return numbers;
  }();
  if (n >= kKept) return Value(Json::number(static_cast<double>(n)));
  return Value::borrowed(kNumbers[n]);
}

Evaluator::ArgsBuffer::ArgsBuffer(Evaluator& ev)
    : ev_(ev),
      values_(ev.arg_depth_ < ev.arg_buffers_.size()
                  ? *ev.arg_buffers_[ev.arg_depth_]
                  : *ev.arg_buffers_.emplace_back(std::make_unique<std::vector<Value>>())) {
  ++ev_.arg_depth_;
}

Evaluator::ArgsBuffer::~ArgsBuffer() {
  values_.clear();  // keeps the capacity for the next call at this level
  --ev_.arg_depth_;
}

// ---------------------------------------------------------------------------------------------
// Scopes and HL7 places

bool Evaluator::in_scope_push(const Value& v) {
  if (v.is_group()) {
    scopes_.push_back({v.group(), -1});
    return true;
  }
  if (v.is_hl7() && v.hl7().field == 0) {
    scopes_.push_back({nullptr, static_cast<std::int64_t>(v.hl7().segment)});
    return true;
  }
  if (v.is_xml() && v.xml().node != nullptr) {
    scopes_.push_back({nullptr, -1, v.xml().node});
    return true;
  }
  if (v.is_list() && v.items().size() == 1) return in_scope_push(v.items().front());
  return false;
}

std::vector<std::uint32_t> Evaluator::candidates(const char id[3], const Scope* base) const {
  std::vector<std::uint32_t> out;
  if (message_ == nullptr) return out;
  auto collect = [&](const Scope& s) {
    if (s.group == nullptr && s.segment < 0) return;  // an XML scope
    if (s.segment >= 0) {
      if (segment_is(static_cast<std::uint32_t>(s.segment), id)) {
        out.push_back(static_cast<std::uint32_t>(s.segment));
      }
      return;
    }
    for (std::uint32_t seg : s.group->segments) {
      if (segment_is(seg, id)) out.push_back(seg);
    }
  };
  if (base != nullptr) {
    collect(*base);
    return out;
  }
  for (auto it = scopes_.rbegin(); it != scopes_.rend() && out.empty(); ++it) collect(*it);
  return out;
}

std::optional<std::uint32_t> Evaluator::nth_candidate(const char id[3], const Scope* base,
                                                      std::uint32_t n) const {
  if (message_ == nullptr) return std::nullopt;
  // Like candidates(): the innermost scope with any such segment decides.
  auto search = [&](const Scope& s, bool& any) -> std::optional<std::uint32_t> {
    if (s.group == nullptr && s.segment < 0) return std::nullopt;  // an XML scope
    if (s.segment >= 0) {
      const auto seg = static_cast<std::uint32_t>(s.segment);
      any = segment_is(seg, id);
      return any && n == 1 ? std::optional<std::uint32_t>(seg) : std::nullopt;
    }
    std::uint32_t seen = 0;
    for (std::uint32_t seg : s.group->segments) {
      if (!segment_is(seg, id)) continue;
      any = true;
      if (++seen == n) return seg;
    }
    return std::nullopt;
  };
  bool any = false;
  if (base != nullptr) return search(*base, any);
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
    auto found = search(*it, any);
    if (any) return found;
  }
  return std::nullopt;
}

Value Evaluator::eval_path(const Expr& e) {
  const Hl7PathSpec& p = e.path;
  std::optional<Scope> base;
  if (!e.args.empty()) {
    const Value* held = variable_in_place(*e.args[0]);
    const Value evaluated = held != nullptr ? Value() : eval(*e.args[0]);
    const Value& b = held != nullptr ? *held : evaluated;
    if (b.is_group()) {
      base = Scope{b.group(), -1};
    } else if (b.is_hl7() && b.hl7().field == 0) {
      base = Scope{nullptr, static_cast<std::int64_t>(b.hl7().segment)};
    } else if (b.is_list() && b.items().size() == 1 && b.items()[0].is_group()) {
      base = Scope{b.items()[0].group(), -1};
    } else {
      return Value();  // a path inside nothing is nothing
    }
  }
  if (!p.filter && p.field != 0) {
    const auto seg =
        nth_candidate(p.segment, base ? &*base : nullptr, p.occurrence > 0 ? p.occurrence : 1);
    if (!seg) return Value();
    return Value(Hl7Ref{message_, *seg, p.field, p.repetition, p.component, p.subcomponent});
  }
  // The segments of the innermost scope that has any with this ID (or of the base), walked in
  // place. `where` is a copy: filters push scopes, which may move the scope stack.
  Scope where;
  if (base) {
    where = *base;
  } else if (const Scope* s = scope_having(p.segment)) {
    where = *s;
  } else {
    return Value();
  }
  const auto single = static_cast<std::uint32_t>(where.segment);
  std::span<const std::uint32_t> segments;
  if (where.segment >= 0) {
    segments = std::span<const std::uint32_t>(&single, 1);
  } else if (where.group) {
    segments = where.group->segments;
  }
  const std::size_t segment_count = message_ != nullptr ? message_->segment_count() : 0;
  if (p.memo_slot >= 0 && filter_cache_.empty()) {
    filter_cache_.assign(set_.pure_filters * segment_count, -1);
  }
  // A filter is evaluated on every candidate (each one's fields count as read), from a cache
  // when it reads nothing but the candidate (purity.cpp).
  auto keeps = [&](std::uint32_t seg) {
    std::int8_t* cached =
        p.memo_slot >= 0
            ? &filter_cache_[static_cast<std::size_t>(p.memo_slot) * segment_count + seg]
            : nullptr;
    if (cached != nullptr && *cached >= 0) return *cached == 1;
    const std::size_t issues = result_.issues.size();
    ScopeGuard guard(scopes_);
    scopes_.push_back({nullptr, static_cast<std::int64_t>(seg)});
    const bool keep = condition(*p.filter);
    if (cached != nullptr && result_.issues.size() == issues) *cached = keep ? 1 : 0;
    return keep;
  };
  std::uint32_t seen = 0;  // segments with this ID so far, for an occurrence [n]
  std::size_t kept = 0;
  std::uint32_t first = 0;
  ValueList list;  // only for a segment path that keeps several
  for (const std::uint32_t seg : segments) {
    if (!segment_is(seg, p.segment)) continue;
    if (p.occurrence > 0 && ++seen != p.occurrence) continue;
    if (!p.filter || keeps(seg)) {
      if (kept++ == 0) {
        first = seg;
      } else if (p.field == 0) {
        if (list.empty()) list.push_back(Value(Hl7Ref{message_, first, 0, 0, 0, 0}));
        list.push_back(Value(Hl7Ref{message_, seg, 0, 0, 0, 0}));
      }
    }
    if (p.occurrence > 0) break;
  }
  if (kept == 0) return Value();
  if (p.field == 0) {
    if (kept == 1) return Value(Hl7Ref{message_, first, 0, 0, 0, 0});
    return Value::list(std::move(list));
  }
  return Value(Hl7Ref{message_, first, p.field, p.repetition, p.component, p.subcomponent});
}

const Evaluator::Scope* Evaluator::scope_having(const char id[3]) const {
  if (message_ == nullptr) return nullptr;
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
    if (it->segment >= 0) {
      if (segment_is(static_cast<std::uint32_t>(it->segment), id)) return &*it;
    } else if (it->group) {
      const auto& segs = it->group->segments;
      if (std::any_of(segs.begin(), segs.end(),
                      [&](std::uint32_t seg) { return segment_is(seg, id); })) {
        return &*it;
      }
    }
  }
  return nullptr;
}

Evaluator::Read& Evaluator::ReadSet::find_or_add(std::uint64_t key) {
  if ((size_ + 1) * 2 > slots_.size()) {  // at most half full: probes stay short
    std::vector<Read> old = std::move(slots_);
    slots_.assign(std::max<std::size_t>(256, old.size() * 2), Read{});
    shift_ = 64 - std::countr_zero(slots_.size());
    size_ = 0;
    for (const Read& r : old) {
      if (r.used) find_or_add(r.key) = r;
    }
  }
  for (std::size_t i = slot_of(key);; i = (i + 1) & (slots_.size() - 1)) {
    Read& slot = slots_[i];
    if (slot.used && slot.key == key) return slot;
    if (!slot.used) {
      slot.used = true;
      slot.key = key;
      ++size_;
      return slot;
    }
  }
}

void Evaluator::ReadSet::reserve(std::size_t expected) {
  if (size_ != 0 || expected * 2 <= slots_.size()) return;
  slots_.assign(std::bit_ceil(std::max<std::size_t>(256, expected * 2)), Read{});
  shift_ = 64 - std::countr_zero(slots_.size());
}

void Evaluator::ReadSet::clear() {
  if (size_ == 0) return;
  std::fill(slots_.begin(), slots_.end(), Read{});
  size_ = 0;
}

bool Evaluator::ReadSet::contains(std::uint64_t key) const {
  if (slots_.empty()) return false;
  for (std::size_t i = slot_of(key);; i = (i + 1) & (slots_.size() - 1)) {
    if (!slots_[i].used) return false;
    if (slots_[i].key == key) return true;
  }
}

void Evaluator::mark_read(std::uint64_t key) {
  (void)consumed_.find_or_add(key);
}

std::string_view Evaluator::hl7_view(const Hl7Ref& r) {
  if (r.message == nullptr || r.field == 0) return {};
  const std::uint32_t rep = r.repetition == 0 ? 1 : r.repetition;
  Read& read =
      consumed_.find_or_add(consume_key(r.segment, r.field, rep, r.component, r.subcomponent));
  // consume_key() keeps 12 bits of field and repetition and 10 of component and subcomponent:
  // a place beyond those (a repetition index taken from data) shares its key with another, so
  // its text is not cached under it.
  const bool cacheable =
      r.field <= 0xFFF && rep <= 0xFFF && r.component <= 0x3FF && r.subcomponent <= 0x3FF;
  if (cacheable && read.has_text) return read.text;
  hl7v2::Value v = r.message->segment(r.segment).field(r.field).repetition(rep);
  if (r.component > 0) v = v.component(r.component);
  if (r.subcomponent > 0) v = v.subcomponent(r.subcomponent);
  std::string_view text;
  if (v.is_null()) {
    text = {};  // "" means "delete" in HL7: nothing to create from it
  } else if (v.needs_decoding()) {
    text = decoded_.emplace_back(v.text());
  } else {
    text = v.raw();
  }
  if (cacheable) {
    read.has_text = true;
    read.text = text;
  }
  return text;
}

std::string Evaluator::hl7_text(const Hl7Ref& r) {
  return std::string(hl7_view(r));
}

void Evaluator::consume(const Value& v) {
  if (v.is_list()) {
    for (const Value& i : v.items()) consume(i);
  } else if (v.is_hl7()) {
    const Hl7Ref& r = v.hl7();
    if (r.field == 0) {
      mark_read(consume_key(r.segment, 0, 0, 0, 0));
    } else {
      // A whole field (no repetition named) covers every repetition; a component without a
      // repetition is read from the first, as hl7_text does.
      const std::uint32_t rep = r.repetition == 0 && r.component > 0 ? 1 : r.repetition;
      mark_read(consume_key(r.segment, r.field, rep, r.component, r.subcomponent));
    }
  } else if (v.is_group()) {
    for (std::uint32_t seg : v.group()->segments) mark_read(consume_key(seg, 0, 0, 0, 0));
  } else if (v.is_xml()) {
    consume_xml(v.xml().node);
  }
}

std::vector<std::string> Evaluator::unmapped_report() {
  if (document_ != nullptr) return xml_unmapped_report();
  std::vector<std::string> out;
  if (message_ == nullptr) return out;
  // Ignore rules: "OBX" (whole segment), "OBX-1", "OBX-3.3".
  struct Rule {
    std::uint32_t segment = 0;  // packed_id()
    std::uint32_t field = 0;
    std::uint32_t component = 0;
  };
  std::vector<Rule> rules;
  for (const std::string& spec : template_.ignore) {
    if (spec.size() < 3) continue;  // XPath rules start with '/' and are longer; checked at load
    Rule r;
    r.segment = packed_id(spec.data());
    if (spec.size() > 4 && spec[3] == '-') {
      r.field = static_cast<std::uint32_t>(std::atoi(spec.c_str() + 4));
      const std::size_t dot = spec.find('.', 4);
      if (dot != std::string::npos)
        r.component = static_cast<std::uint32_t>(std::atoi(spec.c_str() + dot + 1));
    }
    rules.push_back(r);
  }
  std::string scratch;
  // What holds for a whole segment is worked out once per segment, not per leaf: the rules that
  // name it (most name other segments), and whether it was handled as a whole.
  std::int64_t current = -1;
  bool whole = false;
  bool header = false;  // MSH, BHS, FHS: fields 1 and 2 are the delimiters themselves
  std::vector<Rule> own_rules;
  message_->for_each_leaf([&](hl7v2::Message::LeafAt at, hl7v2::Value leaf) {
    if (leaf.empty() || leaf.is_null()) return;
    const auto seg = at.segment;
    if (static_cast<std::int64_t>(seg) != current) {
      current = seg;
      const std::uint32_t id = segment_ids_[seg];
      own_rules.clear();
      whole = consumed_.contains(consume_key(seg, 0, 0, 0, 0));
      header = hl7v2::is_header_segment(message_->segment(seg).id());
      for (const Rule& r : rules) {
        if (r.segment != id) continue;
        if (r.field == 0) whole = true;
        own_rules.push_back(r);
      }
    }
    if (whole) return;
    if (at.field <= 2 && header) return;
    for (const Rule& r : own_rules) {
      if (r.field == at.field && (r.component == 0 || r.component == at.component)) return;
    }
    auto read = [&](std::uint64_t key) { return consumed_.contains(key); };
    if (read(consume_key(seg, at.field, at.repetition, 0, 0)) ||
        read(consume_key(seg, at.field, at.repetition, at.component, 0)) ||
        read(consume_key(seg, at.field, at.repetition, at.component, at.subcomponent)) ||
        read(consume_key(seg, at.field, 0, 0, 0))) {
      return;
    }
    // Name the leaf only as deeply as its field is structured: OBX-5, OBX-5.2, PID-3.4.1.
    hl7v2::Location loc = message_->segment(seg).location(at.field);
    loc.repetition = at.repetition;
    const hl7v2::Value rep = message_->segment(seg).field(at.field).repetition(at.repetition);
    if (rep.component_count() > 1) {
      loc.component = at.component;
      if (rep.component(at.component).subcomponent_count() > 1) loc.subcomponent = at.subcomponent;
    }
    // Decoded text may hold line breaks (\.br\): one line per entry, as the XML report keeps.
    out.push_back(loc.to_string() + " = " + escape_controls(std::string(leaf.text(scratch))));
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Values

std::optional<std::string> Evaluator::text(const Value& v) {
  std::string scratch;
  const auto t = text_view(v, scratch);
  if (!t) return std::nullopt;
  if (t->data() == scratch.data()) return scratch;
  return std::string(*t);
}

std::optional<std::string_view> Evaluator::text_view(const Value& v, std::string& scratch) {
  if (v.is_json()) {
    const Json& j = v.json();
    switch (j.kind()) {
      case Json::Kind::string:
        return std::string_view(j.as_string());
      case Json::Kind::number:
        return std::string_view(j.number_text());
      case Json::Kind::boolean:
        return std::string_view(j.as_bool() ? "true" : "false");
      default:
        return std::nullopt;
    }
  }
  if (v.is_hl7()) {
    const std::string_view t = hl7_view(v.hl7());
    if (t.empty()) return std::nullopt;
    return t;
  }
  if (v.is_xml()) {
    auto t = xml_text(v.xml());
    if (!t) return std::nullopt;
    scratch = std::move(*t);
    return std::string_view(scratch);
  }
  if (v.is_list()) {
    if (v.items().empty()) return std::nullopt;
    return text_view(v.items().front(), scratch);
  }
  return std::nullopt;
}

Json Evaluator::to_json(const Value& v) {
  if (v.is_json()) return v.json();
  if (v.is_list()) {
    JsonArray out;
    for (const Value& i : v.items()) {
      Json j = to_json(i);
      if (!j.is_empty()) out.push_back(std::move(j));
    }
    return out.empty() ? Json() : Json::array(std::move(out));
  }
  std::string scratch;
  const auto t = text_view(v, scratch);
  return t ? Json::string(*t) : Json();
}

std::vector<Value> Evaluator::to_list(const Value& v) {
  if (v.is_list()) return v.items();
  if (v.is_nothing()) return {};
  if (v.is_json() && v.json().is_array()) {
    std::vector<Value> out;
    for (const Json& j : v.json().as_array()) {
      out.push_back(v.is_borrowed() ? Value::borrowed(j) : Value(j));
    }
    return out;
  }
  return {v};
}

bool Evaluator::truthy(const Value& v) {
  if (v.is_json()) {
    const Json& j = v.json();
    switch (j.kind()) {
      case Json::Kind::null:
        return false;
      case Json::Kind::boolean:
        return j.as_bool();
      case Json::Kind::number:
        return j.as_double() != 0;
      case Json::Kind::string:
        return !j.as_string().empty();
      case Json::Kind::array:
        return !j.as_array().empty();
      case Json::Kind::object:
        return !j.as_object().empty();
    }
  }
  if (v.is_hl7()) {
    if (v.hl7().field == 0) return true;  // a segment that exists
    return !hl7_view(v.hl7()).empty();
  }
  if (v.is_group()) return !v.group()->segments.empty();
  if (v.is_list()) return !v.items().empty();
  if (v.is_xml()) return v.xml().node != nullptr;
  return false;
}

const Value* Evaluator::variable_in_place(const Expr& e) const {
  return e.op == Expr::Op::variable ? lookup_var(e.variable) : nullptr;
}

const Value* Evaluator::lookup_var(std::string_view interned) const {
  for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
    if (it->name.data() == interned.data()) return &it->value;
  }
  return nullptr;
}

Value Evaluator::member(const Value& base, const std::string& name, const Expr& e) {
  if (base.is_list()) {
    if (base.items().empty()) return Value();
    return member(base.items().front(), name, e);
  }
  const bool numeric = e.component > 0 ||
                       (!name.empty() && std::all_of(name.begin(), name.end(),
                                                     [](char c) { return c >= '0' && c <= '9'; }));
  if (base.is_hl7()) {
    if (!numeric) {
      issue(Issue::Severity::error, "'." + name + "' on an HL7 value: use a component number (.1)",
            e.pos, &base);
      return Value();
    }
    Hl7Ref r = base.hl7();
    const auto n =
        e.component > 0 ? e.component : static_cast<std::uint32_t>(std::atoi(name.c_str()));
    if (r.field == 0 || n == 0) return Value();
    if (r.component == 0) {
      r.component = n;
    } else if (r.subcomponent == 0) {
      r.subcomponent = n;
    } else {
      return Value();
    }
    return Value(r);
  }
  if (base.is_group()) {
    const Hl7Group& g = *base.group();
    if (name == "key") return Value::string(g.key);
    if (name == "kind") return Value::string(g.kind);
    if (name == "index") return count_value(g.index);
    if (name == "count") return count_value(g.segments.size());
    issue(Issue::Severity::error, "groups have .key, .kind, .index and .count, not ." + name,
          e.pos);
    return Value();
  }
  if (base.is_xml()) return xml_member(base.xml(), name);
  if (base.is_json()) {
    const Json* m = base.json().find(name);
    if (m == nullptr) return Value();
    // A member of borrowed JSON lives as long; one of a temporary is copied.
    return base.is_borrowed() ? Value::borrowed(*m) : Value(*m);
  }
  return Value();
}

Value Evaluator::eval(const Expr& e) {
  switch (e.op) {
    case Expr::Op::literal:
      return Value::borrowed(e.value);  // the template set outlives the mapping
    case Expr::Op::variable: {
      if (const Value* v = lookup_var(e.variable)) return *v;
      issue(Issue::Severity::error, "unknown variable $" + e.name, e.pos);
      return Value();
    }
    case Expr::Op::path:
      return eval_path(e);
    case Expr::Op::call: {
      switch (e.builtin) {
        case Expr::Builtin::exists:
        case Expr::Builtin::empty:
        case Expr::Builtin::in_literals:
          return Value(Json::boolean(condition(e)));
        case Expr::Builtin::coalesce:
          for (const ExprPtr& a : e.args) {
            Value v = eval(*a);
            if (truthy(v)) return v;
          }
          return Value();
        case Expr::Builtin::lookup: {
          const Value key = eval(*e.args[1]);
          if (e.table_column >= 0) return lookup_cell(*this, *e.table, key, e.table_column);
          if (e.args.size() == 2) return lookup_in(*this, *e.table, key, nullptr, e);
          const Value column = eval(*e.args[2]);
          return lookup_in(*this, *e.table, key, &column, e);
        }
        case Expr::Builtin::none:
          break;
      }
      ArgsBuffer buffer(*this);
      std::vector<Value>& args = buffer.values();
      for (const ExprPtr& a : e.args) args.push_back(eval(*a));
      return call_function(*this, e, args);
    }
    case Expr::Op::negate: {
      double d = 0;
      auto t = text(eval(*e.args[0]));
      if (!t || !parse_number(*t, d)) return Value();
      return Value(Json::number(-d));
    }
    case Expr::Op::logical_not:
      return Value(Json::boolean(!condition(*e.args[0])));
    case Expr::Op::logical_and:
      return Value(Json::boolean(condition(*e.args[0]) && condition(*e.args[1])));
    case Expr::Op::logical_or:
      return Value(Json::boolean(condition(*e.args[0]) || condition(*e.args[1])));
    case Expr::Op::coalesce: {
      Value l = eval(*e.args[0]);
      if (truthy(l)) return l;
      return eval(*e.args[1]);
    }
    case Expr::Op::equal:
    case Expr::Op::not_equal:
    case Expr::Op::less:
    case Expr::Op::less_equal:
    case Expr::Op::greater:
    case Expr::Op::greater_equal:
      return Value(Json::boolean(compare(e)));
    case Expr::Op::add:
    case Expr::Op::subtract:
      return eval_arithmetic(e);
    case Expr::Op::member:
      // $var.name: read the variable in place rather than copy it (most members are of one).
      if (const Value* held = variable_in_place(*e.args[0])) return member(*held, e.name, e);
      return member(eval(*e.args[0]), e.name, e);
    case Expr::Op::index:
      return eval_index(e);
    case Expr::Op::conditional:
      return condition(*e.args[0]) ? eval(*e.args[1]) : eval(*e.args[2]);
    case Expr::Op::list:
      return eval_list(e);
  }
  return Value();
}

bool Evaluator::condition(const Expr& e) {
  switch (e.op) {
    case Expr::Op::logical_not:
      return !condition(*e.args[0]);
    case Expr::Op::logical_and:
      return condition(*e.args[0]) && condition(*e.args[1]);
    case Expr::Op::logical_or:
      return condition(*e.args[0]) || condition(*e.args[1]);
    case Expr::Op::equal:
    case Expr::Op::not_equal:
    case Expr::Op::less:
    case Expr::Op::less_equal:
    case Expr::Op::greater:
    case Expr::Op::greater_equal:
      return compare(e);
    case Expr::Op::call:
      if (e.builtin == Expr::Builtin::exists) return truthy(eval(*e.args[0]));
      if (e.builtin == Expr::Builtin::empty) return !truthy(eval(*e.args[0]));
      if (e.builtin == Expr::Builtin::in_literals) {
        const Value x = eval(*e.args[0]);
        std::string scratch;
        const auto text = text_view(x, scratch);
        if (!text) return false;
        for (std::size_t i = 1; i < e.args.size(); ++i) {
          const Json& literal = e.args[i]->value;
          const std::string_view option =
              literal.is_string()
                  ? literal.as_string()
                  : (literal.is_number() ? literal.number_text()
                                         : std::string_view(literal.as_bool() ? "true" : "false"));
          if (option == *text) return true;
        }
        return false;
      }
      break;
    default:
      break;
  }
  return truthy(eval(e));
}

Value Evaluator::eval_list(const Expr& e) {
  ValueList items;
  for (const ExprPtr& a : e.args) {
    Value v = eval(*a);
    if (!v.is_nothing()) items.push_back(std::move(v));
  }
  return Value::list(std::move(items));
}

// The less common operations, out of eval() so that its frame stays small: eval() recurses for
// every node, and each of these needs scratch strings or lists of its own.
// Both sides of a binary operator as text (nothing for a side without a value). Made in place
// and never moved: the views point into its own values and scratch strings.
struct Evaluator::Operands {
  Operands(Evaluator& ev, const Expr& e) : left(ev.eval(*e.args[0])), right(ev.eval(*e.args[1])) {
    a = ev.text_view(left, scratch_a);
    b = ev.text_view(right, scratch_b);
  }
  Operands(const Operands&) = delete;
  Operands& operator=(const Operands&) = delete;

  const Value left;
  const Value right;
  std::string scratch_a;
  std::string scratch_b;
  std::optional<std::string_view> a;
  std::optional<std::string_view> b;
};

bool Evaluator::compare(const Expr& e) {
  // `x == 'text'` and `x != 'text'`, most comparisons templates make (codes, kinds, roles): the
  // literal's text is at hand, so only `x` is evaluated, read in place when it is a variable.
  if ((e.op == Expr::Op::equal || e.op == Expr::Op::not_equal) && e.text_only &&
      e.args[1]->op == Expr::Op::literal && e.args[1]->value.is_string()) {
    std::string scratch;
    const Value* held = variable_in_place(*e.args[0]);
    const Value evaluated = held != nullptr ? Value() : eval(*e.args[0]);
    const auto a = text_view(held != nullptr ? *held : evaluated, scratch);
    const bool same = a.value_or(std::string_view()) == e.args[1]->value.as_string();
    return e.op == Expr::Op::equal ? same : !same;
  }
  const Operands o(*this, e);
  const auto& a = o.a;
  const auto& b = o.b;
  int cmp = 0;
  double x = 0;
  double y = 0;
  // (A literal side that is not a number decides it: bind_names set `text_only`.)
  if (!e.text_only && a && b && parse_number(*a, x) && parse_number(*b, y)) {
    cmp = x < y ? -1 : (x > y ? 1 : 0);
  } else {
    const std::string_view sa = a.value_or(std::string_view());
    const std::string_view sb = b.value_or(std::string_view());
    // == and != need no order: texts of other lengths differ without a byte compared.
    if (e.op == Expr::Op::equal || e.op == Expr::Op::not_equal) {
      cmp = sa == sb ? 0 : 1;
    } else {
      cmp = sa.compare(sb) < 0 ? -1 : (sa == sb ? 0 : 1);
    }
  }
  bool r = false;
  switch (e.op) {
    case Expr::Op::equal:
      r = cmp == 0;
      break;
    case Expr::Op::not_equal:
      r = cmp != 0;
      break;
    case Expr::Op::less:
      r = a && b && cmp < 0;
      break;
    case Expr::Op::less_equal:
      r = a && b && cmp <= 0;
      break;
    case Expr::Op::greater:
      r = a && b && cmp > 0;
      break;
    default:
      r = a && b && cmp >= 0;
      break;
  }
  return r;
}

Value Evaluator::eval_arithmetic(const Expr& e) {
  const Operands o(*this, e);
  const auto& a = o.a;
  const auto& b = o.b;
  double x = 0;
  double y = 0;
  const bool numbers = a && b && parse_number(*a, x) && parse_number(*b, y);
  if (e.op == Expr::Op::subtract) return numbers ? Value(Json::number(x - y)) : Value();
  if (numbers) return Value(Json::number(x + y));
  if (!a && !b) return Value();
  return Value(Json::string(a.value_or(std::string_view()), b.value_or(std::string_view())));
}

Value Evaluator::eval_index(const Expr& e) {
  const Value base = eval(*e.args[0]);
  const auto t = text(eval(*e.args[1]));
  double d = 0;
  if (!t || !parse_number(*t, d) || d < 0) return Value();
  const auto n = static_cast<std::size_t>(d);
  if (base.is_hl7()) {
    Hl7Ref r = base.hl7();
    if (r.field == 0 || r.component > 0 || n == 0) return Value();
    r.repetition = static_cast<std::uint32_t>(n);
    return Value(r);
  }
  const std::vector<Value> items = to_list(base);
  return n < items.size() ? items[n] : Value();
}

// ---------------------------------------------------------------------------------------------
// Entry points

Result<const Template*> route_hl7(const TemplateSet& set, const hl7v2::Header& h) {
  auto first_component = [&](const std::string& raw) {
    return raw.substr(0, raw.find(h.delimiters.component));
  };
  const std::string type = h.type_and_trigger();
  for (const Route& r : set.routes) {
    bool ok = !r.match.count("xml_root");
    for (const auto& [key, values] : r.match) {
      std::string actual;
      if (key == "message_type")
        actual = type;
      else if (key == "sending_application")
        actual = first_component(h.sending_application);
      else if (key == "sending_facility")
        actual = first_component(h.sending_facility);
      else if (key == "version")
        actual = h.version;
      else
        continue;
      ok = ok && std::find(values.begin(), values.end(), actual) != values.end();
    }
    if (!ok) continue;
    const auto it = set.templates.find(r.template_file);
    if (it != set.templates.end()) return &it->second;
  }
  // The header's values are the sender's data: a line break in them stays escaped.
  return make_error(
      Errc::bad_config,
      escape_controls("no route for message type " + type + " from " +
                      first_component(h.sending_application) + "|" +
                      first_component(h.sending_facility) + " (version " + h.version + ")"),
      "routes.json");
}

namespace {

// The daemon's own checks on what a template produced (fhir_checks.h): each problem is an error
// issue, so a Bundle an EHR would reject, or one that would misreport a result, is never sent.
void check_output(const Template& tmpl, MappingResult& result) {
  const Json* type = result.output.is_object() ? result.output.find("resourceType") : nullptr;
  if (type == nullptr || !type->is_string() || type->as_string() != "Bundle") return;
  for (BundleProblem& p : check_bundle(result.output)) {
    Issue i;
    i.severity = Issue::Severity::error;
    i.message = escape_controls("output check: " + p.message);
    i.template_pos = tmpl.file;
    i.source = std::move(p.where);
    result.issues.push_back(std::move(i));
  }
}

}  // namespace

MappingResult map_hl7(const TemplateSet& set, const Template& tmpl, const hl7v2::Message& message,
                      const MappingSettings& settings) {
  MappingResult result;
  result.template_name = tmpl.name;
  result.template_version = tmpl.version;
  result.template_file = tmpl.file;
  Evaluator ev(set, tmpl, &message, nullptr, settings, result);
  result.output = ev.render(*tmpl.body);
  result.unmapped = ev.unmapped_report();
  check_output(tmpl, result);
  return result;
}

}  // namespace adapter::mapping

namespace adapter::mapping {

Result<const Template*> route_xml(const TemplateSet& set, const xml::Document& document) {
  const std::string root = document.root_name();
  const std::string ns = document.root_namespace();
  for (const Route& r : set.routes) {
    const auto want_root = r.match.find("xml_root");
    if (want_root == r.match.end()) continue;  // an HL7 v2 route
    auto holds = [&](const char* key, const std::string& actual) {
      const auto it = r.match.find(key);
      return it == r.match.end() ||
             std::find(it->second.begin(), it->second.end(), actual) != it->second.end();
    };
    if (!holds("xml_root", root) || !holds("xml_namespace", ns)) continue;
    const auto it = set.templates.find(r.template_file);
    if (it != set.templates.end()) return &it->second;
  }
  return make_error(
      Errc::bad_config,
      escape_controls("no route for XML root element <" + root + ">" +
                      (ns.empty() ? std::string(" (no namespace)") : " in namespace " + ns)),
      "routes.json");
}

MappingResult map_xml(const TemplateSet& set, const Template& tmpl, const xml::Document& document,
                      const MappingSettings& settings) {
  MappingResult result;
  result.template_name = tmpl.name;
  result.template_version = tmpl.version;
  result.template_file = tmpl.file;
  Evaluator ev(set, tmpl, nullptr, &document, settings, result);
  result.output = ev.render(*tmpl.body);
  result.unmapped = ev.unmapped_report();
  check_output(tmpl, result);
  return result;
}

}  // namespace adapter::mapping
