#include "mapping/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <sys/single_threaded.h>

#include "common/json_text.h"

namespace adapter::mapping {

// ---------------------------------------------------------------------------------------------
// Blocks

namespace {

// A per-thread pool of blocks by size (16-byte steps up to 512 bytes). A mapping makes and
// drops hundreds of short-lived blocks of a few sizes, more than glibc's per-thread cache holds
// (7 per size), so that without it most of them went through malloc's slower paths. Blocks freed
// on another thread join that thread's pool; each size keeps at most kKept, the rest go back to
// the heap, so a thread that only frees does not hoard memory.
constexpr std::size_t kStep = 16;
// Under AddressSanitizer every block goes to the heap, so that a use after free is still caught.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::size_t kClasses = 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr std::size_t kClasses = 0;
#else
constexpr std::size_t kClasses = 32;
#endif
#else
constexpr std::size_t kClasses = 32;
#endif
constexpr std::uint32_t kKept = 512;

struct FreeBlock {
  FreeBlock* next;
};
struct Pool {
  FreeBlock* heads[kClasses + 1];  // (+1: no zero-length arrays)
  std::uint32_t counts[kClasses + 1];
  bool registered;  // the drain below exists for this thread
  bool drained;     // the thread is ending: blocks go straight back to the heap
};
constinit thread_local Pool pool{};

void drain_pool() {
  for (std::size_t c = 0; c < kClasses; ++c) {
    while (FreeBlock* b = pool.heads[c]) {
      pool.heads[c] = b->next;
      ::operator delete(b);
    }
    pool.counts[c] = 0;
  }
}
struct PoolDrain {
  ~PoolDrain() {
    drain_pool();
    pool.drained = true;
  }
};
thread_local PoolDrain pool_drain;

std::size_t size_class(std::size_t bytes) {
  return (bytes + kStep - 1) / kStep - 1;
}

void* allocate_block(std::size_t bytes) {
  const std::size_t c = size_class(bytes);
  if (c < kClasses) {
    if (FreeBlock* b = pool.heads[c]) {
      pool.heads[c] = b->next;
      --pool.counts[c];
      return b;
    }
    return ::operator new((c + 1) * kStep);
  }
  return ::operator new(bytes);
}

void free_block(void* block, std::size_t bytes) {
  const std::size_t c = size_class(bytes);
  if (c < kClasses && !pool.drained && pool.counts[c] < kKept) {
    if (!pool.registered) {
      pool.registered = true;
      (void)&pool_drain;  // constructs it, so that it drains the pool when the thread ends
    }
    auto* b = static_cast<FreeBlock*>(block);
    b->next = pool.heads[c];
    pool.heads[c] = b;
    ++pool.counts[c];
    return;
  }
  ::operator delete(block);
}

std::size_t payload_bytes(Json::Kind kind, std::size_t size) {
  switch (kind) {
    case Json::Kind::array:
      return size * sizeof(Json);
    case Json::Kind::object:
      return size * sizeof(JsonMember);
    default:
      return size;
  }
}

Json::Rep* new_rep(Json::Kind kind, std::size_t size) {
  auto* rep =
      static_cast<Json::Rep*>(allocate_block(sizeof(Json::Rep) + payload_bytes(kind, size)));
  new (rep) Json::Rep{{1}, static_cast<std::uint32_t>(size), kind};
  return rep;
}

}  // namespace

void Json::retain(Rep* rep) noexcept {
  // One thread (translate, the benchmarks): no need for an atomic instruction, as libstdc++
  // does for shared_ptr.
  if (__libc_single_threaded) {
    rep->refs.store(rep->refs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    rep->refs.fetch_add(1, std::memory_order_relaxed);
  }
}

void Json::release(Json& j) noexcept {
  Rep* rep = j.heap_.rep;
  std::uint32_t left = 0;
  if (__libc_single_threaded) {
    left = rep->refs.load(std::memory_order_relaxed) - 1;
    rep->refs.store(left, std::memory_order_relaxed);
  } else {
    left = rep->refs.fetch_sub(1, std::memory_order_acq_rel) - 1;
  }
  if (left != 0) return;
  if (rep->kind == Kind::array) {
    for (std::uint32_t i = 0; i < rep->size; ++i) rep->items()[i].~Json();
  } else if (rep->kind == Kind::object) {
    for (std::uint32_t i = 0; i < rep->size; ++i) rep->members()[i].~JsonMember();
  }
  const std::size_t bytes = sizeof(Rep) + payload_bytes(rep->kind, rep->size);
  rep->~Rep();
  free_block(rep, bytes);
}

Json Json::text_value(Kind kind, std::string_view text) {
  Json j;
  j.in_.kind = kind;
  if (text.size() <= kInline) {
    j.in_.tag = static_cast<std::uint8_t>(text.size());
    if (!text.empty()) std::memcpy(j.in_.chars, text.data(), text.size());
    return j;
  }
  Rep* rep = new_rep(kind, text.size());
  std::memcpy(rep->payload(), text.data(), text.size());
  j.heap_.tag = kHeap;
  j.heap_.rep = rep;
  return j;
}

Json Json::string(std::string_view a, std::string_view b) {
  const std::size_t size = a.size() + b.size();
  Json j;
  j.in_.kind = Kind::string;
  char* out = nullptr;
  if (size <= kInline) {
    j.in_.tag = static_cast<std::uint8_t>(size);
    out = j.in_.chars;
  } else {
    Rep* rep = new_rep(Kind::string, size);
    j.heap_.tag = kHeap;
    j.heap_.rep = rep;
    out = rep->payload();
  }
  if (!a.empty()) std::memcpy(out, a.data(), a.size());
  if (!b.empty()) std::memcpy(out + a.size(), b.data(), b.size());
  return j;
}

// An array or object block holding `elements`, moved out of where they were.
template <class Element>
Json Json::adopt(Kind kind, std::span<Element> elements) {
  Json j;
  j.heap_.kind = kind;
  j.heap_.tag = kHeap;
  if (elements.empty()) return j;  // no block: an empty array or object
  Rep* rep = new_rep(kind, elements.size());
  auto* at = reinterpret_cast<Element*>(rep->payload());  // NOLINT: the block's tail
  for (std::size_t i = 0; i < elements.size(); ++i) new (at + i) Element(std::move(elements[i]));
  j.heap_.rep = rep;
  return j;
}

Json Json::adopt_array(std::span<Json> items) {
  return adopt(Kind::array, items);
}

Json Json::adopt_object(std::span<JsonMember> members) {
  return adopt(Kind::object, members);
}

Json Json::array(JsonArray items) {
  return adopt_array(items);
}

Json Json::object(JsonObject members) {
  std::vector<JsonMember> held;
  held.reserve(members.size());
  for (auto& member : members)
    held.push_back({Json::string(member.first), std::move(member.second)});
  return adopt_object(held);
}

JsonObject Json::object_members() const {
  JsonObject out;
  for (const JsonMember& m : as_object()) out.emplace_back(std::string(m.name()), m.value);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Values

Json Json::number(double value) {
  if (!std::isfinite(value)) return Json();
  char buf[64];
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(value));
    return number(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
  }
  // Shortest text that reads back as the same double (to_chars' guarantee), in plain notation
  // where that is short enough (FHIR decimals allow exponents, but people read these).
  auto r = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::general);
  return number(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
}

double Json::as_double() const {
  return std::strtod(std::string(number_text()).c_str(), nullptr);
}

namespace {

// Nearly every string in a FHIR Bundle (keys, codes, URLs, display text) is plain printable
// ASCII without '"' or '\\': those are copied whole; anything else goes through
// append_json_string, which escapes and checks UTF-8.
// True when no byte of `text` is below 0x20, 0x7F or above, '"' or '\\'. Eight bytes at a time:
// a byte test below can flag a byte that is fine only when a lower byte of the same word really
// matched (a borrow), so the answer is exact. Most strings are short (member names, codes): one
// word padded with spaces, and a longer one's tail is its last eight bytes read again, so no
// string is tested byte by byte.
bool plain_ascii(std::string_view text) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  auto any_below = [&](std::uint64_t w, std::uint64_t n) {
    return ((w - n * kOnes) & ~w & kHigh) != 0;
  };
  auto any_equal = [&](std::uint64_t w, std::uint64_t c) { return any_below(w ^ (c * kOnes), 1); };
  auto plain = [&](std::uint64_t w) {
    return (w & kHigh) == 0 && !any_below(w, 0x20) && !any_equal(w, '"') && !any_equal(w, '\\') &&
           !any_equal(w, 0x7F);
  };
  const std::size_t n = text.size();
  if (n == 0) return true;
  std::uint64_t w = 0x2020202020202020ULL;  // spaces: plain
  if (n < 8) {
    std::memcpy(&w, text.data(), n);
    return plain(w);
  }
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    std::memcpy(&w, text.data() + i, 8);
    if (!plain(w)) return false;
  }
  if (n % 8 == 0) return true;
  std::memcpy(&w, text.data() + n - 8, 8);
  return plain(w);
}

// Writes into `out` past its current size. Every token takes the room it needs in one step
// (room()), so that a member costs one capacity check and one copy for `,"key":` instead of a
// push_back or append per piece; `out` is grown ahead and cut to what was written at the end.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out), used_(out.size()) {}
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  ~Writer() { out_.resize(used_); }

