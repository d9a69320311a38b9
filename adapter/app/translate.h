// Mapping HL7 v2 input with the configured templates, for the daemon's mapping step and for
// the integration engineer's commands: `adapterd translate`, `check` and `test-mappings`.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "app/config.h"
#include "hl7v2/types.h"
#include "mapping/engine.h"
#include "mapping/template.h"
#include "xml/document.h"

namespace adapter::app {

using TemplateSetPtr = std::shared_ptr<const mapping::TemplateSet>;

// Loads config.mapping.directory; every problem is reported ("file:line:column: message").
Result<TemplateSetPtr, std::vector<Error>> load_mappings(const MappingConfig& config);

// Facts about how a message arrived, which templates read as $source.
struct Arrival {
  std::string received_at;  // FHIR instant; empty: MSH-7 is used (translate, golden files)
  std::string listener;
  std::int64_t message_id = 0;
  // An earlier message about the same report was queued for delivery: this one supersedes it
  // (MappingWorker::map_stored; `translate --supersedes` and a golden case's source.json).
  bool supersedes = false;
};

struct MappedMessage {
  std::string label;                 // "file.hl7", or "file.hl7#2" for a batch's second
  std::optional<Error> input_error;  // not parseable, or no route: nothing was mapped
  mapping::MappingResult result;

  bool ok() const { return !input_error && !result.failed(); }
};

class Mapper {
 public:
  Mapper(TemplateSetPtr set, const MappingConfig& config) : set_(std::move(set)), config_(config) {}

  // One message, each message of a batch, or one XML document.
  std::vector<MappedMessage> map(std::string_view bytes, const std::string& label,
                                 const Arrival& receipt, bool explain) const;
  MappedMessage map_message(std::string_view bytes, const std::string& label,
                            const Arrival& receipt, bool explain) const;
  MappedMessage map_document(std::string_view bytes, const std::string& label,
                             const Arrival& receipt, bool explain) const;  // XML
  const mapping::TemplateSet& templates() const { return *set_; }
  // $feed for a message from `source` (MappingConfig::feed_for).
  const mapping::Json& feed_for(std::string_view source) const { return config_.feed_for(source); }

 private:
  mapping::MappingSettings settings_for(mapping::JsonObject source, std::string_view bytes,
                                        const std::string& received_at, const Arrival& receipt,
                                        bool explain) const;
  TemplateSetPtr set_;
  MappingConfig config_;
  xml::Limits xml_limits_;
};

// `arrival.supersedes`: map as the daemon maps a message that follows an earlier one about the
// same report (a final result after a preliminary one).
int translate_command(const Config& config, const std::vector<std::string>& files, bool explain,
                      const Arrival& arrival, std::ostream& out, std::ostream& err);
// Runs the golden cases under `folder` (fixtures/mappings/README.md); with `update`, writes
// each case's expected files from what the mappings produce now.
int test_mappings_command(const Config& config, const std::string& folder, bool update,
                          std::ostream& out);
int check_mappings(const Config& config, std::ostream& out);  // 0 when every template loads
// Destination filters naming a template the set does not have, which would take nothing from
// it: one error per name, located in the configuration ("/destinations/1/filter/templates/0").
std::vector<Error> check_destination_filters(const std::vector<DestinationConfig>& destinations,
                                             const mapping::TemplateSet& set);
void print_functions(std::ostream& out);

}  // namespace adapter::app
