// The administration API against a real SQLite store: searches, one message in full, replay.
#include "app/admin_api.h"

#include <stdlib.h>
#include <catch2/catch.hpp>

#include "support/temp_store.h"

using namespace adapter;

namespace {

store::InboundMessage message(const std::string& control_id, const std::string& source,
                              std::int64_t received_at_us, std::string raw = "MSH|^~\\&|LAB|F\r") {
  return test::accepted_message(control_id, std::move(raw), received_at_us, source);
}

}  // namespace

TEST_CASE("admin API: find by filters, show one in full, replay", "[app][admin]") {
  test::TempStore st;
  const std::int64_t t0 = 1'800'000'000'000'000;
  REQUIRE(store::append_and_wait(
      *st, {message("A", "mllp", t0), message("B", "fmi", t0 + 1000000),
            message("C", "mllp", t0 + 2000000, std::string("\xff\xfe<", 3))}));
  app::AdminApi api(*st, *st);
  auto body = [&](std::string_view method, std::string_view target) {
    auto r = api.handle(method, target);
    REQUIRE(r);
    return *r;
  };
  auto ids_of = [](const std::string& json) {
    std::vector<std::string> ids;
    for (std::size_t at = json.find("\"control_id\": \""); at != std::string::npos;
         at = json.find("\"control_id\": \"", at + 1)) {
      ids.push_back(json.substr(at + 15, 1));
    }
    return ids;
  };
  CHECK(ids_of(body("GET", "/messages").body) == std::vector<std::string>{"A", "B", "C"});
  CHECK(ids_of(body("GET", "/messages?source=mllp").body) == std::vector<std::string>{"A", "C"});
  CHECK(ids_of(body("GET", "/messages?control_id=B").body) == std::vector<std::string>{"B"});
  CHECK(ids_of(body("GET", "/messages?from=1800000001000000&until=1800000002000000").body) ==
        std::vector<std::string>{"B"});
  const auto page = body("GET", "/messages?limit=2");
  CHECK(ids_of(page.body) == std::vector<std::string>{"A", "B"});
  CHECK(page.body.find("\"next_after\": 2") != std::string::npos);
  CHECK(ids_of(body("GET", "/messages?after=2").body) == std::vector<std::string>{"C"});
  CHECK(body("GET", "/messages?state=lost").status == 400);
  CHECK(body("GET", "/messages?from=soon").status == 400);
  CHECK(body("POST", "/messages").status == 405);

  const auto a = body("GET", "/messages/1/detail");
  CHECK(a.status == 200);
  CHECK(a.body.find("\"raw\": \"MSH|^~\\\\&|LAB|F\\r\"") != std::string::npos);
  const auto c = body("GET", "/messages/3/detail");
  CHECK(c.body.find("\"raw_base64\": \"//48\"") != std::string::npos);  // not UTF-8
  CHECK(body("GET", "/messages/99/detail").status == 404);
  CHECK(body("POST", "/messages/1/replay").status == 404);       // nothing mapped yet
  CHECK(body("POST", "/dead-letters/1/discard").status == 400);  // no reason
  CHECK(body("GET", "/dead-letters").body.find("\"dead_letters\": []") != std::string::npos);
  CHECK_FALSE(api.handle("GET", "/metrics"));
}
