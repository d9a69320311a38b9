// The integration engineer's commands' shared checks, with the shipped mappings.
#include "app/translate.h"

#include <catch2/catch.hpp>

#include <string>

using namespace adapter;

TEST_CASE("a destination filter naming a template the mappings lack is an error, located",
          "[app][config]") {
  app::Config config;
  config.mapping.directory = std::string(ADAPTER_FIXTURES_DIR) + "/../mappings";
  auto set = app::load_mappings(config.mapping);
  REQUIRE(set);
  app::DestinationConfig all;
  app::DestinationConfig registry;
  registry.name = "registry";
  registry.filter.templates = {"oru-r01", "foundation-one", "oru-r02"};
  config.destinations = {all, registry};

  const std::vector<Error> errors = app::check_destination_filters(config.destinations, **set);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].where == "/destinations/1/filter/templates/2");
  CHECK(errors[0].message.rfind("no template is named 'oru-r02' (the mappings have: ", 0) == 0);
  CHECK(errors[0].message.find("oru-r01") != std::string::npos);

  config.destinations[1].filter.templates.pop_back();
  CHECK(app::check_destination_filters(config.destinations, **set).empty());
}
