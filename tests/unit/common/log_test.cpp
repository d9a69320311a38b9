#include "common/log.h"

#include <unistd.h>
#include <catch2/catch.hpp>

#include <string>

using namespace adapter;

namespace {

// Captures what the logger writes into a pipe.
std::string capture(bool include_phi, log::Level level, void (*emit)()) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  log::configure({level, include_phi, fds[1]});
  emit();
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  log::configure({});
  return out;
}

}  // namespace

TEST_CASE("log lines are one JSON object each with typed fields", "[common][log]") {
  const std::string out = capture(false, log::Level::info, [] {
    log::info("mllp.ack", {{"listener", "lab"}, {"id", 42}, {"ok", true}});
    log::debug("hidden", {});
  });
  CHECK(out.find("\"event\":\"mllp.ack\",\"listener\":\"lab\",\"id\":42,\"ok\":true}\n") !=
        std::string::npos);
  CHECK(out.find("hidden") == std::string::npos);
  CHECK(out.find("\"level\":\"info\"") != std::string::npos);
}

TEST_CASE("values that may identify a patient are redacted unless include_phi is set",
          "[common][log]") {
  const std::string redacted = capture(false, log::Level::info, [] {
    log::warn("parse", {{"value", log::phi("DOE^JANE")}});
  });
  CHECK(redacted.find("DOE") == std::string::npos);
  CHECK(redacted.find("[redacted]") != std::string::npos);
  const std::string shown = capture(true, log::Level::info, [] {
    log::warn("parse", {{"value", log::phi("DOE^JANE")}});
  });
  CHECK(shown.find("DOE^JANE") != std::string::npos);
}
