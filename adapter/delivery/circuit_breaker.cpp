#include "delivery/circuit_breaker.h"

#include <algorithm>

namespace adapter::delivery {

int CircuitBreaker::allowance(Clock::time_point now, int capacity, int in_flight) {
  if (state_ == State::open && now >= retry_at_) state_ = State::half_open;
  switch (state_) {
    case State::closed:
      return std::max(capacity - in_flight, 0);
    case State::half_open:
      return in_flight == 0 ? 1 : 0;
    case State::open:
      return 0;
  }
  return 0;
}

void CircuitBreaker::on_success() {
  state_ = State::closed;
  failures_ = 0;
  current_open_for_ = std::chrono::milliseconds(0);
}

void CircuitBreaker::on_failure(Clock::time_point now) {
  ++failures_;
  if (state_ == State::half_open) {
    // The probe failed: wait longer before the next one.
    current_open_for_ = std::min(current_open_for_ * 2, policy_.max_open_for);
    open(now);
    return;
  }
  if (state_ == State::closed && failures_ >= policy_.failure_threshold) {
    current_open_for_ = policy_.open_for;
    open(now);
  }
}

void CircuitBreaker::open(Clock::time_point now) {
  state_ = State::open;
  retry_at_ = now + current_open_for_;
  ++times_opened_;
}

std::string_view to_string(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::closed:
      return "closed";
    case CircuitBreaker::State::open:
      return "open";
    case CircuitBreaker::State::half_open:
      return "half_open";
  }
  return "unknown";
}

}  // namespace adapter::delivery
