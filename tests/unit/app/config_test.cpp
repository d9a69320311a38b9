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

TEST_CASE("destinations: defaults, limits and every auth kind", "[config][destinations]") {
  ::setenv("ADAPTERD_TEST_TOKEN", "s3cret", 1);
  auto c = app::parse_config(R"({"destinations": [
      {"name": "ehr", "base_url": "https://ehr.example.org/fhir"},
      {"name": "reg", "base_url": "http://127.0.0.1:8080/fhir", "max_in_flight": 8,
       "connect_timeout_ms": 1000, "request_timeout_ms": 2000,
       "retry": {"max_attempts": 3, "max_age_seconds": 60, "initial_delay_ms": 10,
                 "max_delay_ms": 100},
       "circuit_breaker": {"failure_threshold": 2, "open_ms": 50, "max_open_ms": 500},
       "auth": {"type": "bearer", "token": "${ADAPTERD_TEST_TOKEN}"}}]})",
                             "test");
  REQUIRE(c);
  REQUIRE(c->destinations.size() == 2);
  const auto& ehr = c->destinations[0];
  CHECK(ehr.max_in_flight == 4);
  CHECK(ehr.retry.max_attempts == 10);
  CHECK(ehr.auth.kind == app::AuthConfig::Kind::none);
  const auto& reg = c->destinations[1];
  CHECK(reg.max_in_flight == 8);
  CHECK(reg.request_timeout == std::chrono::milliseconds(2000));
  CHECK(reg.retry.max_attempts == 3);
  CHECK(reg.retry.max_age == std::chrono::seconds(60));
  CHECK(reg.retry.initial_delay == std::chrono::milliseconds(10));
  CHECK(reg.circuit_breaker.failure_threshold == 2);
  CHECK(reg.circuit_breaker.max_open_for == std::chrono::milliseconds(500));
  CHECK(reg.auth.kind == app::AuthConfig::Kind::bearer);
  CHECK(reg.auth.token == "s3cret");
  CHECK(!reg.resource_by_resource);
  CHECK(
      app::parse_config(R"({"destinations": [{"base_url": "http://a", "mode": "resources"}]})", "t")
          ->destinations[0]
          .resource_by_resource);
  CHECK(app::parse_config(R"({})", "t")->destinations.empty());
}

TEST_CASE("destinations: errors name the JSON pointer and refuse literal secrets",
          "[config][destinations]") {
  auto errors_of = [](const std::string& json) {
    auto c = app::parse_config(json, "cfg.json");
    REQUIRE(!c);
    return c.error().to_string();
  };
  CHECK(errors_of(R"({"destinations": [{"base_url": "http://a", "mode": "batch"}]})") ==
        "cfg.json: /destinations/0/mode: must be \"transaction\" or \"resources\"\n");
  CHECK(errors_of(R"({"destinations": [{"base_url": "ftp://x"}]})") ==
        "cfg.json: /destinations/0/base_url: must be an http:// or https:// URL\n");
  CHECK(errors_of(R"({"destinations": [{"base_url": "http://a"}, {"base_url": "http://b"}]})") ==
        "cfg.json: /destinations/1/name: duplicate destination name 'ehr'\n");
  CHECK(errors_of(R"({"destinations": [{"base_url": "http://a", "auth":
        {"type": "basic", "username": "u", "password": "hunter2"}}]})") ==
        "cfg.json: /destinations/0/auth/password: must be \"${ENV_VAR}\" (or use password_file): "
        "secrets are not written into the configuration\n");
  CHECK(errors_of(R"({"destinations": [{"base_url": "http://a", "auth":
        {"type": "client_credentials", "token_url": "https://t", "client_id": "c",
         "client_secret_file": "/nonexistent/secret"}}]})") ==
        "cfg.json: /destinations/0/auth/client_secret_file: cannot read file "
        "'/nonexistent/secret'\n");
  CHECK(errors_of(R"({"destinations": [{"base_url": "http://a", "auth":
        {"type": "smart_backend", "token_url": "https://t", "client_id": "c",
         "private_key_file": "/nonexistent/key", "algorithm": "HS256"}}]})") ==
        "cfg.json: /destinations/0/auth/private_key_file: cannot read file '/nonexistent/key'\n"
        "cfg.json: /destinations/0/auth/algorithm: must be \"RS384\" or \"ES384\"\n"
        "cfg.json: /destinations/0/auth/key_id: is required (the JWT header's kid)\n");
  CHECK(errors_of(R"({"destinations": [{"base_url": "http://a", "auth": {"type": "magic"}}]})") ==
        "cfg.json: /destinations/0/auth/type: must be \"none\", \"basic\", \"bearer\", "
        "\"client_credentials\" or \"smart_backend\"\n");
  CHECK(errors_of(R"({"destinations": [{"base_url": "http://a",
        "retry": {"initial_delay_ms": 500, "max_delay_ms": 100, "extra": 1}}]})") ==
        "cfg.json: /destinations/0/retry/extra: unknown key\n"
        "cfg.json: /destinations/0/retry/max_delay_ms: must not be less than initial_delay_ms\n");
}

