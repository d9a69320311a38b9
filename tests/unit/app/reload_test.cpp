// What a reload reports as needing a restart: the top-level sections that changed.
#include "app/reload.h"

#include <stdlib.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>

#include "app/mapper_holder.h"
#include "app/translate.h"
#include "support/temp_dir.h"

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

TEST_CASE("a reload whose mappings lack a template a destination filters on is refused",
          "[app][reload]") {
  test::TempDir dir;
  std::filesystem::create_directories(dir.file("mappings"));
  dir.write("mappings/routes.json", R"({"routes": [
      {"name": "oru", "match": {"message_type": "ORU^R01"}, "template": "oru.json"}]})");
  auto write_template = [&](const std::string& name) {
    dir.write("mappings/oru.json", R"({"$template": ")" + name + R"(", "$version": "1",
        "resourceType": "Bundle", "type": "transaction"})");
  };
  write_template("lab-results");
  const std::string config_text = R"({"mapping": {"directory": ")" + dir.file("mappings") +
                                  R"("}, "destinations": [{"name": "registry",
      "base_url": "http://127.0.0.1:9", "filter": {"templates": ["lab-results"]}}]})";
  const std::string path = dir.write("adapterd.json", config_text);
  auto config = app::parse_config(config_text, path);
  REQUIRE(config);
  auto set = app::load_mappings(config->mapping);
  REQUIRE(set);
  app::MapperHolder mappers(std::make_shared<const app::Mapper>(*set, config->mapping));
  app::Reloader reloader(path, config_text, mappers, config->destinations);

  CHECK(reloader.reload().applied);  // the same mappings: fine
  write_template("lab-results-v2");  // renamed: the registry would get nothing any more
  // ...even when the file's filter is renamed too: the running destinations change only with a
  // restart, and they still filter on the old name.
  std::string renamed = config_text;
  renamed.replace(renamed.rfind("lab-results"), 11, "lab-results-v2");
  dir.write("adapterd.json", renamed);
  const app::ReloadOutcome refused = reloader.reload();
  CHECK_FALSE(refused.applied);
  REQUIRE(refused.errors.size() == 1);
  CHECK(refused.errors[0].where == "/destinations/0/filter/templates/0");
  CHECK(refused.errors[0].message ==
        "no template is named 'lab-results' (the mappings have: lab-results-v2)");
  CHECK(mappers.current()->templates().version == (*set)->version);  // still the first set
}
