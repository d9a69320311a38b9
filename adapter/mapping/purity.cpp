// Which partial calls and segment filters give the same output for the same inputs, decided once
// when the template set is loaded, so that an Evaluator can reuse their results within a message.
//
// Variables are scoped dynamically (a partial sees its caller's variables) and a path without a
// base resolves in the innermost context that has its segment, which may be the caller's. So a
// partial is pure only when everything it reads, through the partials it includes too, comes
// from its parameters, the global variables, or the context its root "$with" makes of a
// parameter. What cannot be decided here (does that context hold the segments? did the call
// record an issue?) the Evaluator checks per call.
#include "mapping/purity.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace adapter::mapping {
namespace {

// What a template tree reads from outside itself.
struct Reads {
  std::set<std::string, std::less<>> free;      // variables that nothing in the tree binds
  std::set<std::string, std::less<>> segments;  // segment IDs named by paths without a base
  bool context = false;   // reads the caller's context otherwise (groups(), notes()...), or unknown
  bool includes = false;  // renders a partial (which counts toward the nesting limit)

  void merge_call(const Reads& callee, const std::vector<std::string>& bound) {
    for (const std::string& name : callee.free) {
      if (std::find(bound.begin(), bound.end(), name) == bound.end()) free.insert(name);
    }
    segments.insert(callee.segments.begin(), callee.segments.end());
    context = context || callee.context;
    includes = true;
  }
};

constexpr std::string_view kGlobals[] = {"feed", "source", "template"};

class Analysis {
 public:
  // Every name any template or partial binds: a global written over by a $let, $as or
  // parameter somewhere is no longer the same value everywhere.
  void collect_bound(const TNode& n, std::set<std::string, std::less<>>& names) const {
    for (const auto& m : n.members) collect_bound(*m.value, names);
    for (const TNodePtr& i : n.items) collect_bound(*i, names);
    for (const auto& [name, value] : n.lets) {
      names.insert(name);
      collect_bound(*value, names);
    }
    if (n.each) names.insert(n.each_as);
    if (n.each_body) collect_bound(*n.each_body, names);
    if (n.merge) collect_bound(*n.merge, names);
  }

  const Reads& of(const Partial& p) {
    if (const auto it = done_.find(&p); it != done_.end()) return it->second;
    if (!in_progress_.insert(&p).second) {
      static const Reads kRecursive = [] {
        Reads r;
        r.context = true;  // a partial that includes itself: not worth deciding
        return r;
      }();
      return kRecursive;
    }
    Reads r;
    std::vector<std::string> bound(p.params.begin(), p.params.end());
    node(*p.body, bound, r);
    in_progress_.erase(&p);
    return done_[&p] = std::move(r);
  }

  void expr(const Expr& e, std::vector<std::string>& bound, Reads& out) {
    switch (e.op) {
      case Expr::Op::variable:
        if (std::find(bound.begin(), bound.end(), e.name) == bound.end()) out.free.insert(e.name);
        return;
      case Expr::Op::path:
        if (e.args.empty()) out.segments.insert(std::string(e.path.segment, 3));
        if (e.path.filter) expr(*e.path.filter, bound, out);
        break;
      case Expr::Op::call:
        if (e.name == "include") {
          if (e.partial == nullptr) {
            out.context = true;  // a partial named at run time: unknown
          } else {
            for (std::size_t i = 1; i < e.args.size(); ++i) expr(*e.args[i], bound, out);
            out.merge_call(of(*e.partial), bound);
            return;
          }
        } else if (e.name == "groups" || e.name == "notes" || e.name == "xpath") {
          out.context = true;  // these read the innermost context or walk the scopes outward
        } else if (e.name == "subid_groups") {
          out.segments.insert("OBX");
          out.segments.insert("OBR");
        } else if (e.name == "segments") {
          const Expr* id = e.args.empty() ? nullptr : e.args[0].get();
          if (id != nullptr && id->op == Expr::Op::literal && id->value.is_string() &&
              id->value.as_string().size() == 3) {
            out.segments.insert(std::string(id->value.as_string()));
          } else {
            out.context = true;
          }
        }
        break;
      default:
        break;
    }
    for (const ExprPtr& a : e.args) expr(*a, bound, out);
  }

