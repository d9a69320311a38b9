// The functions templates may call. Each is listed once in functions.cpp with its arity and a
// one-line description, which `adapterd functions` prints and mappings/README.md documents.
#pragma once

#include <string_view>
#include <vector>

#include "mapping/expr.h"
#include "mapping/value.h"

namespace adapter::mapping {

class Evaluator;

const FunctionCatalog& builtin_functions();

// Calls the built-in `call.name` with evaluated arguments; data problems become issues.
Value call_function(Evaluator& ev, const Expr& call, std::vector<Value>& args);

// lookup(): the row of `key` in `table`, and in it `column` (null: the second CSV column, or the
// whole row of a JSON table). A column the table lacks is an error issue at `call`.
Value lookup_in(Evaluator& ev, const Table& table, const Value& key, const Value* column,
                const Expr& call);
// The same for a CSV table's column known by position (Expr::table_column).
Value lookup_cell(Evaluator& ev, const Table& table, const Value& key, int column);

struct FunctionInfo {
  std::string_view name;
  int min_args;
  int max_args;  // -1: any number
  std::string_view signature;
  std::string_view summary;
};
const std::vector<FunctionInfo>& function_list();

}  // namespace adapter::mapping
