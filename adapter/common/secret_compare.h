// Comparing a presented credential with the expected one.
#pragma once

#include <cstddef>
#include <string_view>

namespace adapter {

// Takes time that depends on the lengths only, not on where the first difference is, so that
// response timing does not reveal how much of a guessed key was right. Empty never matches.
inline bool same_secret(std::string_view presented, std::string_view expected) {
  if (presented.size() != expected.size() || expected.empty()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    diff |= static_cast<unsigned char>(presented[i] ^ expected[i]);
  }
  return diff == 0;
}

}  // namespace adapter
