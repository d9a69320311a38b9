// Fuzz target for an HL7 v2 message's whole way through the mapping, as the mapping worker and
// `adapterd translate` take it once the message is stored: hl7v2::Message::parse, header_of,
// route_hl7, then map_hl7 through the shipped mappings/ (every OBX-4 grouping form, partials,
// lookups, date conversion, the daemon's output checks) and the compact dump that is sent.
//
// fuzz_hl7v2_parse covers the parser alone; this one feeds mutated ORU^R01 messages to the
// templates, where fields of unexpected shapes (repetitions, components, escapes, sub-IDs that
// are not sub-IDs, dates that are not dates) meet expressions, partials and lookups. Beyond "no
// crash, no UB, no hang":
//   - mapping the same message twice, the second time with --explain, gives byte-identical
//     output, the same issues and the same unmapped report (deterministic identifiers and
//     fullUrls: replays create nothing twice; explaining changes nothing);
//   - the output holds no empty string, array or object (the engine's promise);
//   - every issue has a non-empty, one-line message, and so does a routing error.
// Every bug it finds gets a reproducer in fixtures/fuzz/hl7v2_translate/regress-*.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "hl7v2/header.h"
#include "hl7v2/message.h"
#include "mapping/engine.h"
#include "mapping_fuzz_support.h"

using namespace adapter::fuzz;  // NOLINT(google-build-using-namespace): a test's own helpers
namespace hl7v2 = adapter::hl7v2;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 256 * 1024) return 0;  // the daemon's frames are bounded too (max_frame_bytes)
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto message = hl7v2::Message::parse(bytes);
  if (!message) return 0;
  const mapping::TemplateSet& set = templates();
  auto route = mapping::route_hl7(set, hl7v2::header_of(*message));
  if (!route) {
    FUZZ_CHECK(one_line(route.error().message));
    return 0;
  }
  mapping::MappingSettings s = settings();
  const mapping::MappingResult first = mapping::map_hl7(set, **route, *message, s);
  s.explain = true;
  check_mapping(first, mapping::map_hl7(set, **route, *message, s));
  return 0;
}