  void node(const TNode& n, std::vector<std::string>& bound, Reads& out) {
    const std::size_t outer = bound.size();
    switch (n.kind) {
      case TNode::Kind::literal:
        return;
      case TNode::Kind::text:
        for (const TPart& p : n.parts) {
          if (p.expr) expr(*p.expr, bound, out);
        }
        return;
      case TNode::Kind::array:
        for (const TNodePtr& item : n.items) {
          if (item->kind == TNode::Kind::object && item->each) {
            expr(*item->each, bound, out);
            bound.push_back(item->each_as);
            bound.emplace_back("index");
            object(*item, bound, out);
            bound.resize(outer);
          } else {
            node(*item, bound, out);
          }
        }
        return;
      case TNode::Kind::object:
        object(n, bound, out);
        return;
    }
  }

  // In the Evaluator's order (render_object): $with, $let one by one, $if, $check, the content.
  void object(const TNode& n, std::vector<std::string>& bound, Reads& out) {
    const std::size_t outer = bound.size();
    if (n.with) expr(*n.with, bound, out);
    for (const auto& [name, value] : n.lets) {
      node(*value, bound, out);
      bound.push_back(name);
    }
    if (n.if_expr) expr(*n.if_expr, bound, out);
    for (const ExprPtr& c : n.checks) expr(*c, bound, out);
    if (n.each_body) node(*n.each_body, bound, out);
    if (!n.include.empty()) {
      for (const auto& m : n.members) node(*m.value, bound, out);
      if (n.partial == nullptr) {
        out.context = true;
      } else {
        out.merge_call(of(*n.partial), bound);
      }
    } else {
      for (const auto& m : n.members) node(*m.value, bound, out);
      if (n.merge) node(*n.merge, bound, out);
    }
    bound.resize(outer);
  }

 private:
  std::map<const Partial*, Reads> done_;
  std::set<const Partial*> in_progress_;
};

bool only_globals(const Reads& r, bool globals_shadowed) {
  return std::all_of(r.free.begin(), r.free.end(), [&](const std::string& name) {
    return !globals_shadowed &&
           std::find(std::begin(kGlobals), std::end(kGlobals), name) != std::end(kGlobals);
  });
}

// Gives every pure segment filter under `n` its cache slot.
class FilterSlots {
 public:
  FilterSlots(Analysis& analysis, bool globals_shadowed, std::size_t& slots)
      : analysis_(analysis), globals_shadowed_(globals_shadowed), slots_(slots) {}

  void node(const TNode& n) {
    for (const TPart& p : n.parts) expr(p.expr);
    for (const auto& m : n.members) node(*m.value);
    for (const TNodePtr& i : n.items) node(*i);
    expr(n.if_expr);
    for (const auto& l : n.lets) node(*l.second);
    expr(n.each);
    if (n.each_body) node(*n.each_body);
    expr(n.with);
    if (n.merge) node(*n.merge);
    for (const ExprPtr& c : n.checks) expr(c);
  }

  void expr(const ExprPtr& e) {
    if (!e || !seen_.insert(e.get()).second) return;
    for (const ExprPtr& a : e->args) expr(a);
    if (!e->path.filter) return;
    expr(e->path.filter);
    // The filter runs with the candidate segment as the innermost context: paths naming its
    // segment read that segment, anything else would read the caller's context.
    Reads r;
    std::vector<std::string> bound;
    analysis_.expr(*e->path.filter, bound, r);
    const std::string own(e->path.segment, 3);
    const bool pure = only_globals(r, globals_shadowed_) && !r.context && !r.includes &&
                      std::all_of(r.segments.begin(), r.segments.end(),
                                  [&](const std::string& s) { return s == own; });
    if (pure) {
      // Filters written alike in several places share a slot: the answer for a segment is the
      // same (and a cached answer never recorded an issue, whose position would differ).
      std::string key = own;
      canonical(*e->path.filter, key);
      const auto [slot, added] = slot_of_.try_emplace(std::move(key), static_cast<int>(slots_));
      if (added) ++slots_;
      // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): the set is not shared yet
      const_cast<Expr&>(*e).path.memo_slot = slot->second;
    }
  }