  char* room(std::size_t n) {
    if (out_.size() - used_ < n) {
      // Up to the capacity first (the text may have been cut back to escape a string).
      const std::size_t needed = used_ + n;
      out_.resize(needed <= out_.capacity() ? out_.capacity()
                                            : std::max(out_.capacity() * 2, needed + 1024));
    }
    char* at = out_.data() + used_;
    used_ += n;
    return at;
  }
  void put(char c) { *room(1) = c; }
  void put(std::string_view s) {
    if (!s.empty()) std::memcpy(room(s.size()), s.data(), s.size());
  }
  // `prefix` (a comma, or nothing), then the text as a JSON string, then `suffix` (":" after a
  // key): plain text in one copy, anything else escaped by append_json_string.
  void put_string(std::string_view prefix, std::string_view text, std::string_view suffix) {
    if (plain_ascii(text)) {
      char* at = room(prefix.size() + text.size() + 2 + suffix.size());
      for (const char c : prefix) *at++ = c;
      *at++ = '"';
      if (!text.empty()) std::memcpy(at, text.data(), text.size());
      at += text.size();
      *at++ = '"';
      for (const char c : suffix) *at++ = c;
      return;
    }
    put(prefix);
    out_.resize(used_);
    append_json_string(out_, text);
    used_ = out_.size();
    put(suffix);
  }
  void newline(int depth) {
    char* at = room(1 + static_cast<std::size_t>(depth) * 2);
    *at = '\n';
    std::memset(at + 1, ' ', static_cast<std::size_t>(depth) * 2);
  }

