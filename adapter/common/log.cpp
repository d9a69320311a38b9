#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <ctime>
#include <string>

#include "common/json_text.h"

namespace adapter::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::info)};
std::atomic<bool> g_include_phi{false};
std::atomic<int> g_fd{2};

constexpr std::string_view kLevelNames[] = {"debug", "info", "warn", "error"};

void append_timestamp(std::string& out) {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  out.append(buf, n);
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms.count() % 1000));
  out += frac;
}

template <class N>
void append_number(std::string& out, N n) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  (void)ec;
  out.append(buf, end);
}

}  // namespace

void configure(const Options& options) {
  g_level = static_cast<int>(options.level);
  g_include_phi = options.include_phi;
  g_fd = options.fd;
}

bool enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

bool parse_level(std::string_view text, Level& out) {
  for (std::size_t i = 0; i < std::size(kLevelNames); ++i) {
    if (kLevelNames[i] == text) {
      out = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

void write(Level level, std::string_view event, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  thread_local std::string line;
  line.clear();
  line += "{\"ts\":\"";
  append_timestamp(line);
  line += "\",\"level\":\"";
  line += kLevelNames[static_cast<int>(level)];
  line += "\",\"event\":";
  append_json_string(line, event);
  for (const Field& f : fields) {
    line.push_back(',');
    append_json_string(line, f.key);
    line.push_back(':');
    std::visit(
        [](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::string_view>) {
            append_json_string(line, v);
          } else if constexpr (std::is_same_v<V, Phi>) {
            append_json_string(line, g_include_phi ? v.text : std::string_view("[redacted]"));
          } else if constexpr (std::is_same_v<V, bool>) {
            line += v ? "true" : "false";
          } else if constexpr (std::is_same_v<V, double>) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.6g", v);
            line += buf;
          } else {
            append_number(line, v);
          }
        },
        f.value);
  }
  line += "}\n";
  const int fd = g_fd.load(std::memory_order_relaxed);
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n <= 0) return;  // nowhere to report a failing log sink; drop the line
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace adapter::log