 private:
  // The expression as text that is equal exactly for expressions that evaluate alike (what
  // was written, not where).
  static void canonical(const Expr& e, std::string& out) {
    out += '(';
    out += std::to_string(static_cast<int>(e.op));
    out += ' ';
    out += e.name;
    out += ' ';
    if (e.op == Expr::Op::literal) out += e.value.dump();
    if (e.op == Expr::Op::path) {
      const Hl7PathSpec& p = e.path;
      out.append(p.segment, 3);
      for (const std::uint32_t n :
           {p.occurrence, p.field, p.repetition, p.component, p.subcomponent}) {
        out += ' ' + std::to_string(n);
      }
      if (p.filter) canonical(*p.filter, out);
    }
    for (const ExprPtr& a : e.args) canonical(*a, out);
    out += ')';
  }

  Analysis& analysis_;
  bool globals_shadowed_;
  std::size_t& slots_;
  std::set<const Expr*> seen_;
  std::map<std::string, int> slot_of_;  // canonical() of segment and filter -> slot
};

// Marks the objects whose "$if" can be evaluated before their "$let": it reads none of those
// variables, through the partials it includes either (they see their caller's variables).
class IfFirst {
 public:
  explicit IfFirst(Analysis& analysis) : analysis_(analysis) {}

  void node(const TNode& n) {
    if (!seen_.insert(&n).second) return;
    for (const auto& m : n.members) node(*m.value);
    for (const TNodePtr& i : n.items) node(*i);
    for (const auto& l : n.lets) node(*l.second);
    if (n.each_body) node(*n.each_body);
    if (n.merge) node(*n.merge);
    if (!n.if_expr || n.lets.empty()) return;
    Reads r;
    std::vector<std::string> bound;
    analysis_.expr(*n.if_expr, bound, r);
    const bool independent = std::none_of(
        n.lets.begin(), n.lets.end(), [&](const auto& let) { return r.free.count(let.first) > 0; });
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): the set is not shared yet
    if (independent) const_cast<TNode&>(n).if_first = true;
  }

 private:
  Analysis& analysis_;
  std::set<const TNode*> seen_;
};

}  // namespace

void find_pure_calls(TemplateSet& set) {
  Analysis analysis;
  std::set<std::string, std::less<>> bound_names;
  for (const auto& [file, t] : set.templates) analysis.collect_bound(*t.body, bound_names);
  for (const auto& [name, p] : set.partials) {
    bound_names.insert(p.params.begin(), p.params.end());
    analysis.collect_bound(*p.body, bound_names);
  }
  const bool globals_shadowed =
      std::any_of(std::begin(kGlobals), std::end(kGlobals),
                  [&](std::string_view g) { return bound_names.count(g) > 0; });

  std::size_t index = 0;
  for (auto& [name, p] : set.partials) {
    p.index = index++;
    const Reads& r = analysis.of(p);
    p.pure = only_globals(r, globals_shadowed) && !r.context;
    p.context_param = -1;
    p.context_segments.assign(r.segments.begin(), r.segments.end());
    if (p.pure && !r.segments.empty()) {
      // Its paths must resolve in the context its root "$with" makes of one parameter.
      // (The last parameter of a name is the one a variable finds.)
      const Expr* with = p.body->with.get();
      for (std::size_t i = 0; i < p.params.size(); ++i) {
        if (with != nullptr && with->op == Expr::Op::variable && p.params[i] == with->name) {
          p.context_param = static_cast<int>(i);
        }
      }
      p.pure = p.context_param >= 0;
    }
  }

  std::size_t slots = 0;
  FilterSlots filters(analysis, globals_shadowed, slots);
  for (const auto& [file, t] : set.templates) filters.node(*t.body);
  for (const auto& [name, p] : set.partials) filters.node(*p.body);
  set.pure_filters = slots;

  IfFirst if_first(analysis);
  for (const auto& [file, t] : set.templates) if_first.node(*t.body);
  for (const auto& [name, p] : set.partials) if_first.node(*p.body);
}

}  // namespace adapter::mapping