TEST_CASE("destinations: a filter takes messages by source and template, and names real sources",
          "[config][destinations]") {
  auto c = app::parse_config(R"({
      "listeners": {"mllp": [{"name": "lab", "port": 0}, {"name": "reference-lab", "port": 0}],
                    "folders": [{"name": "drop", "path": "/tmp/adapterd-drop"}],
                    "http": {"port": 0, "feeds": [{"name": "qci", "api_key": "${HOME}"}]}},
      "destinations": [
        {"name": "ehr", "base_url": "http://a"},
        {"name": "registry", "base_url": "http://b",
         "filter": {"sources": ["lab", "qci"], "templates": ["oru-r01", "qci-report"]}},
        {"name": "xml-archive", "base_url": "http://c", "filter": {"templates": ["qci-report"]}}]})",
                             "t");
  INFO((c ? std::string() : c.error().to_string()));
  REQUIRE(c);
  const app::DestinationFilter& all = c->destinations[0].filter;
  const app::DestinationFilter& registry = c->destinations[1].filter;
  const app::DestinationFilter& xml = c->destinations[2].filter;
  CHECK(registry.sources == std::vector<std::string>{"lab", "qci"});
  CHECK(all.accepts("reference-lab", "oru-r01"));
  CHECK(all.accepts("drop", ""));  // a message no template took is still delivered nowhere else
  CHECK(registry.accepts("lab", "oru-r01"));
  CHECK(registry.accepts("qci", "qci-report"));
  CHECK_FALSE(registry.accepts("reference-lab", "oru-r01"));  // another source
  CHECK_FALSE(registry.accepts("lab", "foundation-one"));     // another template
  CHECK(xml.accepts("drop", "qci-report"));
  CHECK_FALSE(xml.accepts("lab", "oru-r01"));

  auto errors_of = [](const std::string& json) {
    auto bad = app::parse_config(json, "cfg.json");
    REQUIRE(!bad);
    return bad.error().to_string();
  };
  // The HTTP listener is not a source: its feeds are.
  CHECK(
      errors_of(R"({"listeners": {"mllp": [{"name": "lab", "port": 0}],
        "http": {"name": "http", "port": 0, "feeds": [{"name": "qci", "api_key": "${HOME}"}]}},
      "destinations": [{"base_url": "http://a",
        "filter": {"sources": ["lab", "labb", "http", ""], "templates": ["t", "t"], "x": 1}}]})") ==
      "cfg.json: /destinations/0/filter/x: unknown key\n"
      "cfg.json: /destinations/0/filter/sources/3: must be a non-empty string\n"
      "cfg.json: /destinations/0/filter/templates/1: 't' is listed twice\n"
      "cfg.json: /destinations/0/filter/sources/1: no listener, feed or folder is named 'labb'\n"
      "cfg.json: /destinations/0/filter/sources/2: no listener, feed or folder is named 'http'\n");
  CHECK(
      errors_of(R"({"destinations": [{"base_url": "http://a", "filter": {"sources": "lab"}}]})") ==
      "cfg.json: /destinations/0/filter/sources: must be a non-empty array of names (leave it "
      "out to take all)\n");
  CHECK(errors_of(R"({"destinations": [{"base_url": "http://a", "filter": {"templates": []}}]})") ==
        "cfg.json: /destinations/0/filter/templates: must be a non-empty array of names (leave it "
        "out to take all)\n");
}

TEST_CASE("the HTTP listener: feeds, credentials, names and per-feed settings", "[app][config]") {
  ::setenv("ADAPTERD_TEST_FEED_KEY", "k-123", 1);
  auto c = app::parse_config(R"({"listeners": {"mllp": [{"name": "lab", "port": 2600}],
      "http": {"port": 8081, "feeds": [{"name": "fmi", "api_key": "${ADAPTERD_TEST_FEED_KEY}",
                                        "settings": {"genome_build": "GRCh38"}}]}},
      "mapping": {"feed": {"patient_mode": "reference-only"}}})",
                             "test.json");
  REQUIRE(c);
  REQUIRE(c->http);
  CHECK(c->http->port == 8081);
  CHECK(c->http->bind == "127.0.0.1");
  CHECK(c->http->max_body_bytes == 32u * 1024 * 1024);
  CHECK(c->http->feeds.at(0).api_key == "k-123");
  const mapping::Json& feed = c->mapping.feed_for("fmi");
  CHECK(feed.find("genome_build")->as_string() == "GRCh38");
  CHECK(feed.find("patient_mode")->as_string() == "reference-only");  // the global one, kept
  CHECK(c->mapping.feed_for("lab").find("genome_build")->as_string().empty());

  const std::string e = errors_of(R"({"listeners": {"mllp": [{"name": "lab", "port": 2600}],
      "http": {"port": 2600, "bind": "127.0.0.1", "feeds": [
        {"name": "lab", "api_key": "literal"},
        {"name": "Bad/Name", "client_certificate_cn": "x"},
        {"name": "open"}]}}})");
  CHECK(e.find("/listeners/http/feeds/0/api_key: must be \"${ENV_VAR}\"") != std::string::npos);
  CHECK(e.find("/listeners/http/feeds/1/name: must be lower-case letters") != std::string::npos);
  CHECK(e.find("/listeners/http/feeds/1/client_certificate_cn: needs the listener's "
               "tls.client_ca_file") != std::string::npos);
  CHECK(e.find("/listeners/http/feeds/2: a feed needs api_key") != std::string::npos);
  CHECK(e.find("/listeners/http/port: port 2600 is already used by another listener") !=
        std::string::npos);
  CHECK(e.find("/listeners/http/feeds/0/name: duplicate source name 'lab'") != std::string::npos);
  CHECK(errors_of(R"({"listeners": {"http": {"feeds": []}}})")
            .find("/listeners/http/feeds: must be a non-empty array") != std::string::npos);
}

