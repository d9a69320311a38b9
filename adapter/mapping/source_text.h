// Parsing JSON with comments while remembering where every value came from, so that a template
// error can say "mappings/hl7v2/oru_r01.json:42:17: unknown function 'hgsv'".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace adapter::mapping {

// A place in a template or table file; line and column are 1-based (columns count bytes).
struct SourcePos {
  std::shared_ptr<const std::string> file;
  std::uint32_t line = 0;
  std::uint32_t column = 0;

  std::string to_string() const;  // "file:line:column"
  SourcePos shifted(std::uint32_t columns) const {
    SourcePos p = *this;
    p.column += columns;
    return p;
  }
};

struct PMember;

// A JSON value as written, with positions. Numbers keep their text.
struct PNode {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  SourcePos pos;
  std::string text;  // string value (unescaped) or number text
  bool boolean = false;
  std::vector<PNode> items;
  std::vector<PMember> members;

  const PNode* find(std::string_view key) const;
};

struct PMember {
  std::string key;
  SourcePos key_pos;
  PNode value;
};

// JSON with // and /* */ comments and trailing commas (the same dialect as config files).
// Errors carry "file:line:column" in Error::where.
Result<PNode> parse_positioned_json(std::string_view text, std::shared_ptr<const std::string> file);

// The plain JSON value of a positioned node, and a parse straight to it.
class Json;
Json to_json(const PNode& node);
Result<Json> parse_json(std::string_view text, const std::string& name);

}  // namespace adapter::mapping
