#include "mapping/fhir_checks.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <functional>
#include <map>
#include <string_view>
#include <utility>

namespace adapter::mapping {
namespace {

struct Code {
  std::string_view system;
  std::string_view code;
  std::string_view display;  // for messages only
};

constexpr std::string_view kLoinc = "http://loinc.org";
constexpr std::string_view kTbd =
    "http://hl7.org/fhir/uv/genomics-reporting/CodeSystem/tbd-codes-cs";
constexpr std::string_view kProfileBase =
    "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/";

constexpr Code kLaboratory{"http://terminology.hl7.org/CodeSystem/observation-category",
                           "laboratory", "Laboratory"};
constexpr Code kGenetics{"http://terminology.hl7.org/CodeSystem/v2-0074", "GE", "Genetics"};
constexpr Code kBiomarkerCategory{kTbd, "biomarker-category", "Biomarker Category"};
constexpr Code kGenomicReportCode{kLoinc, "51969-4", "Genetic analysis report"};
constexpr Code kGeneStudied{kLoinc, "48018-6", "Gene studied [ID]"};

// LL1971-2, the required binding of Variant.valueCodeableConcept.
constexpr std::array<Code, 4> kVariantValues = {{
    {kLoinc, "LA9633-4", "Present"},
    {kLoinc, "LA9634-2", "Absent"},
    {kLoinc, "LA18198-4", "No call"},
    {kLoinc, "LA11884-6", "Indeterminate"},
}};

// What a Genomics Reporting STU3 profile asks of the resources that claim it, as far as checked
// here. Profiles absent from this table are not STU3 profiles (e.g. the STU1 ids genomics-report,
// tmb, msi, region-studied), which an EHR validating against 3.0.0 rejects.
enum class Rules {
  none,         // not an Observation profile, or nothing checked beyond the resource type
  genomic,      // GenomicBase: category v2-0074#GE (1..1) next to laboratory
  coded,        // genomic, and value[x] is a valueCodeableConcept (1..1)
  implication,  // genomic, derivedFrom 1..*, value[x] 0..0
  biomarker,    // MolecularBiomarker: category biomarker-category; GE is optional
};

struct Profile {
  std::string_view id;             // the last segment of the canonical URL
  std::string_view resource_type;  // what it constrains
  std::string_view title;
  Rules rules = Rules::none;
  Code code;  // fixed code; empty system when the profile does not fix it
};

constexpr Code kVariantCode{kLoinc, "69548-6", "Genetic variant assessment"};
constexpr Code kGenotypeCode{kLoinc, "84413-4", "Genotype display name"};
constexpr Code kHaplotypeCode{kLoinc, "84414-2", "Haplotype name"};
constexpr Code kPhaseCode{kLoinc, "82120-7", "Allelic phase"};
constexpr Code kDiagnosticCode{kTbd, "diagnostic-implication", "Diagnostic Implication"};
constexpr Code kTherapeuticCode{kTbd, "therapeutic-implication", "Therapeutic Implication"};
constexpr Code kConsequenceCode{kTbd, "molecular-consequence", "Molecular Consequence"};

constexpr std::array<Profile, 17> kProfiles = {{
    {"genomic-report", "DiagnosticReport", "GenomicReport", Rules::none, kGenomicReportCode},
    {"variant", "Observation", "Variant", Rules::coded, kVariantCode},
    {"genotype", "Observation", "Genotype", Rules::coded, kGenotypeCode},
    {"haplotype", "Observation", "Haplotype", Rules::coded, kHaplotypeCode},
    {"sequence-phase-relationship", "Observation", "SequencePhaseRelationship", Rules::coded,
     kPhaseCode},
    {"molecular-biomarker", "Observation", "MolecularBiomarker", Rules::biomarker, {}},
    {"diagnostic-implication", "Observation", "DiagnosticImplication", Rules::implication,
     kDiagnosticCode},
    {"therapeutic-implication", "Observation", "TherapeuticImplication", Rules::implication,
     kTherapeuticCode},
    {"molecular-consequence", "Observation", "MolecularConsequence", Rules::implication,
     kConsequenceCode},
    {"genomic-base", "Observation", "GenomicBase", Rules::genomic, {}},
    {"finding", "Observation", "GenomicFinding", Rules::genomic, {}},
    {"implication", "Observation", "GenomicImplication", Rules::implication, {}},
    {"genomic-study", "Procedure", "GenomicStudy", Rules::none, {}},
    {"genomic-study-analysis", "Procedure", "GenomicStudyAnalysis", Rules::none, {}},
    {"genomic-data-file", "DocumentReference", "GenomicDataFile", Rules::none, {}},
    {"medication-recommendation", "Task", "MedicationRecommendation", Rules::none, {}},
    {"followup-recommendation", "Task", "FollowupRecommendation", Rules::none, {}},
}};

// The value[x] type each component slice of the GR profiles allows (IG STU3: CGFindings.fsh,
// CGImplications.fsh, MolecularBiomarker). A wrong type is rejected by a validating EHR and read
// wrongly by one that does not (an HGVS sent as valueString is not an HGVS code).
struct Slice {
  Code code;
  std::string_view name;
  std::array<std::string_view, 2> types;  // the second is empty when only one type is allowed
};

constexpr std::string_view kCC = "valueCodeableConcept";
constexpr std::string_view kQuantity = "valueQuantity";
constexpr std::string_view kRange = "valueRange";
constexpr std::string_view kString = "valueString";

constexpr std::array<Slice, 40> kSlices = {{
    {{kLoinc, "48018-6", {}}, "gene-studied", {kCC}},
    {{kLoinc, "48001-2", {}}, "cytogenetic-location", {kCC}},
    {{kLoinc, "62374-4", {}}, "reference-sequence-assembly", {kCC}},
    {{kLoinc, "48000-4", {}}, "chromosome-identifier", {kCC}},
    {{kLoinc, "48004-6", {}}, "representative-coding-hgvs", {kCC}},
    {{kLoinc, "81290-9", {}}, "genomic-hgvs", {kCC}},
    {{kLoinc, "48005-3", {}}, "representative-protein-hgvs", {kCC}},
    {{kLoinc, "81291-7", {}}, "cytogenomic-nomenclature", {kCC}},
    {{kLoinc, "48013-7", {}}, "genomic-ref-seq", {kCC}},
    {{kLoinc, "51958-7", {}}, "representative-transcript-ref-seq", {kCC}},
    {{kTbd, "protein-ref-seq", {}}, "representative-protein-ref-seq", {kCC}},
    {{kLoinc, "81254-5", {}}, "exact-start-end", {kRange}},
    {{kLoinc, "81302-2", {}}, "inner-start-end", {kRange}},
    {{kLoinc, "81301-4", {}}, "outer-start-end", {kRange}},
    {{kLoinc, "92822-6", {}}, "coordinate-system", {kCC}},
    {{kLoinc, "69547-8", {}}, "ref-allele", {kString}},
    {{kLoinc, "69551-0", {}}, "alt-allele", {kString}},
    {{kLoinc, "48019-4", {}}, "coding-change-type", {kCC}},
    {{kLoinc, "48002-0", {}}, "genomic-source-class", {kCC}},
    {{kLoinc, "81258-6", {}}, "sample-allelic-frequency", {kQuantity}},
    {{kLoinc, "82121-5", {}}, "allelic-read-depth", {kQuantity}},
    {{kLoinc, "53034-5", {}}, "allelic-state", {kCC}},
    {{kLoinc, "94186-4", {}}, "variant-inheritance", {kCC}},
    {{kLoinc, "82309-6", {}}, "variant-inheritance-basis", {kCC}},
    {{kLoinc, "81252-9", {}}, "variation-code", {kCC}},
    {{kLoinc, "82155-3", {}}, "copy-number", {kQuantity, kRange}},
    {{kTbd, "variant-confidence-status", {}}, "variant-confidence-status", {kCC}},
    {{kTbd, "repeat-motif", {}}, "repeat-motif", {kString}},
    {{kTbd, "repeat-number", {}}, "repeat-number", {kQuantity}},
    {{kTbd, "conclusion-string", {}}, "conclusion-string", {kString}},
    {{kLoinc, "93044-6", {}}, "evidence-level", {kCC}},
    {{kLoinc, "53037-8", {}}, "clinical-significance", {kCC}},
    {{kLoinc, "81259-4", {}}, "predicted-phenotype", {kCC}},
    {{kTbd, "condition-inheritance", {}}, "mode-of-inheritance", {kCC}},
    {{kTbd, "therapeutic-implication", {}}, "therapeutic-implication", {kCC}},
    {{kLoinc, "51963-7", {}}, "medication-assessed", {kCC}},
    {{kTbd, "associated-therapy", {}}, "therapy-assessed", {kCC}},
    {{kTbd, "feature-consequence", {}}, "feature-consequence", {kCC}},
    {{kTbd, "functional-effect", {}}, "functional-effect", {kCC}},
    {{kTbd, "biomarker-category", {}}, "biomarker-category", {kCC}},
}};

// The value[x] types of Observation and Observation.component in FHIR R4.
constexpr std::array<std::string_view, 11> kValueTypes = {
    "valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean",
    "valueInteger",  "valueRange",           "valueRatio",  "valueSampledData",
    "valueTime",     "valueDateTime",        "valuePeriod"};

constexpr std::array<std::string_view, 6> kHttpVerbs = {"GET", "HEAD",   "POST",
                                                        "PUT", "DELETE", "PATCH"};

template <class Range, class T>
bool contains(const Range& range, const T& value) {
  return std::find(std::begin(range), std::end(range), value) != std::end(range);
}

std::string show(const Code& c) {
  std::string out = std::string(c.system) + "#" + std::string(c.code);
  if (!c.display.empty()) out += " (" + std::string(c.display) + ")";
  return out;
}

std::string join(const std::vector<std::string_view>& items, std::string_view separator) {
  std::string out;
  for (const std::string_view item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

// Concatenation without a temporary per '+': paths and messages are built in loops.
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (out.append(std::string_view(parts)), ...);
  return out;
}

std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

// A string member's text, or nothing; reads like the pointer to it that it stands for.
class TextRef {
 public:
  TextRef() = default;
  TextRef(std::nullptr_t) {}  // NOLINT: as a pointer would
  explicit TextRef(std::string_view text) : text_(text), present_(true) {}
  const std::string_view& operator*() const { return text_; }
  const std::string_view* operator->() const { return &text_; }
  bool operator==(std::nullptr_t) const { return !present_; }

 private:
  std::string_view text_;
  bool present_ = false;
};

TextRef string_member(const Json& object, std::string_view key) {
  const Json* value = object.find(key);
  return value != nullptr && value->is_string() ? TextRef(value->as_string()) : TextRef();
}

bool has_coding(const Json* codeable, const Code& c) {
  const Json* codings = codeable != nullptr ? codeable->find("coding") : nullptr;
  if (codings == nullptr || !codings->is_array()) return false;
  return std::any_of(codings->as_array().begin(), codings->as_array().end(), [&](const Json& x) {
    TextRef system = string_member(x, "system");
    TextRef code = string_member(x, "code");
    // The code first: short, and what differs; most systems are the same few long URLs.
    return system != nullptr && code != nullptr && *code == c.code && *system == c.system;
  });
}

// Observation.category and DiagnosticReport.category: 0..* CodeableConcept.
bool has_category(const Json& resource, const Code& c) {
  const Json* category = resource.find("category");
  if (category == nullptr || !category->is_array()) return false;
  return std::any_of(category->as_array().begin(), category->as_array().end(),
                     [&](const Json& codeable) { return has_coding(&codeable, c); });
}

// Keys that are value[x] choices, in member order. A bare "value" counts too: it is always a
// template mistake in an Observation or component.
// (Views into `object`'s keys.)
std::vector<std::string_view> value_keys(const Json& object) {
  std::vector<std::string_view> out;
  for (const auto& member : object.as_object()) {
    if (member.name().starts_with("value")) out.push_back(member.name());
  }
  return out;
}

// The first of kSlices whose code is one of the concept's codings (as has_coding() tells), with
// the codings read once rather than once per slice.
const Slice* find_slice(const Json* code) {
  const Json* codings = code != nullptr ? code->find("coding") : nullptr;
  if (codings == nullptr || !codings->is_array()) return nullptr;
  std::vector<std::pair<std::string_view, std::string_view>> given;  // (system, code)
  for (const Json& x : codings->as_array()) {
    TextRef system = string_member(x, "system");
    TextRef value = string_member(x, "code");
    if (system != nullptr && value != nullptr) given.emplace_back(*system, *value);
  }
  for (const Slice& slice : kSlices) {
    for (const auto& [system, value] : given) {
      if (value == slice.code.code && system == slice.code.system) return &slice;
    }
  }
  return nullptr;
}

// "component 81254-5 (exact-start-end)", or the first code when the slice is not one of ours.
std::string component_label(const Json* code, const Slice* slice) {
  if (slice != nullptr) {
    return "component " + std::string(slice->code.code) + " (" + std::string(slice->name) + ")";
  }
  const Json* codings = code != nullptr ? code->find("coding") : nullptr;
  if (codings != nullptr && codings->is_array() && !codings->as_array().empty()) {
    TextRef first = string_member(codings->as_array().front(), "code");
    if (first != nullptr) return "component " + std::string(*first);
  }
  return "the component";
}

// FHIR's uuid type: "urn:uuid:" and a lowercase 8-4-4-4-12 hex UUID.
bool is_urn_uuid(std::string_view s) {
  constexpr std::string_view prefix = "urn:uuid:";
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

std::string empty_message(const Json& value) {
  switch (value.kind()) {
    case Json::Kind::null:
      return "is null; FHIR JSON has no null values: leave the element out";
    case Json::Kind::string:
      return "is an empty string; FHIR values must not be empty: leave the element out";
    case Json::Kind::array:
      return "is an empty array; FHIR arrays must not be empty: leave the element out";
    default:
      return "is an empty object; every FHIR element needs a value or children (ele-1): leave "
             "the element out";
  }
}

class Checker {
 public:
  std::vector<BundleProblem> run(const Json& bundle);

 private:
  struct EntryInfo {
    std::size_t index = 0;
    std::string resource_type;
  };
  using Claimed = std::vector<const Profile*>;

  void problem(std::string where, std::string message) {
    problems_.push_back({std::move(where), std::move(message)});
  }
  void index_entries(std::span<const Json> entries);
  void check_entry(const Json& entry, std::size_t index);
  void check_request(const Json& entry, const std::string& path, TextRef type);
  // Where a value stands, for the generic walk over every element. A problem names it as
  // "Bundle.entry[3].resource(Observation).code"; building that text for every element of a
  // clean Bundle would cost more than the checks, so each level only points at its parent and
  // the text is made when a problem is reported.
  struct Where {
    const Where* parent = nullptr;
    std::string_view text;  // the root's whole path, or a member name, or
    std::string_view type;  // with a member "resource": its resourceType ("resource(Type)")
    std::size_t index = 0;  // for an array item ("[i]"): index + 1

    static Where root(std::string_view path) { return Where{nullptr, path, {}, 0}; }
    Where member(std::string_view key) const { return Where{this, key, {}, 0}; }
    Where item(std::size_t i) const { return Where{this, {}, {}, i + 1}; }
    std::string str() const;
  };
  void check_members(const Json& object, const Where& where);
  void check_value(const Json& value, const Where& where, std::string_view key,
                   const Json* parent_object);
  Claimed check_profiles(const Json& resource, const std::string& path, const std::string& type);
  void check_observation(const Json& obs, const std::string& path, const Claimed& claimed);
  void check_components(const Json& obs, const std::string& path, bool sliced);
  void check_report(const Json& report, const std::string& path, const Claimed& claimed);

  std::map<std::string, EntryInfo, std::less<>> full_urls_;  // fullUrl -> its first entry
  std::vector<BundleProblem> problems_;
};

std::vector<BundleProblem> Checker::run(const Json& bundle) {
  if (!bundle.is_object()) {
    problem("Bundle", "is not a JSON object; expected a FHIR Bundle resource");
    return std::move(problems_);
  }
  TextRef resource_type = string_member(bundle, "resourceType");
  if (resource_type == nullptr || *resource_type != "Bundle") {
    problem("Bundle.resourceType", (resource_type != nullptr ? "is " + quoted(*resource_type)
                                                             : std::string("is missing")) +
                                       "; expected \"Bundle\"");
  }
  // A transaction is applied all or nothing, so a failed resource never leaves half a report.
  TextRef type = string_member(bundle, "type");
  if (type == nullptr || *type != "transaction") {
    problem("Bundle.type", (type != nullptr ? "is " + quoted(*type) : std::string("is missing")) +
                               "; expected \"transaction\" (the EHR applies all entries or none)");
  }
  for (const auto& member : bundle.as_object()) {
    if (member.name() != "entry") {
      const std::string path = "Bundle." + std::string(member.name());
      check_value(member.value, Where::root(path), member.name(), nullptr);
    }
  }
  const Json* entries = bundle.find("entry");
  if (entries == nullptr) {
    problem("Bundle.entry", "is missing; the mapping produced no resources to send");
    return std::move(problems_);
  }
  if (!entries->is_array()) {
    problem("Bundle.entry", "is not an array; expected an array of entries");
    return std::move(problems_);
  }
  if (entries->as_array().empty()) {
    check_value(*entries, Where::root("Bundle.entry"), "entry", nullptr);
  }
  index_entries(entries->as_array());
  for (std::size_t i = 0; i < entries->as_array().size(); ++i) {
    check_entry(entries->as_array()[i], i);
  }
  return std::move(problems_);
}

// References are checked against every fullUrl, wherever in the Bundle the target stands.
void Checker::index_entries(std::span<const Json> entries) {
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (!entries[i].is_object()) continue;
    TextRef full_url = string_member(entries[i], "fullUrl");
    if (full_url == nullptr || full_url->empty()) continue;
    const Json* resource = entries[i].find("resource");
    TextRef type = resource != nullptr ? string_member(*resource, "resourceType") : nullptr;
    full_urls_.try_emplace(std::string(*full_url),
                           EntryInfo{i, type != nullptr ? std::string(*type) : std::string()});
  }
}

void Checker::check_entry(const Json& entry, std::size_t index) {
  const std::string path = "Bundle.entry[" + std::to_string(index) + "]";
  if (!entry.is_object()) {
    problem(path, "is not a JSON object; expected {\"fullUrl\", \"resource\", \"request\"}");
    return;
  }
  if (entry.is_empty()) {
    check_value(entry, Where::root(path), "", nullptr);
    return;
  }
  check_members(entry, Where::root(path));

  const Json* full_url = entry.find("fullUrl");
  if (full_url == nullptr) {
    problem(path + ".fullUrl",
            "is missing; every entry needs a fullUrl \"urn:uuid:<uuid>\" so that the other "
            "resources can reference it");
  } else if (!full_url->is_string()) {
    problem(path + ".fullUrl", "is not a string; expected \"urn:uuid:<uuid>\"");
  } else if (!full_url->as_string().empty()) {
    const std::string_view url = full_url->as_string();
    const auto first = full_urls_.find(url);
    if (!is_urn_uuid(url)) {
      problem(path + ".fullUrl", quoted(url) +
                                     " is not a urn:uuid; expected \"urn:uuid:\" and a lowercase "
                                     "UUID (8-4-4-4-12 hex digits)");
    }
    if (first != full_urls_.end() && first->second.index != index) {
      problem(path + ".fullUrl", std::string(url) + " is also the fullUrl of Bundle.entry[" +
                                     std::to_string(first->second.index) +
                                     "]; each entry needs its own fullUrl");
    }
  }

  const Json* resource = entry.find("resource");
  TextRef type = nullptr;
  if (resource == nullptr || !resource->is_object()) {
    problem(path + ".resource", resource == nullptr
                                    ? "is missing; expected the FHIR resource this entry sends"
                                    : "is not a JSON object; expected a FHIR resource");
  } else if (!resource->is_empty()) {
    type = string_member(*resource, "resourceType");
    if (type == nullptr) {
      problem(path + ".resource.resourceType",
              "is missing; expected the FHIR resource type, e.g. \"Observation\"");
    } else if (type->empty()) {
      type = nullptr;  // reported as an empty element
    }
  }
  check_request(entry, path, type);
  if (type == nullptr) return;

  const std::string type_name(*type);
  const std::string resource_path = path + ".resource(" + type_name + ")";
  const Claimed claimed = check_profiles(*resource, resource_path, type_name);
  if (*type == "Observation") check_observation(*resource, resource_path, claimed);
  if (*type == "DiagnosticReport") check_report(*resource, resource_path, claimed);
}

void Checker::check_request(const Json& entry, const std::string& path, TextRef type) {
  const Json* request = entry.find("request");
  if (request == nullptr || !request->is_object()) {
    problem(path + ".request", request == nullptr
                                   ? "is missing; a transaction entry needs request.method and "
                                     "request.url"
                                   : "is not a JSON object; expected {\"method\", \"url\"}");
    return;
  }
  if (request->is_empty()) return;  // reported as an empty element
  const Json* method = request->find("method");
  if (method == nullptr) {
    problem(path + ".request.method", "is missing; expected POST or PUT");
  } else if (!method->is_string() ||
             (!method->as_string().empty() && !contains(kHttpVerbs, method->as_string()))) {
    problem(path + ".request.method",
            (method->is_string() ? quoted(method->as_string()) : std::string("the value")) +
                " is not a FHIR HTTP verb; expected one of GET, HEAD, POST, PUT, DELETE, PATCH");
  }
  const Json* url = request->find("url");
  if (url == nullptr) {
    problem(path + ".request.url",
            "is missing; expected the resource type for a POST (\"Observation\"), or "
            "\"Observation/<id>\" or \"Observation?<search>\" for a PUT");
    return;
  }
  if (!url->is_string()) {
    problem(path + ".request.url", "is not a string; expected e.g. \"Observation\"");
    return;
  }
  if (type == nullptr || method == nullptr || !method->is_string()) return;
  // The server creates or updates a resource of the type the url names; a mismatch is rejected
  // or, worse, lands the resource under the wrong type.
  const std::string_view verb = method->as_string();
  const std::string_view target = url->as_string();
  const std::string_view url_type = target.substr(0, target.find_first_of("/?"));
  if ((verb == "POST" || verb == "PUT") && !target.empty() && url_type != *type) {
    problem(path + ".request.url",
            "is " + quoted(target) + " but the resource is a " + std::string(*type) +
                "; expected " +
                (verb == "POST" ? quoted(*type)
                                : quoted(std::string(*type) + "/<id>") + " or " +
                                      quoted(std::string(*type) + "?<search>")));
  }
}

std::string Checker::Where::str() const {
  std::string out = parent != nullptr ? parent->str() : std::string();
  if (index > 0) {
    out.append("[").append(std::to_string(index - 1)).append("]");
  } else if (parent == nullptr) {
    out.append(text);
  } else if (!type.empty()) {
    out.append(".").append(text).append("(").append(type).append(")");
  } else {
    out.append(".").append(text);
  }
  return out;
}

void Checker::check_members(const Json& object, const Where& where) {
  for (const auto& member : object.as_object()) {
    const std::string_view key = member.name();
    Where child = where.member(key);
    if (key == "resource" && member.value.is_object()) {
      TextRef type = string_member(member.value, "resourceType");
      if (type != nullptr && !type->empty()) child.type = *type;
    }
    check_value(member.value, child, key, &object);
  }
}

// `parent_object`: the object that has `key` as a member, or null (an array item, the root).
void Checker::check_value(const Json& value, const Where& where, std::string_view key,
                          const Json* parent_object) {
  if (value.is_empty()) {
    problem(where.str(), empty_message(value));
    return;
  }
  if (key == "reference" && value.is_string() && value.as_string().starts_with("urn:uuid:") &&
      full_urls_.find(value.as_string()) == full_urls_.end()) {
    problem(where.str(), std::string(value.as_string()) +
                             " matches the fullUrl of no entry in this Bundle, so the server "
                             "cannot resolve it; expected the fullUrl of one of the Bundle's "
                             "entries");
  }
  if (value.is_object()) {
    check_members(value, where);
  } else if (value.is_array()) {
    const std::span<const Json> items = value.as_array();
    for (std::size_t i = 0; i < items.size(); ++i) {
      // FHIR JSON pads the arrays of a repeating primitive and of its "_name" extensions with
      // null so that they line up; only there is a null item allowed.
      if (items[i].is_null() && parent_object != nullptr) {
        const bool padded = key.starts_with("_")
                                ? parent_object->find(key.substr(1)) != nullptr
                                : parent_object->find("_" + std::string(key)) != nullptr;
        if (padded) continue;
      }
      check_value(items[i], where.item(i), "", nullptr);
    }
  }
}

// The Genomics Reporting profiles the resource claims in meta.profile ("<base>/<id>" or
// "<base>/<id>|3.0.0"), after reporting unknown ones and ones for another resource type.
Checker::Claimed Checker::check_profiles(const Json& resource, const std::string& path,
                                         const std::string& type) {
  Claimed claimed;
  const Json* meta = resource.find("meta");
  const Json* profiles = meta != nullptr ? meta->find("profile") : nullptr;
  if (profiles == nullptr) return claimed;
  if (!profiles->is_array()) {
    // A lone string would silently switch off every profile check below.
    problem(path + ".meta.profile", "is not an array; expected an array of profile URLs");
    return claimed;
  }
  for (std::size_t i = 0; i < profiles->as_array().size(); ++i) {
    const Json& url = profiles->as_array()[i];
    if (!url.is_string() || !url.as_string().starts_with(kProfileBase)) continue;
    std::string_view id = std::string_view(url.as_string()).substr(kProfileBase.size());
    id = id.substr(0, id.find('|'));
    const std::string where = path + ".meta.profile[" + std::to_string(i) + "]";
    const auto profile = std::find_if(kProfiles.begin(), kProfiles.end(),
                                      [&](const Profile& p) { return p.id == id; });
    if (profile == kProfiles.end()) {
      problem(where, quoted(url.as_string()) +
                         " is not a Genomics Reporting STU3 (3.0.0) profile; STU1 ids such as "
                         "genomics-report, tmb, msi and region-studied were replaced (e.g. by "
                         "genomic-report and molecular-biomarker)");
    } else if (profile->resource_type != type) {
      problem(where, "claims the " + std::string(profile->title) + " profile, which constrains " +
                         std::string(profile->resource_type) + ", not " + type);
    } else if (!contains(claimed, &*profile)) {
      claimed.push_back(&*profile);
    }
  }
  return claimed;
}

void Checker::check_observation(const Json& obs, const std::string& path, const Claimed& claimed) {
  if (obs.find("status") == nullptr) {
    problem(path + ".status", "is missing; FHIR requires Observation.status (e.g. \"final\")");
  }
  const Json* code = obs.find("code");
  if (code == nullptr) problem(path + ".code", "is missing; FHIR requires Observation.code");

  // Categories: the EHR files results by them, and the GR profiles slice on them.
  if (!has_category(obs, kLaboratory)) {
    problem(path + ".category", "has no coding " + show(kLaboratory) +
                                    "; every Observation the adapter sends is a laboratory result");
  }
  const auto genomic = std::find_if(claimed.begin(), claimed.end(), [](const Profile* p) {
    return p->rules == Rules::genomic || p->rules == Rules::coded || p->rules == Rules::implication;
  });
  if (genomic != claimed.end() && !has_category(obs, kGenetics)) {
    problem(path + ".category", "has no coding " + show(kGenetics) + "; the Genomics Reporting " +
                                    std::string((*genomic)->title) +
                                    " profile requires it next to the laboratory category");
  }
  const bool biomarker = std::any_of(claimed.begin(), claimed.end(),
                                     [](const Profile* p) { return p->rules == Rules::biomarker; });
  if (biomarker && !has_category(obs, kBiomarkerCategory)) {
    problem(path + ".category",
            "has no coding " + show(kBiomarkerCategory) +
                "; the Genomics Reporting MolecularBiomarker profile requires it next to the "
                "laboratory category");
  }

  const std::vector<std::string_view> values = value_keys(obs);
  for (const std::string_view key : values) {
    if (!contains(kValueTypes, key)) {
      problem(cat(path, ".", key),
              "is not an Observation value[x]; expected one of valueQuantity, "
              "valueCodeableConcept, valueString, valueBoolean, valueInteger, valueRange, "
              "valueRatio, valueSampledData, valueTime, valueDateTime, valuePeriod");
    }
  }
  if (values.size() > 1) {
    problem(path, "has " + std::to_string(values.size()) + " value[x] elements (" +
                      join(values, ", ") + "); an Observation has at most one value[x]");
  }
  if (!values.empty() && obs.find("dataAbsentReason") != nullptr) {
    problem(path + ".dataAbsentReason", "is present together with " + std::string(values.front()) +
                                            "; FHIR allows dataAbsentReason only when there is "
                                            "no value[x] (obs-6)");
  }

  bool implication_checked = false;
  bool coded_value_checked = false;
  for (const Profile* profile : claimed) {
    const std::string title(profile->title);
    if (code != nullptr && !profile->code.system.empty() && !has_coding(code, profile->code)) {
      problem(path + ".code", "has no coding " + show(profile->code) + "; the " + title +
                                  " profile fixes Observation.code to it");
    }
    if (profile->rules == Rules::implication && !implication_checked) {
      implication_checked = true;
      // The interpretation of a finding lives in the implication's components; a value[x] here
      // would be read as a second, conflicting result.
      for (const std::string_view key : values) {
        problem(cat(path, ".", key),
                "must not be present: " + title +
                    " has no value[x] (0..0 in the IG); put the interpretation in a component, "
                    "e.g. 53037-8 clinical significance");
      }
      const Json* derived_from = obs.find("derivedFrom");
      if (derived_from == nullptr || !derived_from->is_array()) {
        problem(path + ".derivedFrom",
                std::string(derived_from == nullptr ? "is missing" : "is not an array") + "; " +
                    title +
                    " requires derivedFrom (1..*) referencing the Variant, Genotype, Haplotype or "
                    "MolecularBiomarker it interprets");
      }
    }
    if (profile->rules == Rules::coded && !coded_value_checked) {
      coded_value_checked = true;
      const Json* value = obs.find("valueCodeableConcept");
      // The IG makes Variant.value 0..1, but a Variant without Present/Absent leaves the reader
      // guessing whether the variant was found, so the adapter always states it.
      const std::string expected =
          profile->id == "variant"
              ? "expected a valueCodeableConcept from LL1971-2, e.g. http://loinc.org#LA9633-4 "
                "(Present)"
              : "expected a valueCodeableConcept (1..1 in the IG)";
      if (value == nullptr) {
        if (values.empty()) {
          problem(path + ".valueCodeableConcept", "is missing; " + expected);
        } else {
          problem(cat(path, ".", values.front()),
                  cat("is the wrong type for a ", title, "; ", expected));
        }
      } else if (profile->id == "variant" && value->is_object() &&
                 std::none_of(kVariantValues.begin(), kVariantValues.end(),
                              [&](const Code& c) { return has_coding(value, c); })) {
        problem(path + ".valueCodeableConcept",
                "has no coding from LL1971-2 (required binding); expected " +
                    show(kVariantValues[0]) +
                    ", or LA9634-2 (Absent), LA18198-4 (No call) or LA11884-6 (Indeterminate)");
      }
    }
    if (profile->id == "variant" && obs.find("component") == nullptr) {
      problem(path + ".component",
              "is missing; a Variant needs components that say which variant it is (gene "
              "studied, HGVS, alleles, ...)");
    }
  }
  // Not an IG cardinality: a biomarker without any result is an empty statement in the EHR.
  // gene-studied and biomarker-category only classify the biomarker, they carry no result.
  if (biomarker && values.empty() && obs.find("dataAbsentReason") == nullptr) {
    bool has_result_component = false;
    if (const Json* components = obs.find("component");
        components != nullptr && components->is_array()) {
      has_result_component = std::any_of(components->as_array().begin(),
                                         components->as_array().end(), [](const Json& c) {
                                           const Json* component_code = c.find("code");
                                           return !has_coding(component_code, kBiomarkerCategory) &&
                                                  !has_coding(component_code, kGeneStudied);
                                         });
    }
    if (!has_result_component) {
      problem(path,
              "has no result: a MolecularBiomarker needs a value[x] (e.g. valueQuantity for "
              "TMB, valueCodeableConcept for MSI), a dataAbsentReason, or a component "
              "carrying the result");
    }
  }
  check_components(obs, path, !claimed.empty());
}

void Checker::check_components(const Json& obs, const std::string& path, bool sliced) {
  const Json* components = obs.find("component");
  if (components == nullptr || !components->is_array()) return;
  const std::span<const Json> items = components->as_array();
  for (std::size_t i = 0; i < items.size(); ++i) {
    // The path and the label are only made for a problem: most components have none.
    auto where = [&] { return path + ".component[" + std::to_string(i) + "]"; };
    const Json& component = items[i];
    if (!component.is_object()) {
      if (!component.is_empty()) {
        problem(where(), "is not a JSON object; expected {code, value[x]}");
      }
      continue;
    }
    if (component.is_empty()) continue;  // reported as an empty element
    const Json* code = component.find("code");
    if (code == nullptr) {
      problem(where() + ".code", "is missing; every component needs a code saying what it reports");
    }
    const Slice* slice = find_slice(code);
    auto label = [&] { return component_label(code, slice); };
    const std::vector<std::string_view> values = value_keys(component);
    const bool absent = component.find("dataAbsentReason") != nullptr;
    for (const std::string_view key : values) {
      if (!contains(kValueTypes, key)) {
        problem(cat(where(), ".", key),
                "is not a component value[x]; expected one of valueQuantity, "
                "valueCodeableConcept, valueString, valueBoolean, valueInteger, valueRange, "
                "valueRatio, valueSampledData, valueTime, valueDateTime, valuePeriod");
      }
    }
    if (values.empty() && !absent) {
      problem(where(), "has no value: " + label() +
                           " needs exactly one value[x] or a dataAbsentReason saying why the value "
                           "is missing (or leave the component out)");
    } else if (values.size() > 1) {
      problem(where(), "has " + std::to_string(values.size()) + " value[x] elements (" +
                           join(values, ", ") + "); " + label() + " needs exactly one");
    } else if (!values.empty() && absent) {
      problem(where() + ".dataAbsentReason", "is present together with " +
                                                 std::string(values.front()) +
                                                 "; a component has either a value[x] or a "
                                                 "dataAbsentReason, not both");
    }
    if (sliced && slice != nullptr && values.size() == 1 && contains(kValueTypes, values.front()) &&
        !contains(slice->types, values.front())) {
      std::string expected(slice->types[0]);
      if (!slice->types[1].empty()) expected += " or " + std::string(slice->types[1]);
      problem(cat(where(), ".", values.front()),
              cat("is the wrong type for ", label(), ": the Genomics Reporting IG requires ",
                  expected));
    }
  }
}

void Checker::check_report(const Json& report, const std::string& path, const Claimed& claimed) {
  if (report.find("status") == nullptr) {
    problem(path + ".status", "is missing; FHIR requires DiagnosticReport.status (e.g. \"final\")");
  }
  const Json* code = report.find("code");
  if (code == nullptr) problem(path + ".code", "is missing; FHIR requires DiagnosticReport.code");
  const bool genomic = std::any_of(claimed.begin(), claimed.end(),
                                   [](const Profile* p) { return p->id == "genomic-report"; });
  if (!genomic) return;
  if (code != nullptr && !has_coding(code, kGenomicReportCode)) {
    problem(path + ".code", "has no coding " + show(kGenomicReportCode) +
                                "; the GenomicReport profile fixes the code to it (keep the "
                                "lab's own code as a second coding)");
  }
  if (!has_category(report, kGenetics)) {
    problem(path + ".category",
            "has no coding " + show(kGenetics) + "; the GenomicReport profile requires it");
  }
  for (const auto& member : report.as_object()) {
    if (member.name().starts_with("effective") && member.name() != "effectiveDateTime") {
      problem(path + "." + std::string(member.name()),
              "is not allowed: the GenomicReport profile restricts effective[x] to "
              "effectiveDateTime");
    }
  }
  const Json* results = report.find("result");
  if (results == nullptr || !results->is_array()) return;
  for (std::size_t i = 0; i < results->as_array().size(); ++i) {
    const Json& result = results->as_array()[i];
    TextRef reference = result.is_object() ? string_member(result, "reference") : nullptr;
    if (reference == nullptr) continue;
    const auto target = full_urls_.find(*reference);
    if (target == full_urls_.end() || target->second.resource_type.empty() ||
        target->second.resource_type == "Observation") {
      continue;
    }
    problem(path + ".result[" + std::to_string(i) + "].reference",
            "points at Bundle.entry[" + std::to_string(target->second.index) + "], a " +
                target->second.resource_type +
                "; DiagnosticReport.result must reference "
                "Observations");
  }
}

}  // namespace

std::vector<BundleProblem> check_bundle(const Json& bundle) {
  return Checker().run(bundle);
}

}  // namespace adapter::mapping