TEST_CASE("feed settings the shipped templates choose by are checked where they are set",
          "[app][config]") {
  auto c = app::parse_config(R"({"mapping": {"feed": {"result_updates": "always"}}})", "test.json");
  REQUIRE(c);
  CHECK(c->mapping.feed.find("result_updates")->as_string() == "always");
  CHECK(app::parse_config("{}", "test.json")->mapping.feed.find("result_updates")->as_string() ==
        "corrections");
  CHECK(errors_of(R"({"mapping": {"feed": {"result_updates": "Never"}}})")
            .find("/mapping/feed/result_updates: must be one of \"corrections\", \"always\", "
                  "\"never\"") != std::string::npos);
  CHECK(app::parse_config("{}", "test.json")->mapping.feed.find("older_versions")->as_string() ==
        "hold");
  CHECK(errors_of(R"({"mapping": {"feed": {"older_versions": "drop"}}})")
            .find("/mapping/feed/older_versions: must be one of \"hold\", \"send\"") !=
        std::string::npos);
  CHECK(errors_of(R"({"mapping": {"feed": {"patient_mode": true}}})")
            .find("/mapping/feed/patient_mode: must be one of \"conditional-create\", "
                  "\"reference-only\"") != std::string::npos);
  CHECK(errors_of(R"({"listeners": {"http": {"feeds": [{"name": "fmi", "api_key": "${HOME}",
      "settings": {"result_updates": "sometimes"}}]}}})")
            .find("/listeners/http/feeds/0/settings/result_updates: must be one of") !=
        std::string::npos);
  CHECK(errors_of(R"({"listeners": {"folders": [{"name": "d", "path": "/tmp/x",
      "settings": {"patient_mode": "own"}}]}})")
            .find("/listeners/folders/0/settings/patient_mode: must be one of") !=
        std::string::npos);
  // Settings of one's own templates are theirs to read: not checked.
  CHECK(app::parse_config(R"({"mapping": {"feed": {"my_setting": 42}}})", "test.json"));
}

