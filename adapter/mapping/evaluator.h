// The template interpreter (internal to mapping/): renders template nodes and evaluates
// expressions against one source message. One Evaluator per mapping; not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "hl7v2/message.h"
#include "hl7v2/oru_r01.h"
#include "mapping/engine.h"
#include "mapping/template.h"
#include "mapping/value.h"
#include "xml/document.h"
#include "xml/xpath.h"

namespace adapter::mapping {

// OBX-4 sub-ID to the variant/region group it belongs to: "2a" -> "2a", "1a.a" -> "1a",
// "1.a" -> "1a", "1" -> "1".
std::string subid_group_key(std::string_view sub_id);

class Evaluator {
 public:
  // Exactly one of `message` (HL7 v2) and `document` (XML) is the source.
  Evaluator(const TemplateSet& set, const Template& tmpl, const hl7v2::Message* message,
            const xml::Document* document, const MappingSettings& settings, MappingResult& result);

  Json render(const TNode& node);
  Value eval(const Expr& e);
  // truthy(eval(e)), without making the value where it can: conditions ($if, filters, ?:, and,
  // or, not) are most of what templates evaluate.
  bool condition(const Expr& e);

  // Conversions used by functions. Reading an HL7 value's text marks it as mapped.
  std::optional<std::string> text(const Value& v);
  // The same text without a copy where it can be: a view into the message, into a JSON string
  // of `v`, or into `scratch` (HL7 escapes decoded, XML text). Valid while `v`, the message and
  // `scratch` are. Most values read are compared, looked up or appended, never kept, so this is
  // what the hot paths use.
  std::optional<std::string_view> text_view(const Value& v, std::string& scratch);
  Json to_json(const Value& v);
  std::vector<Value> to_list(const Value& v);
  bool truthy(const Value& v);

  // make(text), made once per message for each `kind` of value and text, and held while this
  // Evaluator lives: a template names the same resource by uuid() in several places (its
  // fullUrl, the references to it), and hashing is the costly part. `key` is the kind, a NUL,
  // then the text (built by the caller in one string: keyed_text()).
  template <class Make>
  const Json& once_per_message(std::string&& key, Make&& make) {
    auto it = made_.find(key);
    if (it == made_.end()) {
      const std::string_view text = std::string_view(key).substr(key.find('\0') + 1);
      Json made = make(text);
      it = made_.emplace(std::move(key), std::move(made)).first;
    }
    return it->second;
  }
  // A count, length or $index as a number value, made once per message for the small ones.
  Value count_value(std::size_t n);

  void issue(Issue::Severity severity, std::string message, const SourcePos& pos,
             const Value* at = nullptr);
  std::string source_path(const Value& v) const;  // "OBX[4]-5.1" for HL7 places

  const TemplateSet& set() const { return set_; }
  const MappingSettings& settings() const { return settings_; }
  const hl7v2::Message* message() const { return message_; }

  // HL7 structure, relative to the current context.
  std::vector<Value> groups(std::string_view kind);  // ORU^R01 groups inside the context
  std::vector<Value> subid_groups();                 // OBX by OBX-4 sub-ID group
  // groups() and subid_groups() as one list value, built once per message and place.
  Value group_list(std::string_view kind);
  Value subid_group_list();
  std::vector<Value> segments(std::string_view id);  // segments in the innermost group having them
  std::vector<Value> notes();  // NTE of the innermost OBSERVATION, ORDER_OBSERVATION or PATIENT
  // A partial's output, `args` in its $params order (missing ones are nothing).
  Value render_partial(const std::string& name, std::span<const Value> args, const SourcePos& pos);
  Value render_partial(const Partial& partial, std::span<const Value> args);

  // Function arguments are evaluated into buffers kept between calls (one per nesting level),
  // so that a call allocates nothing for them. ArgsBuffer hands out the next level's buffer.
  class ArgsBuffer {
   public:
    explicit ArgsBuffer(Evaluator& ev);
    ~ArgsBuffer();
    ArgsBuffer(const ArgsBuffer&) = delete;
    ArgsBuffer& operator=(const ArgsBuffer&) = delete;
    std::vector<Value>& values() { return values_; }

