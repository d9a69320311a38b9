// Fuzz target for a lab document's whole way in, after the transport: what HTTP ingress and drop
// folders do with an XML body (xml::parse with the listener's limits, route_xml,
// document_identifier), then what the mapping worker does with it (map_xml through the shipped
// mappings/, the daemon's output checks, the compact dump that is stored and sent).
//
// fuzz_xml_parse covers the parser alone; this one feeds hostile and mutated vendor reports to
// the templates, where XPath results of unexpected shapes (no node, several, text instead of an
// element) meet expressions, partials and lookups. Beyond "no crash, no UB, no hang":
//   - a document identifier is empty or 1..200 bytes with no surrounding whitespace;
//   - mapping the same document twice gives byte-identical output and the same issues
//     (deterministic identifiers and fullUrls: replays create nothing twice);
//   - the output holds no empty string, array or object (the engine's promise);
//   - every issue has a non-empty, one-line message.
// Every bug it finds gets a reproducer in fixtures/fuzz/xml_document/regress-*.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mapping/document_id.h"
#include "mapping/engine.h"
#include "mapping/template.h"
#include "xml/document.h"

#ifndef ADAPTER_MAPPINGS_DIR
#error "ADAPTER_MAPPINGS_DIR must name the shipped mappings/ folder"
#endif

namespace {

namespace fs = std::filesystem;
namespace mapping = adapter::mapping;
namespace xml = adapter::xml;

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

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

const mapping::TemplateSet& templates() {
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

mapping::MappingSettings settings() {
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

bool one_line(std::string_view s) {
  return !s.empty() && s.find('\n') == std::string_view::npos &&
         s.find('\r') == std::string_view::npos;
}

void check_no_empty(const mapping::Json& j) {
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  xml::Limits limits;
  limits.max_bytes = 1024 * 1024;
  auto doc = xml::parse(bytes, limits);
  if (!doc) return 0;
  const mapping::TemplateSet& set = templates();
  auto route = mapping::route_xml(set, *doc);
  if (!route) {
    FUZZ_CHECK(one_line(route.error().message));
    return 0;
  }
  auto id = mapping::document_identifier(**route, *doc);
  if (id) {
    FUZZ_CHECK(id->size() <= mapping::kMaxDocumentIdBytes);
    if (!id->empty()) {
      FUZZ_CHECK(id->front() != ' ' && id->back() != ' ' && id->front() != '\n' &&
                 id->back() != '\n');
    }
  } else {
    FUZZ_CHECK(one_line(id.error().message));
  }
  const mapping::MappingSettings s = settings();
  const mapping::MappingResult first = mapping::map_xml(set, **route, *doc, s);
  const mapping::MappingResult second = mapping::map_xml(set, **route, *doc, s);
  const std::string text = first.output.dump();
  FUZZ_CHECK(text == second.output.dump());
  FUZZ_CHECK(first.issues.size() == second.issues.size());
  for (std::size_t i = 0; i < first.issues.size(); ++i) {
    FUZZ_CHECK(one_line(first.issues[i].message));
    FUZZ_CHECK(first.issues[i].message == second.issues[i].message);
  }
  check_no_empty(first.output);
  return 0;
}
