#include "mapping/json.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/json_text.h"

namespace adapter::mapping {

Json Json::number(double value) {
  if (!std::isfinite(value)) return Json();
  char buf[64];
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(value));
    return number(std::string(buf, r.ptr));
  }
  // Shortest text that reads back as the same double (to_chars' guarantee), in plain notation
  // where that is short enough (FHIR decimals allow exponents, but people read these).
  auto r = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::general);
  return number(std::string(buf, r.ptr));
}

double Json::as_double() const {
  return std::strtod(number_text().c_str(), nullptr);
}

const Json* Json::find(std::string_view key) const {
  if (!is_object()) return nullptr;
  for (const auto& [k, v] : as_object()) {
    if (k == key) return &v;
  }
  return nullptr;
}

bool Json::is_empty() const {
  switch (kind()) {
    case Kind::null:
      return true;
    case Kind::string:
      return as_string().empty();
    case Kind::array:
      return as_array().empty();
    case Kind::object:
      return as_object().empty();
    default:
      return false;
  }
}

namespace {

// Nearly every string in a FHIR Bundle (keys, codes, URLs, display text) is plain printable
// ASCII without '"' or '\\': those are copied whole; anything else goes through
// append_json_string, which escapes and checks UTF-8.
// True when no byte of `text` is below 0x20, 0x7F or above, '"' or '\\'. Eight bytes at a time:
// a byte test below can flag a byte that is fine only when a lower byte of the same word really
// matched (a borrow), so the answer is exact.
bool plain_ascii(std::string_view text) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  auto any_below = [&](std::uint64_t w, std::uint64_t n) {
    return ((w - n * kOnes) & ~w & kHigh) != 0;
  };
  auto any_equal = [&](std::uint64_t w, std::uint64_t c) { return any_below(w ^ (c * kOnes), 1); };
  std::size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, text.data() + i, 8);
    if ((w & kHigh) != 0 || any_below(w, 0x20) || any_equal(w, '"') || any_equal(w, '\\') ||
        any_equal(w, 0x7F)) {
      return false;
    }
  }
  for (; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u < 0x20 || u >= 0x7F || u == '"' || u == '\\') return false;
  }
  return true;
}

void append_string(std::string& out, std::string_view text) {
  if (!plain_ascii(text)) {
    append_json_string(out, text);
    return;
  }
  out.push_back('"');
  out.append(text);
  out.push_back('"');
}

void dump_to(std::string& out, const Json& v, bool pretty, int depth) {
  auto newline = [&](int d) {
    if (!pretty) return;
    out.push_back('\n');
    out.append(static_cast<std::size_t>(d) * 2, ' ');
  };
  switch (v.kind()) {
    case Json::Kind::null:
      out += "null";
      return;
    case Json::Kind::boolean:
      out += v.as_bool() ? "true" : "false";
      return;
    case Json::Kind::number:
      out += v.number_text();
      return;
    case Json::Kind::string:
      append_string(out, v.as_string());
      return;
    case Json::Kind::array: {
      const auto& items = v.as_array();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out.push_back(',');
        newline(depth + 1);
        dump_to(out, items[i], pretty, depth + 1);
      }
      newline(depth);
      out.push_back(']');
      return;
    }
    case Json::Kind::object: {
      const auto& members = v.as_object();
      if (members.empty()) {
        out += "{}";
        return;
      }
      out.push_back('{');
      for (std::size_t i = 0; i < members.size(); ++i) {
        if (i > 0) out.push_back(',');
        newline(depth + 1);
        append_string(out, members[i].first);
        out += pretty ? ": " : ":";
        dump_to(out, members[i].second, pretty, depth + 1);
      }
      newline(depth);
      out.push_back('}');
      return;
    }
  }
}

}  // namespace

std::string Json::dump(bool pretty) const {
  std::string out;
  dump_to(out, *this, pretty, 0);
  return out;
}

bool operator==(const Json& a, const Json& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Json::Kind::null:
      return true;
    case Json::Kind::boolean:
      return a.as_bool() == b.as_bool();
    case Json::Kind::number:
      return a.number_text() == b.number_text();
    case Json::Kind::string:
      return a.as_string() == b.as_string();
    case Json::Kind::array:
      return a.as_array() == b.as_array();
    case Json::Kind::object:
      return a.as_object() == b.as_object();
  }
  return false;
}

namespace {

std::string short_dump(const Json& v) {
  std::string s = v.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

std::string member_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : std::string(path).append(".").append(key);
}

void diff(const Json& e, const Json& a, const std::string& path, std::vector<std::string>& out,
          std::size_t max) {
  if (out.size() >= max || e == a) return;
  const std::string here = path.empty() ? "(root)" : path;
  if (e.kind() != a.kind()) {
    out.push_back(here + ": expected " + short_dump(e) + ", got " + short_dump(a));
    return;
  }
  if (e.is_array()) {
    const auto& ea = e.as_array();
    const auto& aa = a.as_array();
    for (std::size_t i = 0; i < std::max(ea.size(), aa.size()) && out.size() < max; ++i) {
      const std::string p = path + "[" + std::to_string(i) + "]";
      if (i >= ea.size()) {
        out.push_back(p + ": unexpected " + short_dump(aa[i]));
      } else if (i >= aa.size()) {
        out.push_back(p + ": missing " + short_dump(ea[i]));
      } else {
        diff(ea[i], aa[i], p, out, max);
      }
    }
    return;
  }
  if (e.is_object()) {
    for (const auto& [k, v] : e.as_object()) {
      const std::string p = member_path(path, k);
      if (const Json* other = a.find(k)) {
        diff(v, *other, p, out, max);
      } else if (out.size() < max) {
        out.push_back(p + ": missing " + short_dump(v));
      }
    }
    for (const auto& [k, v] : a.as_object()) {
      if (e.find(k) == nullptr && out.size() < max) {
        out.push_back(member_path(path, k).append(": unexpected ").append(short_dump(v)));
      }
    }
    if (out.empty() || out.back().rfind(here, 0) != 0) {
      // Same members, other order.
      bool same_members = e.as_object().size() == a.as_object().size();
      if (same_members && out.size() < max && !(e == a)) {
        bool reordered = true;
        for (const auto& [k, v] : e.as_object())
          reordered = reordered && a.find(k) != nullptr && *a.find(k) == v;
        if (reordered) out.push_back(here + ": same members in another order");
      }
    }
    return;
  }
  out.push_back(here + ": expected " + short_dump(e) + ", got " + short_dump(a));
}

}  // namespace

std::vector<std::string> json_diff(const Json& expected, const Json& actual, std::size_t max) {
  std::vector<std::string> out;
  diff(expected, actual, "", out, max);
  return out;
}

void set_member(JsonObject& members, std::string_view key, Json value) {
  for (auto& member : members) {
    if (member.first == key) {
      member.second = std::move(value);
      return;
    }
  }
  members.emplace_back(std::string(key), std::move(value));
}

}  // namespace adapter::mapping