   private:
    Evaluator& ev_;
    std::vector<Value>& values_;
  };

  // XML places (xml_source.cpp). Reading a node's text marks it (and what it contains) mapped.
  std::optional<std::string> xml_text(XmlRef node);
  Value xml_member(XmlRef node, const std::string& name);  // attribute, else first child element
  // XPath relative to `context` (or the innermost XML node of the template's context).
  Value xpath(const std::string& expression, const Value* context, const SourcePos& pos);

  // Marks everything of a place (or a group's segments) as deliberately handled.
  void consume(const Value& v);
  std::vector<std::string> unmapped_report();

  // XML, in xml_source.cpp: the innermost XML node in scope, and the unmapped report's XML half.
  _xmlNode* xml_context() const;
  void consume_xml(const _xmlNode* node);
  std::vector<std::string> xml_unmapped_report();

 private:
  struct Scope {
    Hl7GroupPtr group;          // a group, or
    std::int64_t segment = -1;  // one segment, or
    _xmlNode* xml = nullptr;    // an XML node
  };
  struct Var {
    // The name interned in TemplateSet::variable_names: one address per name, which is what
    // lookup_var compares. It outlives the Evaluator, so pushing a variable copies no text.
    std::string_view name;
    Value value;
  };
  class VarGuard;
  class ScopeGuard;

