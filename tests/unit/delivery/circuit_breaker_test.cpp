#include "delivery/circuit_breaker.h"

#include <catch2/catch.hpp>

namespace {

using namespace adapter::delivery;
using namespace std::chrono_literals;
using State = CircuitBreaker::State;

TEST_CASE("the breaker opens after consecutive failures and probes once when the wait is over",
          "[delivery][breaker]") {
  CircuitBreaker breaker({3, 1000ms, 4000ms});
  auto t = CircuitBreaker::Clock::time_point{} + 1h;
  CHECK(breaker.allowance(t, 4, 0) == 4);
  CHECK(breaker.allowance(t, 4, 3) == 1);
  breaker.on_failure(t);
  breaker.on_failure(t);
  breaker.on_success();  // a success in between resets the count
  breaker.on_failure(t);
  breaker.on_failure(t);
  CHECK(breaker.state() == State::closed);
  breaker.on_failure(t);
  CHECK(breaker.state() == State::open);
  CHECK(breaker.times_opened() == 1);
  CHECK(breaker.allowance(t + 999ms, 4, 0) == 0);
  // Half-open: one probe, and none while it is in flight.
  CHECK(breaker.allowance(t + 1000ms, 4, 0) == 1);
  CHECK(breaker.state() == State::half_open);
  CHECK(breaker.allowance(t + 1000ms, 4, 1) == 0);
  // The probe fails: open again for twice as long.
  breaker.on_failure(t + 1100ms);
  CHECK(breaker.state() == State::open);
  CHECK(breaker.retry_at() == t + 1100ms + 2000ms);
  CHECK(breaker.allowance(t + 3099ms, 4, 0) == 0);
  CHECK(breaker.allowance(t + 3100ms, 4, 0) == 1);
  breaker.on_failure(t + 3200ms);
  CHECK(breaker.retry_at() == t + 3200ms + 4000ms);
  CHECK(breaker.allowance(t + 7200ms, 4, 0) == 1);
  breaker.on_failure(t + 7300ms);
  CHECK(breaker.retry_at() == t + 7300ms + 4000ms);  // capped at max_open_for
  // The probe succeeds: closed, full capacity.
  CHECK(breaker.allowance(t + 11300ms, 4, 0) == 1);
  breaker.on_success();
  CHECK(breaker.state() == State::closed);
  CHECK(breaker.allowance(t + 11300ms, 4, 0) == 4);
  CHECK(breaker.consecutive_failures() == 0);
  CHECK(to_string(State::half_open) == "half_open");
}

}  // namespace
