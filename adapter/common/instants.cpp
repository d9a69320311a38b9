#include "common/instants.h"

#include <charconv>
#include <cstdio>
#include <ctime>

namespace adapter {

std::string fhir_instant_utc(std::int64_t us) {
  const std::time_t seconds = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lld+00:00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(us % 1000000));
  return buf;
}

std::optional<std::int64_t> parse_instant_us(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text.find_first_not_of("0123456789") == std::string_view::npos) {
    std::int64_t us = 0;
    const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), us);
    if (err != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return us;
  }
  std::tm tm{};
  int year = 0;
  int fields = 0;
  char tail[40] = {};
  fields = std::sscanf(std::string(text).c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%39s", &year, &tm.tm_mon,
                       &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, tail);
  if (fields < 6) return std::nullopt;
  tm.tm_year = year - 1900;
  tm.tm_mon -= 1;
  std::int64_t us = static_cast<std::int64_t>(timegm(&tm)) * 1000000;
  std::string_view rest = tail;
  if (!rest.empty() && rest.front() == '.') {  // fractions of a second
    std::size_t n = 1;
    std::int64_t frac = 0;
    int digits = 0;
    while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') {
      if (digits < 6) {
        frac = frac * 10 + (rest[n] - '0');
        ++digits;
      }
      ++n;
    }
    while (digits++ < 6) frac *= 10;
    us += frac;
    rest.remove_prefix(n);
  }
  if (rest == "Z" || rest.empty()) return us;
  int hh = 0;
  int mm = 0;
  if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') &&
      std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &hh, &mm) == 2) {
    const std::int64_t offset = (static_cast<std::int64_t>(hh) * 60 + mm) * 60 * 1000000;
    return rest[0] == '+' ? us - offset : us + offset;
  }
  return std::nullopt;
}

}  // namespace adapter
