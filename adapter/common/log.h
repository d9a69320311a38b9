// Structured logs: one JSON object per line on stderr, e.g.
//   {"ts":"2026-11-26T13:55:02.120Z","level":"info","event":"mllp.ack","listener":"lab","ack":"AA"}
//
// Patient data never goes into a log line by default. Callers pass only identifiers the adapter
// owns (message ids, listener names, error codes and locations). Anything taken from a message
// body (an error text quoting a field, say) goes through `phi(...)`, which is replaced by
// "[redacted]" unless `log.include_phi` is set for debugging.
//
// Thread-safe: each line is written with a single write(2) call.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <variant>

namespace adapter::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

// A value that may carry patient data: logged only when include_phi is on.
struct Phi {
  std::string_view text;
};
inline Phi phi(std::string_view text) {
  return Phi{text};
}

struct Field {
  using Value = std::variant<std::string_view, std::int64_t, std::uint64_t, double, bool, Phi>;
  std::string_view key;
  Value value;

  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, Phi v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  Field(std::string_view k, int v) : key(k), value(std::int64_t{v}) {}
  Field(std::string_view k, long v) : key(k), value(std::int64_t{v}) {}
  Field(std::string_view k, long long v) : key(k), value(std::int64_t{v}) {}
  Field(std::string_view k, unsigned v) : key(k), value(std::uint64_t{v}) {}
  Field(std::string_view k, unsigned long v) : key(k), value(std::uint64_t{v}) {}
  Field(std::string_view k, unsigned long long v) : key(k), value(std::uint64_t{v}) {}
};

struct Options {
  Level level = Level::info;
  bool include_phi = false;  // debugging only: lets Phi values into the log
  int fd = 2;                // where lines go; tests point it at a pipe or file
};

void configure(const Options& options);
bool enabled(Level level);

void write(Level level, std::string_view event, std::initializer_list<Field> fields);

inline void debug(std::string_view e, std::initializer_list<Field> f = {}) {
  write(Level::debug, e, f);
}
inline void info(std::string_view e, std::initializer_list<Field> f = {}) {
  write(Level::info, e, f);
}
inline void warn(std::string_view e, std::initializer_list<Field> f = {}) {
  write(Level::warn, e, f);
}
inline void error(std::string_view e, std::initializer_list<Field> f = {}) {
  write(Level::error, e, f);
}

bool parse_level(std::string_view text, Level& out);

}  // namespace adapter::log