  Json render_object(const TNode& node, bool each_element = false);
  Json render_array(const TNode& node);
  Json render_text(const TNode& node);
  Value eval_path(const Expr& e);
  struct Operands;
  bool compare(const Expr& e);
  [[gnu::noinline]] Value eval_arithmetic(const Expr& e);
  [[gnu::noinline]] Value eval_index(const Expr& e);
  [[gnu::noinline]] Value eval_list(const Expr& e);
  Value member(const Value& base, const std::string& name, const Expr& e);
  const Value* lookup_var(std::string_view interned) const;  // a name from variable_names
  // The value of `e` where it is held, when `e` is a variable that exists (else null, and eval()
  // reports it): valid until the variables change, so only for reading it right away.
  const Value* variable_in_place(const Expr& e) const;
  bool in_scope_push(const Value& v);  // pushes a scope when v is a group/segment; false otherwise
  std::vector<std::uint32_t> candidates(const char id[3], const Scope* base) const;
  // The innermost scope that has a segment with this ID (where a path without a base looks), or
  // null. Valid until the scope stack changes.
  const Scope* scope_having(const char id[3]) const;
  // The nth (1-based) of candidates(id, base), without building the list: most paths name one
  // field of one segment (OBX-3.1, PID-3).
  std::optional<std::uint32_t> nth_candidate(const char id[3], const Scope* base,
                                             std::uint32_t n) const;
  bool segment_is(std::uint32_t segment, const char id[3]) const {
    return segment_ids_[segment] == packed_id(id);
  }
  static std::uint32_t packed_id(const char id[3]) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(id[0])) |
           static_cast<std::uint32_t>(static_cast<unsigned char>(id[1])) << 8 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(id[2])) << 16;
  }
  void mark_read(std::uint64_t key);
  // The decoded text of an HL7 place (empty for the explicit null ""), marked as read. Valid
  // while this Evaluator lives: a view into the message or into decoded_.
  std::string_view hl7_view(const Hl7Ref& r);
  const hl7v2::OruR01& oru();
  std::vector<int> parent_orders(const std::vector<hl7v2::OruOrder>& orders);
  std::string hl7_text(const Hl7Ref& r);

  // What was read (for the unmapped report), by consume key, with the text found there:
  // templates read a few hundred places, most of them many times (OBX-3.1 by every filter over
  // the OBX), so a second read of a place is a hash lookup instead of splitting the field again.
  struct Read {
    std::uint64_t key = 0;
    bool used = false;      // the slot holds a key
    bool has_text = false;  // false: only marked (ignore(), a whole segment or group)
    std::string_view text;  // into the message, or into decoded_ when it had escapes
  };
  class ReadSet {  // open addressing, linear probing; never shrinks
   public:
    Read& find_or_add(std::uint64_t key);
    bool contains(std::uint64_t key) const;
    // Room for `expected` places without growing (each growth allocates and re-inserts all).
    void reserve(std::size_t expected);
    void clear();  // keeps the slots

   private:
    std::size_t slot_of(std::uint64_t key) const {  // Fibonacci hashing: the product's top bits
      return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_);
    }
    std::vector<Read> slots_;  // a power of two of them
    std::size_t size_ = 0;
    int shift_ = 64;  // 64 - log2(slots_.size())
  };
  // Results of pure partial calls and segment filters (purity.cpp) for this message. A call is
  // kept only if it recorded no issue and no explain line, so reusing it changes no output.
  struct CachedCall {
    const Partial* partial = nullptr;
    std::size_t hash = 0;       // of the arguments (hash_value)
    std::size_t first_arg = 0;  // in cached_args_: one per parameter (nothing if not given)
    Value result;
    int depth = 0;  // nesting levels the call went below where it started
  };
  // The slot of cached_calls_ where a call of `partial` with arguments hashing to `hash` is
  // looked for first (open addressing over call_slots_, a power of two of them).
  std::size_t call_slot(const Partial& partial, std::size_t hash) const;
  void index_call(std::int32_t call);
  struct CachedGroups {
    std::string kind;    // groups(kind), or
    bool subid = false;  // subid_groups()
    Scope where;         // the innermost scope (groups), or the one with OBX (subid_groups)
    Scope orders;        // subid_groups(): the one with OBR
    Value list;
  };
  Value render_partial_body(const Partial& partial, std::span<const Value> args);
  bool holds_segments(const Value& context, const std::vector<std::string>& ids) const;

  // The stacks, caches and read set below are filled and emptied for every message. Made anew
  // each time they cost about a hundred allocations a mapping as they grew; instead each thread
  // keeps them between its mappings, emptied, with their capacity (engine.cpp, Reusable).
  struct Reusable;
  struct GiveBack {
    void operator()(Reusable* r) const;
  };
  static std::unique_ptr<Reusable, GiveBack> take_reusable();
  static thread_local std::vector<std::unique_ptr<Reusable>> spare_;

  const TemplateSet& set_;
  const Template& template_;
  const hl7v2::Message* message_;
  const xml::Document* document_;
  std::unique_ptr<xml::XPath> xpath_;  // created on first use, with the template's namespaces
  std::unordered_set<const void*> xml_consumed_;
  const MappingSettings& settings_;
  MappingResult& result_;
  std::unique_ptr<Reusable, GiveBack> reusable_;  // what the references below are part of
  std::vector<Var>& vars_;
  std::vector<JsonMember>& member_stack_;  // render_object: members of the objects being built
  std::vector<Json>& item_stack_;          // render_array: items of the arrays being built
  std::string_view index_variable_;        // "$index", interned
  std::vector<Scope>& scopes_;
  std::optional<hl7v2::OruR01> oru_;
  ReadSet& consumed_;
  std::deque<std::string> decoded_;  // texts with HL7 escapes resolved (deque: views stay valid)
  std::vector<std::uint32_t>& segment_ids_;  // packed_id() of each segment of message_
  // One per nesting level of calls; each level's buffer stays where it is as levels are added.
  std::vector<std::unique_ptr<std::vector<Value>>>& arg_buffers_;
  std::size_t arg_depth_ = 0;
  int depth_ = 0;
  int max_depth_ = 0;  // the deepest depth_ reached so far (what a cached call needs below it)
  // Every cached call of this message, found through call_slots_: an index into cached_calls_
  // or -1 (empty). A partial such as cwe is called with dozens of different fields per message;
  // a scan of its calls cost more than the render it saved for the small ones.
  std::vector<CachedCall>& cached_calls_;
  std::vector<std::int32_t>& call_slots_;
  std::vector<Value>& cached_args_;  // the arguments of all cached calls, one after another
  std::vector<CachedGroups>& groups_cache_;
  std::unordered_map<std::string, Json> made_;  // once_per_message
  std::vector<std::int8_t>& filter_cache_;  // [memo_slot * segments + segment]: -1 unknown, 0, 1
};

}  // namespace adapter::mapping
