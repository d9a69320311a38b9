#include "mapping/expr.h"

#include <charconv>
#include <cmath>

namespace adapter::mapping {

std::string Hl7PathSpec::to_string() const {
  std::string s(segment, 3);
  if (occurrence > 0) s += "[" + std::to_string(occurrence) + "]";
  if (filter) s += "[...]";
  if (field == 0) return s;
  s += "-" + std::to_string(field);
  if (repetition > 0) s += "[" + std::to_string(repetition) + "]";
  if (component > 0) s += "." + std::to_string(component);
  if (subcomponent > 0) s += "." + std::to_string(subcomponent);
  return s;
}

// A decimal number and nothing else (leading blanks and '+' allowed, as HL7 NM values have
// them); no hex, no inf/nan. Tried on both sides of every comparison, so non-numbers (codes,
// names) must fail on their first character.
bool parse_number(std::string_view s, double& out) {
  const char* p = s.data();
  const char* end = p + s.size();
  while (p != end && *p == ' ') ++p;
  if (p != end && *p == '+') ++p;
  if (p == end) return false;
  const char first = *p == '-' && p + 1 != end ? p[1] : *p;
  if ((first < '0' || first > '9') && first != '.') return false;
  const auto r = std::from_chars(p, end, out, std::chars_format::general);
  return r.ec == std::errc() && r.ptr == end && std::isfinite(out);
}

namespace {

bool is_upper(char c) {
  return c >= 'A' && c <= 'Z';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || c == '_';
}
bool is_ident(char c) {
  return is_ident_start(c) || is_digit(c) || (c >= 'A' && c <= 'Z');
}

class Parser {
 public:
  Parser(std::string_view text, const SourcePos& pos, const FunctionCatalog& fns)
      : t_(text), base_(pos), fns_(fns) {}

  Result<ExprPtr> parse() {
    ExprPtr e = conditional();
    if (!e) return error_;
    skip();
    if (i_ < t_.size()) {
      fail("unexpected '" + std::string(t_.substr(i_, 1)) + "'");
      return error_;
    }
    return e;
  }

 private:
  SourcePos here() const { return base_.shifted(static_cast<std::uint32_t>(i_)); }

  ExprPtr fail(const std::string& why) {
    if (!failed_) {
      failed_ = true;
      error_ = make_error(Errc::bad_config, why, here().to_string());
    }
    return nullptr;
  }

  void skip() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r'))
      ++i_;
  }

  bool eat(std::string_view s) {
    skip();
    if (t_.substr(i_, s.size()) != s) return false;
    // Keywords must not run into an identifier ("android" is not "and" + "roid").
    if (is_ident_start(s.back()) && i_ + s.size() < t_.size() && is_ident(t_[i_ + s.size()]))
      return false;
    i_ += s.size();
    return true;
  }

  std::shared_ptr<Expr> node(Expr::Op op, const SourcePos& pos) {
    auto e = std::make_shared<Expr>();
    e->op = op;
    e->pos = pos;
    return e;
  }

  ExprPtr binary(Expr::Op op, const SourcePos& pos, ExprPtr l, ExprPtr r) {
    if (!l || !r) return nullptr;
    auto e = node(op, pos);
    e->args = {std::move(l), std::move(r)};
    return e;
  }

  ExprPtr conditional() {
    skip();
    const SourcePos pos = here();
    ExprPtr c = coalesce();
    if (!c) return nullptr;
    if (!eat("?")) return c;
    ExprPtr a = conditional();
    if (!a) return nullptr;
    if (!eat(":")) return fail("expected ':' in 'condition ? a : b'");
    ExprPtr b = conditional();
    if (!b) return nullptr;
    auto e = node(Expr::Op::conditional, pos);
    e->args = {c, a, b};
    return e;
  }

  ExprPtr coalesce() {
    ExprPtr l = logical_or();
    while (l) {
      skip();
      const SourcePos pos = here();
      if (!eat("??")) break;
      l = binary(Expr::Op::coalesce, pos, l, logical_or());
    }
    return l;
  }

  ExprPtr logical_or() {
    ExprPtr l = logical_and();
    while (l) {
      skip();
      const SourcePos pos = here();
      if (!eat("or")) break;
      l = binary(Expr::Op::logical_or, pos, l, logical_and());
    }
    return l;
  }

  ExprPtr logical_and() {
    ExprPtr l = logical_not();
    while (l) {
      skip();
      const SourcePos pos = here();
      if (!eat("and")) break;
      l = binary(Expr::Op::logical_and, pos, l, logical_not());
    }
    return l;
  }

  ExprPtr logical_not() {
    skip();
    const SourcePos pos = here();
    if (eat("not")) {
      ExprPtr a = logical_not();
      if (!a) return nullptr;
      auto e = node(Expr::Op::logical_not, pos);
      e->args = {a};
      return e;
    }
    return comparison();
  }

