// Fuzz target for a lab document's whole way in, after the transport: what HTTP ingress and drop
// folders do with an XML body (xml::parse with the listener's limits, route_xml,
// document_identifier), then what the mapping worker does with it (map_xml through the shipped
// mappings/, the daemon's output checks, the compact dump that is stored and sent).
//
// fuzz_xml_parse covers the parser alone; this one feeds hostile and mutated vendor reports to
// the templates, where XPath results of unexpected shapes (no node, several, text instead of an
// element) meet expressions, partials and lookups. Beyond "no crash, no UB, no hang":
//   - a document identifier is empty or 1..200 bytes with no surrounding whitespace;
//   - mapping the same document twice, the second time with --explain, gives byte-identical
//     output, the same issues and the same unmapped report (deterministic identifiers and
//     fullUrls: replays create nothing twice; explaining changes nothing);
//   - the output holds no empty string, array or object (the engine's promise);
//   - every issue has a non-empty, one-line message.
// Every bug it finds gets a reproducer in fixtures/fuzz/xml_document/regress-*.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mapping/document_id.h"
#include "mapping/engine.h"
#include "mapping_fuzz_support.h"
#include "xml/document.h"

using namespace adapter::fuzz;  // NOLINT(google-build-using-namespace): a test's own helpers
namespace xml = adapter::xml;

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
  mapping::MappingSettings s = settings();
  const mapping::MappingResult first = mapping::map_xml(set, **route, *doc, s);
  s.explain = true;
  check_mapping(first, mapping::map_xml(set, **route, *doc, s));
  return 0;
}
