// A destination's circuit breaker: after `failure_threshold` failures in a row (no answer, 408,
// 429, 5xx) it opens and nothing is sent for `open_for`; then one probe goes out (half-open). A
// probe that succeeds closes it; one that fails opens it again for twice as long, up to
// `max_open_for`. While it is open the deliveries wait without using up their attempts, so an
// EHR outage of an hour does not turn a day's results into dead letters.
//
// Not thread-safe: the delivery worker owns it and calls it under its lock. Time is passed in.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

namespace adapter::delivery {

struct CircuitBreakerPolicy {
  int failure_threshold = 5;
  std::chrono::milliseconds open_for{5000};
  std::chrono::milliseconds max_open_for{60'000};
};

class CircuitBreaker {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { closed, open, half_open };

  explicit CircuitBreaker(CircuitBreakerPolicy policy) : policy_(policy) {}

  // How many requests may start now, given how many are in flight: unlimited (`capacity`) when
  // closed, one probe when half-open and nothing is in flight, none while open. Moves open to
  // half-open once the wait is over.
  int allowance(Clock::time_point now, int capacity, int in_flight);
  void on_success();
  void on_failure(Clock::time_point now);

  State state() const { return state_; }
  // When an open breaker lets a probe through.
  Clock::time_point retry_at() const { return retry_at_; }
  int consecutive_failures() const { return failures_; }
  std::uint64_t times_opened() const { return times_opened_; }

 private:
  void open(Clock::time_point now);

  CircuitBreakerPolicy policy_;
  State state_ = State::closed;
  int failures_ = 0;
  std::chrono::milliseconds current_open_for_{0};
  Clock::time_point retry_at_{};
  std::uint64_t times_opened_ = 0;
};

std::string_view to_string(CircuitBreaker::State state);

}  // namespace adapter::delivery
