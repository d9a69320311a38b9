// Helpers shared by the HL7 v2 tests: reading samples and an independent UTF-8 encoder.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>

#include "hl7v2/message.h"

namespace adapter::hl7v2::test {

// A sample from fixtures/hl7v2/samples, byte for byte.
inline std::string read_sample(const std::string& name) {
  const std::string path = std::string(ADAPTER_FIXTURES_DIR) + "/hl7v2/samples/" + name;
  std::ifstream in(path, std::ios::binary);
  INFO(path);
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline Message parse_ok(std::string_view bytes) {
  auto r = Message::parse(bytes);
  if (!r) FAIL("parse failed: " << r.error().to_string() << "\n" << bytes);
  return std::move(r).value();
}

// UTF-8 encoding written here rather than borrowed from the adapter (common/utf8.h), so that
// tests of the adapter's decoding do not check it against itself.
inline void put_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace adapter::hl7v2::test
