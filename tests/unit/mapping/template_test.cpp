// Pieces of mapping/template.h that the engine tests reach only through whole templates.
#include "mapping/template.h"

#include <catch2/catch.hpp>

#include <string>

using namespace adapter::mapping;

TEST_CASE("a table index finds every key of its table and nothing else", "[mapping][template]") {
  std::map<std::string, Json, std::less<>> rows;
  // Codes of the kinds tables hold (short, sharing prefixes), the empty key, and enough of them
  // that probe chains form.
  for (int i = 0; i < 1000; ++i)
    rows.emplace("LA" + std::to_string(i) + "-" + std::to_string(i % 7),
                 Json::number(static_cast<double>(i)));
  rows.emplace("", Json::string("empty key"));
  rows.emplace("48018-6", Json::string("gene"));
  TableIndex index;
  index.build(rows);
  for (const auto& [key, row] : rows) {
    const Json* found = index.find(key);
    REQUIRE(found == &row);  // the row itself, not a copy
  }
  CHECK(index.find("48018-7") == nullptr);
  CHECK(index.find("LA1000-6") == nullptr);
  CHECK(index.find("48018-6 ") == nullptr);
  CHECK(index.find(std::string_view("48018-6\0", 8)) == nullptr);

  TableIndex none;
  CHECK(none.find("x") == nullptr);  // never built
  none.build({});
  CHECK(none.find("") == nullptr);
}