  ExprPtr comparison() {
    ExprPtr l = additive();
    if (!l) return nullptr;
    skip();
    const SourcePos pos = here();
    struct {
      std::string_view text;
      Expr::Op op;
    } const ops[] = {{"==", Expr::Op::equal},      {"!=", Expr::Op::not_equal},
                     {"<=", Expr::Op::less_equal}, {">=", Expr::Op::greater_equal},
                     {"<", Expr::Op::less},        {">", Expr::Op::greater}};
    for (const auto& o : ops) {
      if (eat(o.text)) return binary(o.op, pos, l, additive());
    }
    return l;
  }

  ExprPtr additive() {
    ExprPtr l = unary();
    while (l) {
      skip();
      const SourcePos pos = here();
      if (t_.substr(i_, 2) == "??") break;
      if (eat("+")) {
        l = binary(Expr::Op::add, pos, l, unary());
      } else if (eat("-")) {
        l = binary(Expr::Op::subtract, pos, l, unary());
      } else {
        break;
      }
    }
    return l;
  }

  ExprPtr unary() {
    skip();
    const SourcePos pos = here();
    if (i_ < t_.size() && t_[i_] == '-' && !(i_ + 1 < t_.size() && is_digit(t_[i_ + 1]))) {
      ++i_;
      ExprPtr a = unary();
      if (!a) return nullptr;
      auto e = node(Expr::Op::negate, pos);
      e->args = {a};
      return e;
    }
    return postfix(primary());
  }

  ExprPtr postfix(ExprPtr e) {
    while (e) {
      if (i_ < t_.size() && t_[i_] == '.') {
        // .name or .N (HL7 component); written right after the value, no space.
        const SourcePos pos = here();
        ++i_;
        const std::size_t start = i_;
        while (i_ < t_.size() && is_ident(t_[i_])) ++i_;
        if (i_ == start) return fail("expected a member name or component number after '.'");
        auto m = node(Expr::Op::member, pos);
        m->name = std::string(t_.substr(start, i_ - start));
        m->args = {e};
        e = m;
      } else if (i_ < t_.size() && t_[i_] == '[') {
        const SourcePos pos = here();
        ++i_;
        ExprPtr index = conditional();
        if (!index) return nullptr;
        if (!eat("]")) return fail("expected ']'");
        auto m = node(Expr::Op::index, pos);
        m->args = {e, index};
        e = m;
      } else if (i_ < t_.size() && t_[i_] == '/' && e->op == Expr::Op::variable) {
        // $group/OBX[...]-5: a path resolved inside the group the variable holds.
        ++i_;
        if (!(i_ + 2 < t_.size() && is_upper(t_[i_])))
          return fail("expected an HL7 path after '/'");
        ExprPtr p = path();
        if (!p) return nullptr;
        auto with_base = std::make_shared<Expr>(*p);
        with_base->args.insert(with_base->args.begin(), e);
        e = with_base;
      } else {
        break;
      }
    }
    return e;
  }

  std::uint32_t number_at() {
    std::uint32_t n = 0;
    const char* b = t_.data() + i_;
    auto [ptr, ec] = std::from_chars(b, t_.data() + t_.size(), n);
    if (ec != std::errc()) return 0;
    i_ += static_cast<std::size_t>(ptr - b);
    return n;
  }

  ExprPtr path() {
    const SourcePos pos = here();
    auto e = node(Expr::Op::path, pos);
    for (int k = 0; k < 3; ++k) e->path.segment[k] = t_[i_ + static_cast<std::size_t>(k)];
    i_ += 3;
    if (i_ < t_.size() && t_[i_] == '[') {
      ++i_;
      skip();
      const std::size_t save = i_;
      const std::uint32_t n = is_digit(i_ < t_.size() ? t_[i_] : ' ') ? number_at() : 0;
      skip();
      if (n > 0 && i_ < t_.size() && t_[i_] == ']') {
        e->path.occurrence = n;
        ++i_;
      } else {
        i_ = save;
        ExprPtr f = conditional();
        if (!f) return nullptr;
        if (!eat("]")) return fail("expected ']' after the segment filter");
        e->path.filter = f;
      }
    }
    // Numbers stay below what the unmapped report can track (engine.cpp consume_key).
    constexpr std::uint32_t kMaxPart = 999;
    auto part = [&](const char* what, std::uint32_t& out) -> bool {
      const std::size_t start = i_;
      out = number_at();
      if (out == 0 || out > kMaxPart) {
        i_ = start;  // point at the number
        fail(std::string(what) + " numbers run from 1 to 999");
        return false;
      }
      return true;
    };
    if (i_ + 1 < t_.size() && t_[i_] == '-' && is_digit(t_[i_ + 1])) {
      ++i_;
      if (!part("field", e->path.field)) return nullptr;
      if (i_ < t_.size() && t_[i_] == '[' && i_ + 1 < t_.size() && is_digit(t_[i_ + 1])) {
        ++i_;
        if (!part("repetition", e->path.repetition)) return nullptr;
        if (!(i_ < t_.size() && t_[i_] == ']')) return fail("expected ']' after the repetition");
        ++i_;
      }
      if (i_ + 1 < t_.size() && t_[i_] == '.' && is_digit(t_[i_ + 1])) {
        ++i_;
        if (!part("component", e->path.component)) return nullptr;
        if (i_ + 1 < t_.size() && t_[i_] == '.' && is_digit(t_[i_ + 1])) {
          ++i_;
          if (!part("subcomponent", e->path.subcomponent)) return nullptr;
          if (i_ + 1 < t_.size() && t_[i_] == '.' && is_digit(t_[i_ + 1])) {
            return fail(
                "an HL7 path ends at the subcomponent: SEG-field[rep].component.subcomponent");
          }
        }
      }
    } else if (i_ < t_.size() && t_[i_] == '-') {
      return fail("expected a field number after '-' (OBX-5)");
    }
    return e;
  }

