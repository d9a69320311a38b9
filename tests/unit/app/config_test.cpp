#include "app/config.h"

#include <stdlib.h>
#include <catch2/catch.hpp>

using namespace adapter;

namespace {

std::string errors_of(std::string_view json) {
  auto c = app::parse_config(json, "test.json");
  REQUIRE_FALSE(c);
  return c.error().to_string();
}

}  // namespace

TEST_CASE("the shipped default configuration loads with its documented defaults", "[app][config]") {
  auto c = app::parse_config(app::embedded_default_config(), "<embedded default>");
  REQUIRE(c);
  REQUIRE(c->mllp.size() == 1);
  CHECK(c->mllp[0].bind == "127.0.0.1");
  CHECK(c->mllp[0].port == 2575);
  CHECK(c->mllp[0].max_frame_bytes == 16u * 1024 * 1024);
  CHECK_FALSE(c->mllp[0].tls.has_value());
  CHECK(c->store.path == "./var/adapterd.db");
  CHECK(c->admin.bind == "127.0.0.1");
  CHECK_FALSE(c->log.include_phi);
}

TEST_CASE("configuration errors name their JSON pointer", "[app][config]") {
  CHECK(errors_of(R"({"listeners": {"mllp": [{"port": 70000}]}})")
            .find("test.json: /listeners/mllp/0/port: must be an integer in 0..65535") !=
        std::string::npos);
  CHECK(errors_of(R"({"store": {"pathh": "x"}})").find("/store/pathh: unknown key") !=
        std::string::npos);
  CHECK(errors_of(R"({"log": {"level": "loud"}})").find("/log/level:") != std::string::npos);
  CHECK(errors_of(R"({"listeners": {"mllp": [{"accept_message_types": ["ORU"]}]}})")
            .find("/listeners/mllp/0/accept_message_types/0") != std::string::npos);
  CHECK(errors_of(R"({"listeners": {"mllp": [{"default_charset": "EBCDIC"}]}})")
            .find("/listeners/mllp/0/default_charset: unknown character set") != std::string::npos);
  const std::string both = errors_of(R"({"listeners": {"mllp": [{"name": "a", "port": 3000},
                                                                {"name": "a", "port": 3000}]}})");
  CHECK(both.find("/listeners/mllp/1/name: duplicate listener name") != std::string::npos);
  CHECK(both.find("/listeners/mllp/1/port: port 3000 is already used") != std::string::npos);
  CHECK(errors_of(R"({"listeners": {"mllp": [{"tls": {"certificate_file": "/nonexistent.crt",
      "private_key_file": "/nonexistent.key"}}]}})")
            .find("/listeners/mllp/0/tls/certificate_file: cannot read file") != std::string::npos);
}

TEST_CASE("syntax errors give line and column and comments are allowed", "[app][config]") {
  CHECK(
      errors_of("{\n  // fine\n  \"io_threads\": 2,\n  \"store\": {,}\n}").find("test.json: 4:") !=
      std::string::npos);
  auto ok = app::parse_config("{ /* c */ \"io_threads\": 3, }", "x");
  REQUIRE(ok);
  CHECK(ok->io_threads == 3);
}

TEST_CASE("environment variables are substituted into strings", "[app][config]") {
  ::setenv("ADAPTERD_TEST_DB", "/tmp/from-env.db", 1);
  auto c = app::parse_config(R"({"store": {"path": "${ADAPTERD_TEST_DB}"}})", "x");
  REQUIRE(c);
  CHECK(c->store.path == "/tmp/from-env.db");
  CHECK(errors_of(R"({"store": {"path": "${ADAPTERD_TEST_UNSET_VAR}"}})")
            .find("/store/path: environment variable ADAPTERD_TEST_UNSET_VAR is not set") !=
        std::string::npos);
}
