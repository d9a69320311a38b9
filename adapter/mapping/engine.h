// Mapping a message through its template into FHIR JSON.
//
//   auto set = load_template_set(files);                  // once; reload builds a new set
//   auto route = route_hl7(*set, hl7v2::header_of(msg));  // which template
//   auto result = map_hl7(*set, *route, msg, settings);   // the Bundle, issues, unmapped report
//   (XML reports: xml::parse, route_xml, map_xml; templates then read the source with xpath())
//
// Bad data never throws and never stops mapping at the first problem: each is an Issue with the
// template position and the source path ("OBX[4]-5.1"). An error-severity issue means the
// message must not be delivered (mapping-failed, kept for replay once the template is fixed).
// Thread-safe: a TemplateSet is immutable and may be shared by any number of mappings.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "hl7v2/header.h"
#include "hl7v2/message.h"
#include "mapping/json.h"
#include "mapping/template.h"
#include "xml/document.h"

namespace adapter::mapping {

struct Issue {
  enum class Severity { error, warning, information };
  Severity severity = Severity::error;
  std::string message;
  std::string template_pos;  // "mappings/hl7v2/oru_r01.json:120:9"
  std::string source;        // "OBX[4]-5.1", an XPath, or empty
  std::string to_string() const;
};
std::string_view to_string(Issue::Severity s);

struct MappingSettings {
  // Offset for times that carry no zone ("+01:00" -> 60); nullopt: such times are errors.
  std::optional<int> default_offset_minutes;
  Json feed;    // $feed in templates: the feed's mapping settings (an object)
  Json source;  // $source: receipt facts (control_id, sender, received_at, sha256, ...)
  bool explain = false;
};

struct MappingResult {
  Json output;  // the Bundle (or whatever the template produces)
  std::string template_name;
  std::string template_version;
  std::string template_file;
  std::vector<Issue> issues;
  std::vector<std::string> unmapped;  // "OBX[3]-6.1 = mg/dl": content no template read
  std::vector<std::string> explain;   // with settings.explain: which rule made each resource

  bool failed() const;  // any error-severity issue
};

// The first route whose conditions hold for this header, or an error naming what was looked for.
Result<const Template*> route_hl7(const TemplateSet& set, const hl7v2::Header& header);

MappingResult map_hl7(const TemplateSet& set, const Template& tmpl, const hl7v2::Message& message,
                      const MappingSettings& settings);

// XML: routes with "xml_root" (the root element's local name) and optionally "xml_namespace".
Result<const Template*> route_xml(const TemplateSet& set, const xml::Document& document);

MappingResult map_xml(const TemplateSet& set, const Template& tmpl, const xml::Document& document,
                      const MappingSettings& settings);

}  // namespace adapter::mapping