  ExprPtr primary() {
    skip();
    if (i_ >= t_.size()) return fail("expected a value");
    const SourcePos pos = here();
    const char c = t_[i_];
    if (c == '(') {
      ++i_;
      ExprPtr e = conditional();
      if (!e) return nullptr;
      if (!eat(")")) return fail("expected ')'");
      return e;
    }
    if (c == '[') {
      ++i_;
      auto e = node(Expr::Op::list, pos);
      if (!eat("]")) {
        for (;;) {
          ExprPtr item = conditional();
          if (!item) return nullptr;
          e->args.push_back(item);
          if (eat("]")) break;
          if (!eat(",")) return fail("expected ',' or ']' in a list");
        }
      }
      return e;
    }
    if (c == '\'' || c == '"') {
      ++i_;
      std::string s;
      while (i_ < t_.size() && t_[i_] != c) {
        if (t_[i_] == '\\' && i_ + 1 < t_.size()) ++i_;  // \' and \\ inside quotes
        s.push_back(t_[i_++]);
      }
      if (i_ >= t_.size()) return fail("unterminated string");
      ++i_;
      auto e = node(Expr::Op::literal, pos);
      e->value = Json::string(s);
      return e;
    }
    if (is_digit(c) || (c == '-' && i_ + 1 < t_.size() && is_digit(t_[i_ + 1]))) {
      const std::size_t start = i_;
      if (c == '-') ++i_;
      while (i_ < t_.size() && is_digit(t_[i_])) ++i_;
      if (i_ + 1 < t_.size() && t_[i_] == '.' && is_digit(t_[i_ + 1])) {
        ++i_;
        while (i_ < t_.size() && is_digit(t_[i_])) ++i_;
      }
      auto e = node(Expr::Op::literal, pos);
      e->value = Json::number(std::string(t_.substr(start, i_ - start)));
      return e;
    }
    if (c == '$') {
      ++i_;
      const std::size_t start = i_;
      while (i_ < t_.size() && is_ident(t_[i_])) ++i_;
      if (i_ == start) return fail("expected a variable name after '$'");
      auto e = node(Expr::Op::variable, pos);
      e->name = std::string(t_.substr(start, i_ - start));
      return e;
    }
    if (is_upper(c)) {
      const bool seg = i_ + 3 <= t_.size() && (is_upper(t_[i_ + 1]) || is_digit(t_[i_ + 1])) &&
                       (is_upper(t_[i_ + 2]) || is_digit(t_[i_ + 2])) &&
                       (i_ + 3 == t_.size() || !is_ident(t_[i_ + 3]));
      if (seg) return path();
      return fail("expected an HL7 path such as OBX-5 (a segment ID is three capitals or digits)");
    }
    if (is_ident_start(c)) {
      const std::size_t start = i_;
      while (i_ < t_.size() && is_ident(t_[i_])) ++i_;
      const std::string word(t_.substr(start, i_ - start));
      if (word == "true" || word == "false") {
        auto e = node(Expr::Op::literal, pos);
        e->value = Json::boolean(word == "true");
        return e;
      }
      if (word == "null") return node(Expr::Op::literal, pos);
      if (!eat("(")) {
        i_ = start;
        return fail("'" + word + "' is not a value: functions are called as " + word +
                    "(...), variables start with '$', HL7 paths look like OBX-5");
      }
      auto e = node(Expr::Op::call, pos);
      e->name = word;
      if (!eat(")")) {
        for (;;) {
          ExprPtr arg = conditional();
          if (!arg) return nullptr;
          e->args.push_back(arg);
          if (eat(")")) break;
          if (!eat(",")) return fail("expected ',' or ')' in the call of " + word);
        }
      }
      e->function = fns_.index_of(word);
      std::string why = fns_.check_call(word, e->args.size());
      if (why.empty()) why = fns_.check_arguments(*e);
      if (!why.empty()) {
        failed_ = true;
        error_ = make_error(Errc::bad_config, why, pos.to_string());
        return nullptr;
      }
      return e;
    }
    return fail("unexpected '" + std::string(1, c) + "'");
  }

  std::string_view t_;
  SourcePos base_;
  const FunctionCatalog& fns_;
  std::size_t i_ = 0;
  bool failed_ = false;
  Error error_;
};

}  // namespace

Result<ExprPtr> parse_expression(std::string_view text, const SourcePos& pos,
                                 const FunctionCatalog& functions) {
  return Parser(text, pos, functions).parse();
}

}  // namespace adapter::mapping
