// The expression language inside templates ("{{ ... }}"):
//
//   OBX-5.1   PID-3[2].4   OBX[OBX-3.1 == '48018-6']-5   OBR   $variant/OBX[2]-5   $x.code
//   'text'  42  true  null  [a, b]   f(a, b)   a ?? b   a == b  a != b  < <= > >=
//   a + b (numbers add, text joins)   a - b   not a   a and b   a or b   cond ? a : b
//
// HL7 paths name a segment (three capitals), an optional occurrence or filter in brackets, then
// field, repetition, component and subcomponent. A filter is an expression evaluated with each
// candidate segment as context: OBX[OBX-3.1 == '81258-6'] is "the OBX whose OBX-3.1 is ...".
// Paths resolve against the innermost group of the template's context that has that segment.
// Functions are lower case (see functions.h); variables start with '$'.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "mapping/json.h"
#include "mapping/source_text.h"

namespace adapter::mapping {

struct Expr;
using ExprPtr = std::shared_ptr<const Expr>;
struct Partial;
struct Table;

struct Hl7PathSpec {
  char segment[3] = {'M', 'S', 'H'};
  std::uint32_t occurrence = 0;  // [n]; 0 = not given
  ExprPtr filter;                // [expression], or null
  // A filter that reads nothing but the candidate segment and global variables gives the same
  // answer for the same segment: its slot in the Evaluator's per-message cache (purity.cpp), or
  // -1.
  int memo_slot = -1;
  std::uint32_t field = 0;       // 0: the segment itself
  std::uint32_t repetition = 0;  // 0: not given
  std::uint32_t component = 0;
  // For comparisons: one side is a literal that does not read as a number, so the two sides
  // are always compared as text (bind_names).
  bool text_only = false;
  std::uint32_t subcomponent = 0;

  std::string to_string() const;  // "OBX[...]-5.1"
};

struct Expr {
  enum class Op {
    literal,      // value
    variable,     // name (without '$')
    path,         // path (with `base` in args[0] when written $var/PATH)
    call,         // name(args...)
    negate,       // -args[0]
    logical_not,  // not args[0]
    logical_and,
    logical_or,
    coalesce,  // args[0] ?? args[1]
    equal,
    not_equal,
    less,
    less_equal,
    greater,
    greater_equal,
    add,
    subtract,
    member,       // args[0].name (name may be a number: an HL7 component)
    index,        // args[0][args[1]]
    conditional,  // args[0] ? args[1] : args[2]
    list,         // [args...]
  };
  Op op = Op::literal;
  SourcePos pos;
  Json value;
  std::string name;
  int function = -1;  // for calls: the catalog's index of `name`, resolved once when parsed
  // Calls the Evaluator runs itself, without the general call path (bind_names): exists(x) and
  // empty(x) are conditions; lookup('table', key[, 'column']) with a table that exists;
  // in(x, 'a', 'b', ...) with literals only; coalesce(...), which stops at the first argument
  // with a value, as `??` does.
  enum class Builtin : std::uint8_t { none, exists, empty, lookup, in_literals, coalesce };
  Builtin builtin = Builtin::none;
  // Bound once the whole template set is loaded (template.cpp, bind_names), so that evaluation
  // looks no names up: include('name', ...) and lookup('table', ...) with a literal name.
  const Partial* partial = nullptr;
  const Table* table = nullptr;
  // lookup('table', key, 'column') on a CSV table with that column: its position in every row
  // (rows hold all columns in header order), so that the cell is read without a name search.
  int table_column = -1;
  // For variables: `name` interned in TemplateSet::variable_names, so that looking a variable
  // up compares addresses, not text.
  std::string_view variable;
  // For members written as a number (`$cx.4`): that number, parsed once (bind_names); else 0.
  std::uint32_t component = 0;
  // For comparisons: one side is a literal that does not read as a number, so the two sides
  // are always compared as text (bind_names).
  bool text_only = false;
  Hl7PathSpec path;
  std::vector<ExprPtr> args;
};

// Knows which functions exist and how many arguments each takes, so that parsing can report
// an unknown function or a wrong arity at the place it is written.
class FunctionCatalog {
 public:
  virtual ~FunctionCatalog() = default;
  // Empty string: fine. Otherwise the reason it is not.
  virtual std::string check_call(std::string_view name, std::size_t arguments) const = 0;
  // Checks what can be checked of a parsed call before any message arrives (an XPath literal's
  // syntax). Empty string: fine.
  virtual std::string check_arguments(const Expr& /*call*/) const { return {}; }
  // Index of a known function (for Expr::function), or -1.
  virtual int index_of(std::string_view /*name*/) const { return -1; }
};

// A decimal number and nothing else (leading blanks and '+' allowed, as HL7 NM values have
// them): how comparisons, '+' and '-' decide that both sides are numbers.
bool parse_number(std::string_view s, double& out);

// Parses one expression; `pos` is where its first character sits in the template file.
Result<ExprPtr> parse_expression(std::string_view text, const SourcePos& pos,
                                 const FunctionCatalog& functions);

}  // namespace adapter::mapping
