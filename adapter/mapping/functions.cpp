#include "mapping/functions.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "common/sha256.h"
#include "mapping/datetime.h"
#include "mapping/evaluator.h"
#include "xml/xpath.h"

namespace adapter::mapping {
namespace {

using Args = std::vector<Value>;
using Fn = Value (*)(Evaluator&, const Expr&, Args&);

bool parse_decimal(const std::string& s, std::string& canonical) {
  // FHIR decimal: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? ; v2 NM also allows "+", ".5",
  // "5."
  std::string t = s;
  while (!t.empty() && t.front() == ' ') t.erase(t.begin());
  while (!t.empty() && t.back() == ' ') t.pop_back();
  if (!t.empty() && t.front() == '+') t.erase(t.begin());
  bool neg = false;
  if (!t.empty() && t.front() == '-') {
    neg = true;
    t.erase(t.begin());
  }
  if (t.empty()) return false;
  std::size_t dot = t.find('.');
  std::string ip = t.substr(0, dot);
  std::string fp = dot == std::string::npos ? "" : t.substr(dot + 1);
  if (ip.empty() && fp.empty()) return false;
  auto all_digits = [](const std::string& x) {
    return std::all_of(x.begin(), x.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!all_digits(ip) || !all_digits(fp)) return false;
  while (ip.size() > 1 && ip.front() == '0') ip.erase(ip.begin());
  if (ip.empty()) ip = "0";
  canonical = (neg && (ip != "0" || fp.find_first_not_of('0') != std::string::npos) ? "-" : "") +
              ip + (fp.empty() ? "" : "." + fp);
  return true;
}

Value str(std::string_view s) {
  return s.empty() ? Value() : Value::string(s);
}

std::string arg_text(Evaluator& ev, Args& a, std::size_t i) {
  return i < a.size() ? ev.text(a[i]).value_or("") : std::string();
}

// The same text without a copy, valid while `scratch` and the argument are (see text_view).
std::string_view arg_view(Evaluator& ev, Args& a, std::size_t i, std::string& scratch) {
  return i < a.size() ? ev.text_view(a[i], scratch).value_or(std::string_view())
                      : std::string_view();
}

// ---- text

Value f_text(Evaluator& ev, const Expr&, Args& a) {
  return str(arg_text(ev, a, 0));
}
Value f_upper(Evaluator& ev, const Expr&, Args& a) {
  std::string s = arg_text(ev, a, 0);
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  return str(s);
}
Value f_lower(Evaluator& ev, const Expr&, Args& a) {
  std::string s = arg_text(ev, a, 0);
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return str(s);
}
Value f_trim(Evaluator& ev, const Expr&, Args& a) {
  std::string s = arg_text(ev, a, 0);
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return Value();
  const auto e = s.find_last_not_of(" \t\r\n");
  return str(s.substr(b, e - b + 1));
}
Value f_replace(Evaluator& ev, const Expr&, Args& a) {
  std::string s = arg_text(ev, a, 0);
  const std::string from = arg_text(ev, a, 1);
  const std::string to = arg_text(ev, a, 2);
  if (from.empty()) return str(s);
  std::string out;
  std::size_t pos = 0;
  for (std::size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out += to;
  }
  out.append(s, pos, std::string::npos);
  return str(out);
}
Value f_substring(Evaluator& ev, const Expr&, Args& a) {
  const std::string s = arg_text(ev, a, 0);
  const long start = std::atol(arg_text(ev, a, 1).c_str());
  if (start < 0 || static_cast<std::size_t>(start) >= s.size()) return Value();
  const std::size_t len =
      a.size() > 2 ? static_cast<std::size_t>(std::max(0L, std::atol(arg_text(ev, a, 2).c_str())))
                   : std::string::npos;
  return str(s.substr(static_cast<std::size_t>(start), len));
}
Value f_starts_with(Evaluator& ev, const Expr&, Args& a) {
  std::string scratch_s;
  std::string scratch_p;
  const std::string_view s = arg_view(ev, a, 0, scratch_s);
  const std::string_view p = arg_view(ev, a, 1, scratch_p);
  return Value(Json::boolean(!p.empty() && s.substr(0, p.size()) == p));
}
Value f_ends_with(Evaluator& ev, const Expr&, Args& a) {
  std::string scratch_s;
  std::string scratch_p;
  const std::string_view s = arg_view(ev, a, 0, scratch_s);
  const std::string_view p = arg_view(ev, a, 1, scratch_p);
  return Value(Json::boolean(!p.empty() && s.size() >= p.size() &&
                             s.compare(s.size() - p.size(), p.size(), p) == 0));
}
Value f_contains(Evaluator& ev, const Expr&, Args& a) {
  std::string scratch_s;
  std::string scratch_p;
  const std::string_view p = arg_view(ev, a, 1, scratch_p);
  return Value(
      Json::boolean(!p.empty() && arg_view(ev, a, 0, scratch_s).find(p) != std::string_view::npos));
}
Value f_split(Evaluator& ev, const Expr&, Args& a) {
  const std::string s = arg_text(ev, a, 0);
  const std::string sep = arg_text(ev, a, 1);
  ValueList out;
  if (s.empty()) return Value::list({});
  if (sep.empty()) return Value::list({Value::string(s)});
  std::size_t pos = 0;
  for (;;) {
    const std::size_t hit = s.find(sep, pos);
    std::string part = s.substr(pos, hit == std::string::npos ? std::string::npos : hit - pos);
    if (!part.empty()) out.push_back(Value::string(std::move(part)));
    if (hit == std::string::npos) break;
    pos = hit + sep.size();
  }
  return Value::list(std::move(out));
}
Value f_join(Evaluator& ev, const Expr&, Args& a) {
  std::string out;
  const std::string sep = arg_text(ev, a, 1);
  bool first = true;
  std::string scratch;
  for (const Value& v : ev.to_list(a.empty() ? Value() : a[0])) {
    const auto t = ev.text_view(v, scratch);
    if (!t || t->empty()) continue;
    if (!first) out += sep;
    out += *t;
    first = false;
  }
  return str(out);
}
Value f_concat(Evaluator& ev, const Expr&, Args& a) {
  std::string out;
  std::string scratch;
  for (const Value& v : a) out += ev.text_view(v, scratch).value_or("");
  return str(out);
}
Value f_length(Evaluator& ev, const Expr&, Args& a) {
  return ev.count_value(arg_text(ev, a, 0).size());
}

// ---- presence and lists

Value f_exists(Evaluator& ev, const Expr&, Args& a) {
  return Value(Json::boolean(ev.truthy(a[0])));
}
Value f_empty(Evaluator& ev, const Expr&, Args& a) {
  return Value(Json::boolean(!ev.truthy(a[0])));
}
Value f_coalesce(Evaluator& ev, const Expr&, Args& a) {
  for (const Value& v : a) {
    if (ev.truthy(v)) return v;
  }
  return Value();
}
// count(), first() and in() take what to_list() would give without copying a list: they run
// in filters and conditions, once per candidate segment.
std::size_t element_count(const Value& v) {
  if (v.is_list()) return v.items().size();
  if (v.is_nothing()) return 0;
  if (v.is_json() && v.json().is_array()) return v.json().as_array().size();
  return 1;
}
Value f_count(Evaluator& ev, const Expr&, Args& a) {
  return ev.count_value(element_count(a[0]));
}
Value f_first(Evaluator& ev, const Expr&, Args& a) {
  if (a[0].is_list()) return a[0].items().empty() ? Value() : a[0].items().front();
  auto l = ev.to_list(a[0]);
  return l.empty() ? Value() : l.front();
}
Value f_last(Evaluator& ev, const Expr&, Args& a) {
  auto l = ev.to_list(a[0]);
  return l.empty() ? Value() : l.back();
}
Value f_in(Evaluator& ev, const Expr&, Args& a) {
  std::string scratch;
  const auto x = ev.text_view(a[0], scratch);
  if (!x) return Value(Json::boolean(false));
  std::string other;
  auto equal = [&](const Value& v) { return ev.text_view(v, other) == x; };
  for (std::size_t i = 1; i < a.size(); ++i) {
    if (a[i].is_list()) {
      for (const Value& v : a[i].items()) {
        if (equal(v)) return Value(Json::boolean(true));
      }
    } else if (a[i].is_json() && !a[i].json().is_array()) {
      if (!a[i].is_nothing() && equal(a[i])) return Value(Json::boolean(true));
    } else {
      for (const Value& v : ev.to_list(a[i])) {
        if (equal(v)) return Value(Json::boolean(true));
      }
    }
  }
  return Value(Json::boolean(false));
}
Value f_distinct(Evaluator& ev, const Expr&, Args& a) {
  ValueList out;
  std::vector<std::string> seen;
  for (const Value& v : ev.to_list(a[0])) {
    auto t = ev.text(v);
    if (!t || std::find(seen.begin(), seen.end(), *t) != seen.end()) continue;
    seen.push_back(*t);
    out.push_back(v);
  }
  return Value::list(std::move(out));
}

// ---- HL7 structure

Value f_groups(Evaluator& ev, const Expr&, Args& a) {
  std::string scratch;
  return ev.group_list(ev.text_view(a[0], scratch).value_or(""));
}
Value f_subid_groups(Evaluator& ev, const Expr&, Args&) {
  return ev.subid_group_list();
}
Value f_subid_key(Evaluator& ev, const Expr&, Args& a) {
  std::string scratch;
  return str(subid_group_key(arg_view(ev, a, 0, scratch)));
}
Value f_notes(Evaluator& ev, const Expr&, Args&) {
  return Value::list(ev.notes());
}
Value f_segments(Evaluator& ev, const Expr&, Args& a) {
  return Value::list(ev.segments(arg_text(ev, a, 0)));
}
Value f_repetitions(Evaluator& ev, const Expr&, Args& a) {
  if (!a[0].is_hl7() || a[0].hl7().field == 0 || ev.message() == nullptr) return Value::list({});
  const Hl7Ref r = a[0].hl7();
  const std::size_t n = ev.message()->segment(r.segment).field(r.field).repetition_count();
  ValueList out;
  for (std::uint32_t i = 1; i <= n; ++i) {
    Hl7Ref x = r;
    x.repetition = i;
    out.push_back(Value(x));
  }
  return Value::list(std::move(out));
}
Value f_is_null(Evaluator& ev, const Expr&, Args& a) {
  if (!a[0].is_hl7() || ev.message() == nullptr || a[0].hl7().field == 0)
    return Value(Json::boolean(false));
  const Hl7Ref r = a[0].hl7();
  hl7v2::Value v =
      ev.message()->segment(r.segment).field(r.field).repetition(r.repetition ? r.repetition : 1);
  if (r.component) v = v.component(r.component);
  if (r.subcomponent) v = v.subcomponent(r.subcomponent);
  ev.consume(a[0]);
  return Value(Json::boolean(v.is_null()));
}
Value f_path(Evaluator& ev, const Expr&, Args& a) {
  return str(ev.source_path(a[0]));
}
Value f_xpath(Evaluator& ev, const Expr& call, Args& a) {
  const auto expression = ev.text(a[0]);
  if (!expression) return Value();
  return ev.xpath(*expression, a.size() > 1 ? &a[1] : nullptr, call.pos);
}
Value f_ignore(Evaluator& ev, const Expr&, Args& a) {
  for (const Value& v : a) ev.consume(v);
  return Value();
}

// ---- numbers, quantities, ranges

Value f_number(Evaluator& ev, const Expr& call, Args& a) {
  const auto t = ev.text(a[0]);
  if (!t) return Value();
  std::string canonical;
  if (!parse_decimal(*t, canonical)) {
    ev.issue(Issue::Severity::error, "'" + *t + "' is not a number", call.pos, &a[0]);
    return Value();
  }
  return Value(Json::number(canonical));
}

Json ucum_quantity(const Json& value, const std::string& unit) {
  JsonObject q;
  q.reserve(4);  // (built member by member: GCC 12 warns falsely on an initializer list here)
  q.emplace_back("value", value);
  if (!unit.empty()) {
    q.emplace_back("unit", Json::string(unit));
    q.emplace_back("system", Json::string("http://unitsofmeasure.org"));
    q.emplace_back("code", Json::string(unit));
  }
  return Json::object(std::move(q));
}

Value f_quantity(Evaluator& ev, const Expr& call, Args& a) {
  Value n = f_number(ev, call, a);
  if (n.is_nothing()) return Value();
  return Value(ucum_quantity(n.json(), arg_text(ev, a, 1)));
}

Value f_range(Evaluator& ev, const Expr& call, Args& a) {
  const std::string unit = arg_text(ev, a, 2);
  JsonObject r;
  Args low{a[0]};
  Args high{a.size() > 1 ? a[1] : Value()};
  Value l = f_number(ev, call, low);
  Value h = f_number(ev, call, high);
  if (!l.is_nothing()) r.emplace_back("low", ucum_quantity(l.json(), unit));
  if (!h.is_nothing()) r.emplace_back("high", ucum_quantity(h.json(), unit));
  return r.empty() ? Value() : Value(Json::object(std::move(r)));
}

// ---- dates

// What a value that cannot be converted costs: an error (the message stops) unless the template
// passed 'warning' as the last argument, to leave the element out and say so.
Issue::Severity bad_value_severity(Evaluator& ev, Args& a, const Expr& call) {
  if (a.size() < 2) return Issue::Severity::error;
  const std::string said = arg_text(ev, a, 1);
  if (said == "warning") return Issue::Severity::warning;
  if (said != "error") {
    ev.issue(Issue::Severity::error, "severity must be 'error' or 'warning', not '" + said + "'",
             call.pos);
  }
  return Issue::Severity::error;
}

Value f_datetime(Evaluator& ev, const Expr& call, Args& a) {
  const auto t = ev.text(a[0]);
  if (!t) return Value();
  const DateTimeResult r = v2_to_fhir_datetime(*t, ev.settings().default_offset_minutes);
  if (r.fhir.empty()) {
    ev.issue(bad_value_severity(ev, a, call), "'" + *t + "' is not a valid date/time: " + r.problem,
             call.pos, &a[0]);
    return Value();
  }
  if (!r.problem.empty()) ev.issue(Issue::Severity::warning, r.problem, call.pos, &a[0]);
  return Value::string(r.fhir);
}

Value f_date(Evaluator& ev, const Expr& call, Args& a) {
  const auto t = ev.text(a[0]);
  if (!t) return Value();
  const DateTimeResult r = v2_to_fhir_date(*t);
  if (r.fhir.empty()) {
    ev.issue(bad_value_severity(ev, a, call), "'" + *t + "' is not a valid date: " + r.problem,
             call.pos, &a[0]);
    return Value();
  }
  return Value::string(r.fhir);
}

// ---- HGVS

Value f_hgvs_accession(Evaluator& ev, const Expr&, Args& a) {
  std::string scratch;
  const std::string_view s = arg_view(ev, a, 0, scratch);
  const std::size_t colon = s.find(':');
  return colon == std::string_view::npos ? Value() : str(std::string(s.substr(0, colon)));
}
Value f_hgvs_change(Evaluator& ev, const Expr&, Args& a) {
  std::string scratch;
  const std::string_view s = arg_view(ev, a, 0, scratch);
  const std::size_t colon = s.find(':');
  return str(std::string(colon == std::string_view::npos ? s : s.substr(colon + 1)));
}

// HGVS shape: an optional reference sequence and ':', then a coordinate type letter and '.'
// (c. g. m. n. p. r.), e.g. NM_007294.3:c.5266dupC or p.Gln1756ProfsTer74. SPDI such as
// NC_000023.11:60465:T:C is not HGVS.
Value f_is_hgvs(Evaluator& ev, const Expr&, Args& a) {
  std::string scratch;
  const std::string_view s = arg_view(ev, a, 0, scratch);
  const std::size_t colon = s.find(':');
  const std::string_view change = colon == std::string_view::npos ? s : s.substr(colon + 1);
  const bool ok = change.size() > 2 && change[1] == '.' &&
                  std::string_view("cgmnpr").find(change[0]) != std::string_view::npos;
  return Value(Json::boolean(ok));
}

// ---- identifiers

// `kind`, a NUL, then the arguments' texts each ended by a unit separator: the key of
// once_per_message().
std::string keyed_text(std::string_view kind, Evaluator& ev, Args& a) {
  std::string key(kind);
  key.push_back('\0');
  std::string scratch;
  for (const Value& v : a) {
    key += ev.text_view(v, scratch).value_or("");
    key.push_back('\x1f');  // unit separator: ("ab","c") and ("a","bc") differ
  }
  return key;
}
Value f_base64(Evaluator& ev, const Expr&, Args& a) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const std::string in = arg_text(ev, a, 0);
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto n = (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16) |
                   (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8) |
                   static_cast<unsigned char>(in[i + 2]);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back(kAlphabet[n & 63]);
  }
  if (i < in.size()) {
    const bool two = i + 1 < in.size();
    const auto n =
        (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16) |
        (two ? static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8 : 0U);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(two ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return str(std::move(out));
}

Value f_hash(Evaluator& ev, const Expr&, Args& a) {
  return Value::borrowed(ev.once_per_message(keyed_text("hash", ev, a), [](std::string_view text) {
    return Json::string(sha256_hex(text));
  }));
}
// A UUID (version-5 layout) from SHA-256 of the arguments: the same inputs always give the same
// fullUrl, so a resent or replayed message produces byte-identical Bundles.
Value f_uuid(Evaluator& ev, const Expr&, Args& a) {
  // The same names give the same uuid in every place of a message (a fullUrl and the references
  // to it): each is made once per message.
  return Value::borrowed(ev.once_per_message(keyed_text("uuid", ev, a), [](std::string_view text) {
    const std::string h = sha256_hex(text);
    // A name-based UUID (version 5 layout: RFC 4122 §4.3) from the first 128 bits.
    char out[45] = "urn:uuid:";
    char* p = out + 9;
    for (std::size_t i = 0; i < 32; ++i) {
      if (i == 8 || i == 12 || i == 16 || i == 20) *p++ = '-';
      char c = h[i];
      if (i == 12) c = '5';
      if (i == 16) {
        static constexpr char kVariant[] = "89ab";
        const int nibble = c >= 'a' ? c - 'a' + 10 : c - '0';
        c = kVariant[nibble & 3];
      }
      *p++ = c;
    }
    return Json::string(std::string_view(out, sizeof out));
  }));
}

// A FHIR token search value "system|value" for ifNoneExist and conditional references: '\\',
// '|', ',' and '$' inside either part escaped as the search syntax requires, then everything but
// unreserved characters, ':' and '/' percent-encoded.
// Percent-encoding of everything outside RFC 3986 "unreserved" (and of `also`).
void append_percent_encoded(std::string& out, std::string_view s, std::string_view keep) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  // RFC 3986 unreserved characters, by byte.
  static constexpr auto kUnreserved = [] {
    std::array<bool, 256> t{};
    for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
    for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
    for (const char c : {'-', '.', '_', '~'}) t[static_cast<unsigned char>(c)] = true;
    return t;
  }();
  out.reserve(out.size() + s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (kUnreserved[u] || keep.find(c) != std::string_view::npos) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
}

std::string percent_encode(std::string_view s, std::string_view keep) {
  std::string out;
  append_percent_encoded(out, s, keep);
  return out;
}

Value f_token(Evaluator& ev, const Expr&, Args& a) {
  std::string scratch_system;
  std::string scratch_value;
  const std::string_view system = arg_view(ev, a, 0, scratch_system);
  const std::string_view value = arg_view(ev, a, 1, scratch_value);
  if (value.empty()) return Value();
  // FHIR search escapes \ | , $ with a backslash; the result is then URL-encoded for the query
  // (the backslash becomes %5C).
  std::string out;
  auto append_part = [&](std::string_view part) {
    std::size_t start = 0;
    for (std::size_t i = 0; i < part.size(); ++i) {
      const char c = part[i];
      if (c == '\\' || c == '|' || c == ',' || c == '$') {
        append_percent_encoded(out, part.substr(start, i - start), ":/");
        out += "%5C";
        start = i;  // the character itself is encoded with what follows
      }
    }
    append_percent_encoded(out, part.substr(start), ":/");
  };
  if (!system.empty()) {
    append_part(system);
    out.push_back('|');
  }
  append_part(value);
  return Value::string(out);
}

Value f_uri_part(Evaluator& ev, const Expr&, Args& a) {
  std::string scratch;
  return str(percent_encode(arg_view(ev, a, 0, scratch), ""));
}

// ---- lookups, partials, issues

Value f_lookup(Evaluator& ev, const Expr& call, Args& a) {
  const Table* bound = call.table;  // a literal name, bound when the templates were loaded
  if (bound == nullptr) {
    const std::string table = arg_text(ev, a, 0);
    const auto it = ev.set().tables.find(table);
    if (it == ev.set().tables.end()) {
      ev.issue(Issue::Severity::error, "no lookup table named '" + table + "'", call.pos);
      return Value();
    }
    bound = &it->second;
  }
  return lookup_in(ev, *bound, a[1], a.size() > 2 ? &a[2] : nullptr, call);
}

}  // namespace

namespace {

// The row of `key_value`'s text in `table`, or null.
const Json* row_of(Evaluator& ev, const Table& table, const Value& key_value) {
  std::string scratch;
  const auto key = ev.text_view(key_value, scratch);
  return key ? table.index.find(*key) : nullptr;
}

}  // namespace

Value lookup_cell(Evaluator& ev, const Table& table, const Value& key_value, int column) {
  const Json* row = row_of(ev, table, key_value);
  if (row == nullptr) return Value();
  const Json& cell = row->as_object()[static_cast<std::size_t>(column)].value;
  return cell.is_empty() ? Value() : Value::borrowed(cell);  // tables outlive the mapping
}

Value lookup_in(Evaluator& ev, const Table& table, const Value& key_value, const Value* column,
                const Expr& call) {
  const Json* found = row_of(ev, table, key_value);
  if (found == nullptr) return Value();
  const Json& row = *found;
  if (column != nullptr) {
    std::string column_scratch;
    const std::string_view name = ev.text_view(*column, column_scratch).value_or("");
    const Json* cell = row.find(name);
    if (cell == nullptr) {
      ev.issue(Issue::Severity::error,
               "table '" + table.name + "' has no column '" + std::string(name) + "'", call.pos);
      return Value();
    }
    return cell->is_empty() ? Value() : Value::borrowed(*cell);  // tables outlive the mapping
  }
  // CSV rows without a column: the second column (key -> value tables).
  if (!table.columns.empty()) {
    if (table.columns.size() < 2) return Value();
    const Json* cell = row.find(table.columns[1]);
    return cell == nullptr || cell->is_empty() ? Value() : Value::borrowed(*cell);
  }
  return Value::borrowed(row);
}

namespace {

Value f_include(Evaluator& ev, const Expr& call, Args& a) {
  const std::span<const Value> rest = std::span<const Value>(a).subspan(1);
  if (call.partial != nullptr) return ev.render_partial(*call.partial, rest);
  return ev.render_partial(arg_text(ev, a, 0), rest, call.pos);
}

Value f_issue(Evaluator& ev, const Expr& call, Args& a) {
  const std::string severity = arg_text(ev, a, 0);
  Issue::Severity s = Issue::Severity::error;
  if (severity == "warning")
    s = Issue::Severity::warning;
  else if (severity == "information")
    s = Issue::Severity::information;
  else if (severity != "error") {
    ev.issue(Issue::Severity::error, "issue() severity must be error, warning or information",
             call.pos);
  }
  ev.issue(s, arg_text(ev, a, 1), call.pos, a.size() > 2 ? &a[2] : nullptr);
  return Value();
}

struct Entry {
  FunctionInfo info;
  Fn fn;
};

const std::vector<Entry>& entries() {
  static const std::vector<Entry> kEntries = {
      {{"text", 1, 1, "text(x)", "decoded text of a value (HL7 escapes resolved)"}, f_text},
      {{"upper", 1, 1, "upper(s)", "upper case (ASCII)"}, f_upper},
      {{"lower", 1, 1, "lower(s)", "lower case (ASCII)"}, f_lower},
      {{"trim", 1, 1, "trim(s)", "without leading and trailing blanks"}, f_trim},
      {{"replace", 3, 3, "replace(s, from, to)", "every occurrence of from replaced"}, f_replace},
      {{"substring", 2, 3, "substring(s, start, length?)", "part of s (start counts from 0)"},
       f_substring},
      {{"starts_with", 2, 2, "starts_with(s, prefix)", "true if s starts with prefix"},
       f_starts_with},
      {{"ends_with", 2, 2, "ends_with(s, suffix)", "true if s ends with suffix"}, f_ends_with},
      {{"contains", 2, 2, "contains(s, part)", "true if part occurs in s"}, f_contains},
      {{"split", 2, 2, "split(s, separator)", "list of the non-empty parts"}, f_split},
      {{"join", 2, 2, "join(list, separator)", "texts of a list joined"}, f_join},
      {{"concat", 1, -1, "concat(a, b, ...)", "texts joined (nothing counts as empty)"}, f_concat},
      {{"length", 1, 1, "length(s)", "length in bytes"}, f_length},
      {{"exists", 1, 1, "exists(x)", "true if x has a value"}, f_exists},
      {{"empty", 1, 1, "empty(x)", "true if x has no value"}, f_empty},
      {{"coalesce", 1, -1, "coalesce(a, b, ...)",
        "the first argument with a value (those after it are not evaluated)"},
       f_coalesce},
      {{"count", 1, 1, "count(list)", "number of elements"}, f_count},
      {{"first", 1, 1, "first(list)", "first element"}, f_first},
      {{"last", 1, 1, "last(list)", "last element"}, f_last},
      {{"in", 2, -1, "in(x, a, b, ...)",
        "true if x's text equals one of the others (lists are searched)"},
       f_in},
      {{"distinct", 1, 1, "distinct(list)", "elements with distinct texts, first kept"},
       f_distinct},
      {{"groups", 1, 1, "groups(kind)",
        "ORU^R01 groups in the context: PATIENT_RESULT, PATIENT, ORDER_OBSERVATION, OBSERVATION, "
        "SPECIMEN"},
       f_groups},
      {{"subid_groups", 0, 0, "subid_groups()",
        "the context's OBX grouped by OBX-4 sub-ID (2a, 1a.a -> 1a, 1.a -> 1a); .key is the group"},
       f_subid_groups},
      {{"subid_key", 1, 1, "subid_key(sub_id)",
        "the variant/region group of an OBX-4 sub-ID: 1a.a -> 1a, 1.a -> 1a"},
       f_subid_key},
      {{"notes", 0, 0, "notes()",
        "the NTE of the innermost observation, order or patient group (not of what it contains)"},
       f_notes},
      {{"segments", 1, 1, "segments(id)",
        "the segments with this ID in the nearest group that has any"},
       f_segments},
      {{"repetitions", 1, 1, "repetitions(field)", "one value per repetition of an HL7 field"},
       f_repetitions},
      {{"is_null", 1, 1, "is_null(field)", "true if the HL7 value is the explicit null \"\""},
       f_is_null},
      {{"path", 1, 1, "path(x)",
        "the location of a value: OBX[4]-5.1 (HL7), /report/variant[2]/gene (XML)"},
       f_path},
      {{"xpath", 1, 2, "xpath(expression, node?)",
        "XML nodes (or a text, number or boolean) selected by XPath 1.0 from node, or from the "
        "XML node in context; prefixes from $namespaces"},
       f_xpath},
      {{"ignore", 1, -1, "ignore(x, ...)",
        "marks values as deliberately not mapped (unmapped report)"},
       f_ignore},
      {{"number", 1, 1, "number(x)",
        "a FHIR decimal (exact text kept); an error issue when x is not a number"},
       f_number},
      {{"quantity", 1, 2, "quantity(value, ucum_unit?)", "Quantity with UCUM system and code"},
       f_quantity},
      {{"range", 2, 3, "range(low, high, ucum_unit?)",
        "Range of two quantities (either may be missing)"},
       f_range},
      {{"datetime", 1, 2, "datetime(dtm, on_bad?)",
        "FHIR dateTime from a v2 DTM/TS: seconds and zone added as FHIR requires (feed default "
        "zone). A bad value is an error, or with on_bad 'warning' left out with a warning"},
       f_datetime},
      {{"date", 1, 2, "date(dtm, on_bad?)",
        "FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) from a v2 DTM/TS; on_bad as for datetime"},
       f_date},
      {{"hgvs_accession", 1, 1, "hgvs_accession(hgvs)",
        "the reference sequence before ':' (NM_007294.3)"},
       f_hgvs_accession},
      {{"is_hgvs", 1, 1, "is_hgvs(s)",
        "true if s looks like an HGVS expression (NM_...:c.123A>G, p.Gln5Ter)"},
       f_is_hgvs},
      {{"hgvs_change", 1, 1, "hgvs_change(hgvs)", "the change after ':' (c.5266dupC)"},
       f_hgvs_change},
      {{"base64", 1, 1, "base64(s)", "s in Base64 (an Attachment's data)"}, f_base64},
      {{"hash", 1, -1, "hash(a, ...)", "SHA-256 (hex) of the arguments' texts"}, f_hash},
      {{"uuid", 1, -1, "uuid(a, ...)",
        "urn:uuid derived from the arguments: deterministic ids and fullUrls"},
       f_uuid},
      {{"token", 2, 2, "token(system, value)",
        "FHIR token search value system|value, escaped for ifNoneExist and conditional references"},
       f_token},
      {{"uri_part", 1, 1, "uri_part(s)",
        "s percent-encoded for use inside a URI (a namespace in an identifier system)"},
       f_uri_part},
      {{"lookup", 2, 3, "lookup(table, key, column?)",
        "a lookup table's value for key (nothing if absent)"},
       f_lookup},
      {{"include", 1, -1, "include(partial, args...)",
        "a partial's output, arguments in $params order"},
       f_include},
      {{"issue", 2, 3, "issue(severity, message, at?)",
        "records a data issue (error stops delivery); yields nothing"},
       f_issue},
  };
  return kEntries;
}

class Catalog : public FunctionCatalog {
 public:
  std::string check_call(std::string_view name, std::size_t n) const override {
    for (const Entry& e : entries()) {
      if (e.info.name != name) continue;
      if (static_cast<int>(n) < e.info.min_args ||
          (e.info.max_args >= 0 && static_cast<int>(n) > e.info.max_args)) {
        return "wrong number of arguments for " + std::string(e.info.signature);
      }
      return {};
    }
    return "unknown function '" + std::string(name) + "' (adapterd functions lists them)";
  }
  int index_of(std::string_view name) const override {
    const auto& all = entries();
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (all[i].info.name == name) return static_cast<int>(i);
    }
    return -1;
  }
  std::string check_arguments(const Expr& call) const override {
    // An XPath written as a literal is compiled when the template loads.
    if (call.name == "xpath" && !call.args.empty() && call.args[0]->op == Expr::Op::literal &&
        call.args[0]->value.is_string()) {
      return xml::check_xpath(call.args[0]->value.as_string());
    }
    return {};
  }
};

}  // namespace

const FunctionCatalog& builtin_functions() {
  static const Catalog kCatalog;
  return kCatalog;
}

const std::vector<FunctionInfo>& function_list() {
  static const std::vector<FunctionInfo> kList = [] {
    std::vector<FunctionInfo> out;
    for (const Entry& e : entries()) out.push_back(e.info);
    return out;
  }();
  return kList;
}

Value call_function(Evaluator& ev, const Expr& call, std::vector<Value>& args) {
  const auto& all = entries();
  if (call.function >= 0 && static_cast<std::size_t>(call.function) < all.size()) {
    return all[static_cast<std::size_t>(call.function)].fn(ev, call, args);
  }
  for (const Entry& e : all) {
    if (e.info.name == call.name) return e.fn(ev, call, args);
  }
  return Value();  // unreachable: the parser checked the name
}

}  // namespace adapter::mapping
