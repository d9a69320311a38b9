#include "delivery/retry_policy.h"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <string>

namespace adapter::delivery {

std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, std::int64_t attempts,
                                        std::optional<std::chrono::milliseconds> retry_after,
                                        std::mt19937_64& rng) {
  using std::chrono::milliseconds;
  const std::int64_t initial = std::max<std::int64_t>(policy.initial_delay.count(), 1);
  const std::int64_t cap = std::max<std::int64_t>(policy.max_delay.count(), initial);
  // Doubling stops at the cap, so the shift never overflows however many attempts there were.
  std::int64_t delay = initial;
  for (std::int64_t i = 1; i < attempts && delay < cap; ++i) delay *= 2;
  delay = std::min(delay, cap);
  std::uniform_int_distribution<std::int64_t> jitter(delay / 2, delay);
  milliseconds wait(jitter(rng));
  if (retry_after) wait = std::max(wait, *retry_after);
  return wait;
}

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view text, std::chrono::system_clock::time_point now) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  if (text.front() >= '0' && text.front() <= '9') {
    std::int64_t seconds = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    // A day at most: a larger value is more likely a mistake than a plan.
    return std::chrono::milliseconds(std::min<std::int64_t>(seconds, 86'400) * 1000);
  }
  // IMF-fixdate, the only HTTP-date form senders may generate (RFC 9110 5.6.7).
  std::tm tm{};
  const std::string copy(text);
  const char* end = strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const std::time_t at = timegm(&tm);
  const auto when = std::chrono::system_clock::from_time_t(at);
  if (when <= now) return std::chrono::milliseconds(0);
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(when - now);
  return std::min(wait, std::chrono::milliseconds(86'400'000));
}

}  // namespace adapter::delivery
