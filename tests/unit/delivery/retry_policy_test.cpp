#include "delivery/retry_policy.h"

#include <catch2/catch.hpp>
#include <set>

namespace {

using namespace adapter::delivery;
using namespace std::chrono_literals;

TEST_CASE("backoff doubles from the initial delay and stops at the cap", "[delivery][retry]") {
  RetryPolicy policy;
  policy.initial_delay = 1000ms;
  policy.max_delay = 8000ms;
  std::mt19937_64 rng(42);
  const std::chrono::milliseconds ceilings[] = {1000ms, 2000ms, 4000ms, 8000ms, 8000ms, 8000ms};
  for (std::int64_t attempts = 1; attempts <= 6; ++attempts) {
    const auto ceiling = ceilings[attempts - 1];
    for (int i = 0; i < 200; ++i) {
      const auto d = backoff_delay(policy, attempts, std::nullopt, rng);
      CHECK(d >= ceiling / 2);
      CHECK(d <= ceiling);
    }
  }
  // Many attempts do not overflow.
  CHECK(backoff_delay(policy, 1'000'000, std::nullopt, rng) <= 8000ms);
}

TEST_CASE("jitter spreads deliveries that failed together", "[delivery][retry]") {
  RetryPolicy policy;
  policy.initial_delay = 1000ms;
  std::mt19937_64 rng(7);
  std::set<std::int64_t> seen;
  for (int i = 0; i < 50; ++i) seen.insert(backoff_delay(policy, 3, std::nullopt, rng).count());
  CHECK(seen.size() > 25);
}

TEST_CASE("Retry-After is a floor on the wait", "[delivery][retry]") {
  RetryPolicy policy;
  policy.initial_delay = 100ms;
  policy.max_delay = 1000ms;
  std::mt19937_64 rng(1);
  CHECK(backoff_delay(policy, 1, 5000ms, rng) == 5000ms);
  CHECK(backoff_delay(policy, 5, 10ms, rng) >= 500ms);
}

TEST_CASE("Retry-After reads delta-seconds and HTTP dates", "[delivery][retry]") {
  const auto now = std::chrono::system_clock::from_time_t(1445412480);  // 2015-10-21 07:28:00
  CHECK(parse_retry_after("120", now) == 120'000ms);
  CHECK(parse_retry_after(" 3 ", now) == 3000ms);
  CHECK(parse_retry_after("0", now) == 0ms);
  CHECK(parse_retry_after("999999999", now) == 86'400'000ms);  // capped at a day
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now) == 30'000ms);
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now) == 0ms);  // in the past
  CHECK(!parse_retry_after("", now));
  CHECK(!parse_retry_after("-5", now));
  CHECK(!parse_retry_after("12abc", now));
  CHECK(!parse_retry_after("tomorrow", now));
}

}  // namespace
