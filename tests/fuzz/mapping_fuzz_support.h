// What the fuzz targets that run the shipped mappings share (fuzz_xml_document,
// fuzz_hl7v2_translate): the template set loaded once from the repository's mappings/, the
// settings the daemon's defaults give, and the invariants every mapping output must keep.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fuzz_check.h"
#include "mapping/engine.h"
#include "mapping/template.h"

#ifndef ADAPTER_MAPPINGS_DIR
#error "ADAPTER_MAPPINGS_DIR must name the shipped mappings/ folder"
#endif

namespace adapter::fuzz {

namespace fs = std::filesystem;
namespace mapping = adapter::mapping;

// mappings/ on disk, as adapterd reads it.
class Folder : public mapping::FileSource {
 public:
  explicit Folder(fs::path root) : root_(std::move(root)) {}
  adapter::Result<std::string> read(const std::string& path) const override {
    std::ifstream in(root_ / path, std::ios::binary);
    if (!in) return adapter::make_error(adapter::Errc::io_error, "cannot read " + path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  std::vector<std::string> list(const std::string& folder,
                                const std::string& suffix) const override {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root_ / folder, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const std::string p = fs::relative(it->path(), root_).generic_string();
      if (p.size() >= suffix.size() &&
          p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0)
        out.push_back(p);
    }
    return out;
  }

 private:
  fs::path root_;
};

inline const mapping::TemplateSet& templates() {
  static const std::shared_ptr<const mapping::TemplateSet> set = [] {
    auto loaded = mapping::load_template_set(Folder(ADAPTER_MAPPINGS_DIR));
    if (!loaded) {
      for (const auto& e : loaded.error()) {
        std::fprintf(stderr, "%s: %s\n", e.where.c_str(), e.message.c_str());
      }
      std::abort();
    }
    return *loaded;
  }();
  return *set;
}

inline mapping::MappingSettings settings() {
  using mapping::Json;
  mapping::MappingSettings s;
  s.default_offset_minutes = 0;
  s.feed = Json::object({{"patient_mode", Json::string("conditional-create")},
                         {"identifier_system", Json::string("urn:adapterd:identifier")},
                         {"genome_build", Json::string("GRCh37")}});
  s.source = Json::object({{"sha256", Json::string(std::string(64, '0'))},
                           {"message_id", Json::number("1")},
                           {"received_at", Json::string("2026-01-01T00:00:00Z")}});
  return s;
}

inline bool one_line(std::string_view s) {
  return !s.empty() && s.find('\n') == std::string_view::npos &&
         s.find('\r') == std::string_view::npos;
}

inline void check_no_empty(const mapping::Json& j) {
  using K = mapping::Json::Kind;
  switch (j.kind()) {
    case K::string:
      FUZZ_CHECK(!j.as_string().empty());
      break;
    case K::array:
      FUZZ_CHECK(!j.as_array().empty());
      for (const auto& i : j.as_array()) check_no_empty(i);
      break;
    case K::object:
      FUZZ_CHECK(!j.as_object().empty());
      for (const auto& [k, v] : j.as_object()) check_no_empty(v);
      break;
    default:
      break;
  }
}

// Two mappings of the same input (the second with explain on, which must change no output) agree
// byte for byte, issue for issue; every issue and unmapped place is one line; nothing empty
// reaches the output.
inline void check_mapping(const mapping::MappingResult& first,
                          const mapping::MappingResult& second) {
  FUZZ_CHECK(first.output.dump() == second.output.dump());
  FUZZ_CHECK(first.issues.size() == second.issues.size());
  for (std::size_t i = 0; i < first.issues.size(); ++i) {
    FUZZ_CHECK(one_line(first.issues[i].message));
    FUZZ_CHECK(first.issues[i].message == second.issues[i].message);
  }
  FUZZ_CHECK(first.unmapped == second.unmapped);
  for (const std::string& place : first.unmapped) FUZZ_CHECK(one_line(place));
  check_no_empty(first.output);
}

}  // namespace adapter::fuzz