TEST_CASE("drop folders: defaults, limits, names shared with listeners", "[app][config]") {
  auto c = app::parse_config(R"({"listeners": {"mllp": [{"name": "lab", "port": 2600}],
      "folders": [{"name": "fmi-drop", "path": "/srv/drop/fmi", "settings": {"sender": "fmi"}}]}})",
                             "test.json");
  REQUIRE(c);
  REQUIRE(c->folders.size() == 1);
  CHECK(c->folders[0].poll_interval.count() == 1000);
  CHECK(c->folders[0].settle_time.count() == 1000);
  CHECK(c->folders[0].max_file_bytes == 32u * 1024 * 1024);
  CHECK(c->mapping.feed_for("fmi-drop").find("sender")->as_string() == "fmi");

  const std::string e = errors_of(R"({"listeners": {"mllp": [{"name": "lab", "port": 2600}],
      "folders": [{"name": "lab", "path": "/srv/a", "poll_interval_ms": 1},
                  {"name": "b", "path": "/srv/a", "colour": "red"}, {"name": "c"}]}})");
  CHECK(e.find("/listeners/folders/0/name: duplicate source name 'lab'") != std::string::npos);
  CHECK(e.find("/listeners/folders/0/poll_interval_ms: must be an integer in 50..3600000") !=
        std::string::npos);
  CHECK(e.find("/listeners/folders/1/colour: unknown key") != std::string::npos);
  CHECK(e.find("/listeners/folders/1/path: folder '/srv/a' is already watched") !=
        std::string::npos);
  CHECK(e.find("/listeners/folders/2/path: must name a folder") != std::string::npos);
}

TEST_CASE("admin token: required off loopback, a secret like the others", "[app][config]") {
  CHECK(errors_of(R"({"admin": {"bind": "0.0.0.0", "port": 9999}})")
            .find("/admin/token: is required when admin.bind is not a loopback address") !=
        std::string::npos);
  CHECK(errors_of(R"({"admin": {"token": "plain-text"}})")
            .find("/admin/token: must be \"${ENV_VAR}\"") != std::string::npos);
  ::setenv("ADAPTERD_TEST_ADMIN_TOKEN", "t-1", 1);
  auto c = app::parse_config(
      R"({"admin": {"bind": "0.0.0.0", "token": "${ADAPTERD_TEST_ADMIN_TOKEN}"},
          "shutdown_timeout_seconds": 3})",
      "test.json");
  REQUIRE(c);
  CHECK(c->admin.token == "t-1");
  CHECK(c->shutdown_timeout.count() == 3);
  CHECK(errors_of(R"({"shutdown_timeout_seconds": 0})")
            .find("/shutdown_timeout_seconds: must be an integer in 1..3600") != std::string::npos);
}

TEST_CASE("retention: defaults and limits", "[app][config]") {
  auto c = app::parse_config("{}", "test.json");
  REQUIRE(c);
  CHECK(c->retention.purge_after.count() == 30 * 24 * 3600);
  CHECK_FALSE(c->retention.payload_only);
  auto off = app::parse_config(R"({"retention": {"purge_after_seconds": 0, "payload_only": true}})",
                               "test.json");
  REQUIRE(off);
  CHECK(off->retention.purge_after.count() == 0);
  CHECK(off->retention.payload_only);
  CHECK(errors_of(R"({"retention": {"batch": 0, "keep": 1}})")
            .find("/retention/batch: must be an integer in 1..100000") != std::string::npos);
  CHECK(errors_of(R"({"retention": {"keep": 1}})").find("/retention/keep: unknown key") !=
        std::string::npos);
}