 private:
  std::string& out_;
  std::size_t used_;
};

void dump_to(Writer& out, const Json& v, bool pretty, int depth) {
  switch (v.kind()) {
    case Json::Kind::null:
      out.put("null");
      return;
    case Json::Kind::boolean:
      out.put(v.as_bool() ? std::string_view("true") : std::string_view("false"));
      return;
    case Json::Kind::number:
      out.put(v.number_text());
      return;
    case Json::Kind::string:
      out.put_string({}, v.as_string(), {});
      return;
    case Json::Kind::array: {
      const auto& items = v.as_array();
      if (items.empty()) {
        out.put("[]");
        return;
      }
      out.put('[');
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out.put(',');
        if (pretty) out.newline(depth + 1);
        dump_to(out, items[i], pretty, depth + 1);
      }
      if (pretty) out.newline(depth);
      out.put(']');
      return;
    }
    case Json::Kind::object: {
      const auto& members = v.as_object();
      if (members.empty()) {
        out.put("{}");
        return;
      }
      out.put('{');
      for (std::size_t i = 0; i < members.size(); ++i) {
        const std::string_view comma = i > 0 ? std::string_view(",") : std::string_view();
        if (pretty) {
          out.put(comma);
          out.newline(depth + 1);
          out.put_string({}, members[i].name(), ": ");
        } else {
          out.put_string(comma, members[i].name(), ":");
        }
        dump_to(out, members[i].value, pretty, depth + 1);
      }
      if (pretty) out.newline(depth);
      out.put('}');
      return;
    }
  }
}

}  // namespace

std::string Json::dump(bool pretty) const {
  // Room for what this thread dumped last: a mapping worker dumps Bundles of much the same size
  // one after another, and growing the text by doubling copied it ten times over.
  thread_local std::size_t last_size = 0;
  std::string out;
  out.reserve(std::min<std::size_t>(last_size + last_size / 8, std::size_t{1} << 24));
  {
    Writer w(out);
    mapping::dump_to(w, *this, pretty, 0);
  }
  last_size = out.size();
  return out;
}

void Json::dump_to(std::string& out) const {
  Writer w(out);
  mapping::dump_to(w, *this, false, 0);
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
      return std::equal(a.as_array().begin(), a.as_array().end(), b.as_array().begin(),
                        b.as_array().end());
    case Json::Kind::object:
      return std::equal(a.as_object().begin(), a.as_object().end(), b.as_object().begin(),
                        b.as_object().end(), [](const JsonMember& x, const JsonMember& y) {
                          return x.name() == y.name() && x.value == y.value;
                        });
  }
  return false;
}

namespace {

std::string short_dump(const Json& v) {
  std::string s = v.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

std::string member_path(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : std::string(path).append(".").append(key);
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
    const auto ea = e.as_array();
    const auto aa = a.as_array();
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
    for (const JsonMember& m : e.as_object()) {
      const std::string_view k = m.name();
      const Json& v = m.value;
      const std::string p = member_path(path, k);
      if (const Json* other = a.find(k)) {
        diff(v, *other, p, out, max);
      } else if (out.size() < max) {
        out.push_back(p + ": missing " + short_dump(v));
      }
    }
    for (const JsonMember& m : a.as_object()) {
      if (e.find(m.name()) == nullptr && out.size() < max) {
        out.push_back(
            member_path(path, m.name()).append(": unexpected ").append(short_dump(m.value)));
      }
    }
    if (out.empty() || out.back().rfind(here, 0) != 0) {
      // Same members, other order.
      bool same_members = e.as_object().size() == a.as_object().size();
      if (same_members && out.size() < max && !(e == a)) {
        bool reordered = true;
        for (const JsonMember& m : e.as_object())
          reordered = reordered && a.find(m.name()) != nullptr && *a.find(m.name()) == m.value;
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
