// The pieces of the Prometheus text format every /metrics family is written with: its
// "# HELP" and "# TYPE" lines (once per family), then one sample line per labelled instance.
#pragma once

#include <string>
#include <string_view>

namespace adapter::app {

inline void append_family_header(std::string& out, std::string_view name, std::string_view help,
                                 std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// name{label="label_value"} value   (no braces when `label` is empty)
inline void append_sample(std::string& out, std::string_view name, std::string_view label,
                          std::string_view label_value, std::string_view value) {
  out += name;
  if (!label.empty()) {
    out += '{';
    out += label;
    out += "=\"";
    out += label_value;
    out += "\"}";
  }
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace adapter::app
