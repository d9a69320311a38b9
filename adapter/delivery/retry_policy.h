// When to try a failed delivery again, and when to stop.
//
// Exponential backoff with jitter: attempt n waits initial * 2^(n-1), capped at max_delay, then
// drawn uniformly from [half of that, all of it], so that deliveries that failed together (a
// server restart) do not all come back in the same instant. A server's Retry-After is a floor:
// we never come back sooner than it asked.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

namespace adapter::delivery {

struct RetryPolicy {
  std::int64_t max_attempts = 10;           // then a dead letter
  std::chrono::seconds max_age{24 * 3600};  // since first queued; then a dead letter
  std::chrono::milliseconds initial_delay{1000};
  std::chrono::milliseconds max_delay{300'000};
};

// The wait before the next attempt, after `attempts` failed ones (1 for the first failure).
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, std::int64_t attempts,
                                        std::optional<std::chrono::milliseconds> retry_after,
                                        std::mt19937_64& rng);

// Retry-After as delta-seconds ("120") or an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT"),
// relative to `now`; nothing when absent or unreadable. A date in the past is zero.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view text, std::chrono::system_clock::time_point now);

}  // namespace adapter::delivery
