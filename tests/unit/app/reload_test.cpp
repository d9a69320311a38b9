// What a reload reports as needing a restart: the top-level sections that changed.
#include "app/reload.h"

#include <stdlib.h>
#include <catch2/catch.hpp>

using namespace adapter;

TEST_CASE("changed sections are found whatever the comments and layout", "[app][reload]") {
  const std::string before = R"({"instance": "a", // a comment
      "mapping": {"directory": "m"}, "listeners": {"mllp": [{"port": 1}]}})";
  CHECK(app::changed_sections(before, R"({"instance":"a","mapping":{"directory":"m"},
      "listeners":{"mllp":[{"port":1}]}})")
            .empty());
  CHECK(app::changed_sections(before, R"({"instance": "a", "mapping": {"directory": "n"},
      "listeners": {"mllp": [{"port": 2}]}})") == std::vector<std::string>{"listeners", "mapping"});
  CHECK(app::changed_sections(before, R"({"mapping": {"directory": "m"},
      "listeners": {"mllp": [{"port": 1}]}})") == std::vector<std::string>{"instance"});
  CHECK(app::changed_sections(before, "{ not json") == std::vector<std::string>{"/"});
}
