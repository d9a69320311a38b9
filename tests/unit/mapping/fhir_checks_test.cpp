#include "mapping/fhir_checks.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "mapping/source_text.h"

using namespace adapter::mapping;

namespace {

Json parse(std::string_view text) {
  auto parsed = parse_json(text, "test.json");
  if (!parsed) FAIL(parsed.error().to_string() << "\n" << text);
  return *parsed;
}

std::vector<std::string> problems_of(const Json& bundle) {
  std::vector<std::string> out;
  for (const BundleProblem& p : check_bundle(bundle)) out.push_back(p.to_string());
  return out;
}

// A Bundle of the given entries (JSON text each).
std::vector<std::string> problems_of(std::initializer_list<std::string> entries) {
  std::string text = R"({"resourceType": "Bundle", "type": "transaction", "entry": [)";
  bool first = true;
  for (const std::string& entry : entries) {
    if (!first) text += ",";
    first = false;
    text += entry;
  }
  return problems_of(parse(text + "]}"));
}

// `text` with its single occurrence of `from` replaced: each test breaks exactly one thing.
std::string replaced(std::string text, std::string_view from, std::string_view to) {
  const auto at = text.find(from);
  INFO("replacing " << from);
  REQUIRE(at != std::string::npos);
  REQUIRE(text.find(from, at + 1) == std::string::npos);
  text.replace(at, from.size(), to);
  return text;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  INFO(path.string());
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

#define GR "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
#define UUID(n) "urn:uuid:00000000-0000-4000-8000-00000000000" #n
#define LAB                                                                                  \
  R"({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", )" \
  R"("code": "laboratory"}]})"
#define GE \
  R"({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "GE"}]})"
#define TBD "http://hl7.org/fhir/uv/genomics-reporting/CodeSystem/tbd-codes-cs"

const std::string kPatient = R"({"fullUrl": ")" UUID(1) R"(",
  "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN1"}]},
  "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:oid:1.2.3|MRN1"}})";

const std::string kVariant = R"({"fullUrl": ")" UUID(2) R"(",
  "resource": {"resourceType": "Observation",
    "meta": {"profile": [")" GR R"(variant|3.0.0"]},
    "status": "final",
    "category": [)" LAB "," GE R"(],
    "code": {"coding": [{"system": "http://loinc.org", "code": "69548-6"}]},
    "subject": {"reference": ")" UUID(1) R"("},
    "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA9633-4"}]},
    "component": [
      {"code": {"coding": [{"system": "http://loinc.org", "code": "48018-6"}]},
       "valueCodeableConcept": {"coding": [{"system": "http://www.genenames.org", "code": "HGNC:1100"}]}},
      {"code": {"coding": [{"system": "http://loinc.org", "code": "69547-8"}]}, "valueString": "A"}]},
  "request": {"method": "POST", "url": "Observation"}})";

const std::string kImplication = R"({"fullUrl": ")" UUID(3) R"(",
  "resource": {"resourceType": "Observation",
    "meta": {"profile": [")" GR R"(diagnostic-implication"]},
    "status": "final",
    "category": [)" LAB "," GE R"(],
    "code": {"coding": [{"system": ")" TBD R"(", "code": "diagnostic-implication"}]},
    "subject": {"reference": ")" UUID(1) R"("},
    "derivedFrom": [{"reference": ")" UUID(2) R"("}],
    "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "53037-8"}]},
      "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA6668-3"}]}}]},
  "request": {"method": "POST", "url": "Observation"}})";

// GE is optional on MolecularBiomarker, so it is left out here.
const std::string kBiomarker = R"({"fullUrl": ")" UUID(4) R"(",
  "resource": {"resourceType": "Observation",
    "meta": {"profile": [")" GR R"(molecular-biomarker"]},
    "status": "final",
    "category": [)" LAB R"(, {"coding": [{"system": ")" TBD R"(", "code": "biomarker-category"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "94076-7"}]},
    "subject": {"reference": ")" UUID(1) R"("},
    "valueQuantity": {"value": 29.8, "unit": "mutations per megabase"},
    "component": [{"code": {"coding": [{"system": ")" TBD R"(", "code": "biomarker-category"}]},
      "valueCodeableConcept": {"text": "molecular sequence adjacent category"}}]},
  "request": {"method": "POST", "url": "Observation"}})";

const std::string kChecksReport = R"({"fullUrl": ")" UUID(5) R"(",
  "resource": {"resourceType": "DiagnosticReport",
    "meta": {"profile": [")" GR R"(genomic-report"]},
    "status": "final",
    "category": [)" GE R"(],
    "code": {"coding": [{"system": "http://loinc.org", "code": "51969-4"},
                        {"system": "http://loinc.org", "code": "81247-9"}]},
    "subject": {"reference": ")" UUID(1) R"("},
    "effectiveDateTime": "2025-05-28T09:30:00-04:00",
    "result": [{"reference": ")" UUID(2) R"("}, {"reference": ")" UUID(3) R"("},
               {"reference": ")" UUID(4) R"("}]},
  "request": {"method": "POST", "url": "DiagnosticReport"}})";

// A plain lab result: no Genomics Reporting profile, so only the laboratory category is needed.
const std::string kLabResult = R"({"fullUrl": ")" UUID(6) R"(",
  "resource": {"resourceType": "Observation", "status": "final", "category": [)" LAB R"(],
    "code": {"coding": [{"system": "http://loinc.org", "code": "1554-5"}]},
    "subject": {"reference": ")" UUID(1) R"("},
    "valueQuantity": {"value": 182, "unit": "mg/dl"}},
  "request": {"method": "POST", "url": "Observation"}})";

const char* kVariantPath = "Bundle.entry[1].resource(Observation)";
const char* kImplicationPath = "Bundle.entry[2].resource(Observation)";
const char* kBiomarkerPath = "Bundle.entry[3].resource(Observation)";
const char* kReportPath = "Bundle.entry[4].resource(DiagnosticReport)";

std::vector<std::string> with_variant(const std::string& variant) {
  return problems_of({kPatient, variant, kImplication, kBiomarker, kChecksReport});
}

std::string at(const char* path, const std::string& rest) {
  return path + rest;
}

}  // namespace

TEST_CASE("every shipped golden Bundle passes the checks", "[mapping][fhir_checks]") {
  std::vector<std::filesystem::path> files;
  for (const auto& dir :
       std::filesystem::directory_iterator(std::string(ADAPTER_FIXTURES_DIR) + "/mappings")) {
    if (std::filesystem::exists(dir.path() / "expected.json")) {
      files.push_back(dir.path() / "expected.json");
    }
  }
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 12);
  for (const auto& file : files) {
    INFO(file.string());
    // (The first run found components without a value in two cases; the templates now leave
    // such components out.)
    CHECK(problems_of(parse(read_file(file))).empty());
  }
}

TEST_CASE("a well-formed genomic Bundle has no problems", "[mapping][fhir_checks]") {
  CHECK(problems_of({kPatient, kVariant, kImplication, kBiomarker, kChecksReport, kLabResult})
            .empty());
}

TEST_CASE("the Bundle must be a transaction with entries", "[mapping][fhir_checks]") {
  CHECK(problems_of(Json::string("x")) ==
        std::vector<std::string>{"Bundle: is not a JSON object; expected a FHIR Bundle resource"});
  CHECK(problems_of(
            parse(R"({"resourceType": "Bundle", "type": "batch", "entry": [)" + kPatient + "]}")) ==
        std::vector<std::string>{"Bundle.type: is \"batch\"; expected \"transaction\" (the EHR "
                                 "applies all entries or none)"});
  CHECK(problems_of(parse(R"({"resourceType": "Parameters", "type": "transaction", "entry": [)" +
                          kPatient + "]}")) ==
        std::vector<std::string>{"Bundle.resourceType: is \"Parameters\"; expected \"Bundle\""});
  CHECK(problems_of(parse(R"({"resourceType": "Bundle", "type": "transaction"})")) ==
        std::vector<std::string>{
            "Bundle.entry: is missing; the mapping produced no resources to send"});
}

TEST_CASE("each entry needs a unique urn:uuid fullUrl", "[mapping][fhir_checks]") {
  const std::string full_url = R"("fullUrl": ")" UUID(6) R"(")";
  CHECK(
      problems_of({kPatient, replaced(kLabResult, full_url + ",", "")}) ==
      std::vector<std::string>{"Bundle.entry[1].fullUrl: is missing; every entry needs a fullUrl "
                               "\"urn:uuid:<uuid>\" so that the other resources can reference it"});
  CHECK(problems_of({kPatient, replaced(kLabResult, UUID(6), "urn:uuid:ABC")}) ==
        std::vector<std::string>{"Bundle.entry[1].fullUrl: \"urn:uuid:ABC\" is not a urn:uuid; "
                                 "expected \"urn:uuid:\" and a lowercase UUID (8-4-4-4-12 hex "
                                 "digits)"});
  CHECK(problems_of({kPatient, replaced(kLabResult, full_url, R"("fullUrl": ")" UUID(1) R"(")")}) ==
        std::vector<std::string>{"Bundle.entry[1].fullUrl: " UUID(
            1) " is also the fullUrl of Bundle.entry[0]; each entry needs its own fullUrl"});
}

TEST_CASE("each entry needs a resource and a request with method and url",
          "[mapping][fhir_checks]") {
  CHECK(
      problems_of({R"({"fullUrl": ")" UUID(1) R"(", "resource": {"resourceType": "Patient"}})"}) ==
      std::vector<std::string>{"Bundle.entry[0].request: is missing; a transaction entry needs "
                               "request.method and request.url"});
  CHECK(
      problems_of({replaced(kPatient, R"("method": "POST", )", "")}) ==
      std::vector<std::string>{"Bundle.entry[0].request.method: is missing; expected POST or PUT"});
  CHECK(problems_of({replaced(kPatient, R"("method": "POST")", R"("method": "post")")}) ==
        std::vector<std::string>{"Bundle.entry[0].request.method: \"post\" is not a FHIR HTTP "
                                 "verb; expected one of GET, HEAD, POST, PUT, DELETE, PATCH"});
  CHECK(problems_of({replaced(kPatient, R"("url": "Patient", )", "")}) ==
        std::vector<std::string>{
            "Bundle.entry[0].request.url: is missing; expected the resource type for a POST "
            "(\"Observation\"), or \"Observation/<id>\" or \"Observation?<search>\" for a PUT"});
  CHECK(problems_of({replaced(kPatient, R"("url": "Patient")", R"("url": "Person")")}) ==
        std::vector<std::string>{"Bundle.entry[0].request.url: is \"Person\" but the resource is "
                                 "a Patient; expected \"Patient\""});
  CHECK(
      problems_of({replaced(kPatient, R"("method": "POST", "url": "Patient")",
                            R"("method": "PUT", "url": "Patient?identifier=urn:oid:1.2.3|MRN1")")})
          .empty());
  CHECK(problems_of({replaced(kPatient, R"("resourceType": "Patient", )", "")}) ==
        std::vector<std::string>{"Bundle.entry[0].resource.resourceType: is missing; expected the "
                                 "FHIR resource type, e.g. \"Observation\""});
  CHECK(problems_of({R"({"fullUrl": ")" UUID(
            1) R"(", "request": {"method": "POST", "url": "Patient"}})"}) ==
        std::vector<std::string>{
            "Bundle.entry[0].resource: is missing; expected the FHIR resource this entry sends"});
}

TEST_CASE("urn:uuid references must name an entry of the Bundle", "[mapping][fhir_checks]") {
  CHECK(with_variant(replaced(kVariant, R"("subject": {"reference": ")" UUID(1),
                              R"("subject": {"reference": ")" UUID(9))) ==
        std::vector<std::string>{at(
            kVariantPath, ".subject.reference: " UUID(9) " matches the fullUrl of no entry in this "
                                                         "Bundle, so the server cannot resolve it; "
                                                         "expected the fullUrl of one of the "
                                                         "Bundle's entries")});
  // Conditional and relative references are the server's to resolve.
  CHECK(
      with_variant(replaced(kVariant, R"("subject": {"reference": ")" UUID(1) R"("})",
                            R"("subject": {"reference": "Patient?identifier=urn:oid:1.2.3|MRN1"})"))
          .empty());
}

TEST_CASE("empty elements are reported with their path", "[mapping][fhir_checks]") {
  const std::string value = R"("value": "MRN1")";
  const std::string where = "Bundle.entry[0].resource(Patient).identifier[0].value: ";
  CHECK(problems_of({replaced(kPatient, value, R"("value": "")")}) ==
        std::vector<std::string>{where +
                                 "is an empty string; FHIR values must not be empty: leave the "
                                 "element out"});
  CHECK(problems_of({replaced(kPatient, value, R"("value": null)")}) ==
        std::vector<std::string>{where +
                                 "is null; FHIR JSON has no null values: leave the element out"});
  CHECK(problems_of({replaced(kPatient, value, R"("value": [])")}) ==
        std::vector<std::string>{
            where + "is an empty array; FHIR arrays must not be empty: leave the element out"});
  CHECK(problems_of({replaced(kPatient, value, R"("value": {})")}) ==
        std::vector<std::string>{where + "is an empty object; every FHIR element needs a value or "
                                         "children (ele-1): leave the element out"});
  CHECK(problems_of({replaced(kPatient, R"("identifier": [)",
                              R"("name": [{"given": [null]}], "identifier": [)")}) ==
        std::vector<std::string>{"Bundle.entry[0].resource(Patient).name[0].given[0]: is null; "
                                 "FHIR JSON has no null values: leave the element out"});
  // Null pads a repeating primitive to line it up with its extensions: that is valid FHIR JSON.
  CHECK(
      problems_of(
          {replaced(
              kPatient, R"("identifier": [)",
              R"("name": [{"given": ["A", null], "_given": [null, {"extension": [{"url": "urn:x", "valueString": "y"}]}]}], "identifier": [)")})
          .empty());
}

TEST_CASE("every Observation has the laboratory category", "[mapping][fhir_checks]") {
  CHECK(problems_of({kPatient, replaced(kLabResult, R"("category": [)" LAB R"(],)", "")}) ==
        std::vector<std::string>{
            "Bundle.entry[1].resource(Observation).category: has no coding "
            "http://terminology.hl7.org/CodeSystem/observation-category#laboratory (Laboratory); "
            "every Observation the adapter sends is a laboratory result"});
}

TEST_CASE("Genomics Reporting Observations also have the genetics category",
          "[mapping][fhir_checks]") {
  CHECK(
      with_variant(replaced(kVariant, "," GE, "")) ==
      std::vector<std::string>{at(kVariantPath,
                                  ".category: has no coding "
                                  "http://terminology.hl7.org/CodeSystem/v2-0074#GE (Genetics); "
                                  "the Genomics Reporting Variant profile requires it next to the "
                                  "laboratory category")});
  // MolecularBiomarker requires biomarker-category instead.
  const std::string no_category =
      replaced(kBiomarker,
               R"(, {"coding": [{"system": ")" TBD R"(", "code": "biomarker-category"}]}])", "]");
  CHECK(problems_of({kPatient, kVariant, kImplication, no_category, kChecksReport}) ==
        std::vector<std::string>{at(kBiomarkerPath,
                                    ".category: has no coding " TBD
                                    "#biomarker-category (Biomarker Category); the Genomics "
                                    "Reporting MolecularBiomarker profile requires it next to the "
                                    "laboratory category")});
}

TEST_CASE("a Variant has code 69548-6, a value from LL1971-2 and components",
          "[mapping][fhir_checks]") {
  CHECK(with_variant(replaced(kVariant, "69548-6", "69547-8")) ==
        std::vector<std::string>{
            at(kVariantPath,
               ".code: has no coding http://loinc.org#69548-6 (Genetic variant "
               "assessment); the Variant profile fixes Observation.code to it")});
  const std::string value =
      R"("valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA9633-4"}]},)";
  CHECK(with_variant(replaced(kVariant, value, "")) ==
        std::vector<std::string>{at(kVariantPath,
                                    ".valueCodeableConcept: is missing; expected a "
                                    "valueCodeableConcept from LL1971-2, e.g. "
                                    "http://loinc.org#LA9633-4 (Present)")});
  CHECK(with_variant(replaced(kVariant, value, R"("valueString": "Present",)")) ==
        std::vector<std::string>{at(kVariantPath,
                                    ".valueString: is the wrong type for a Variant; expected a "
                                    "valueCodeableConcept from LL1971-2, e.g. "
                                    "http://loinc.org#LA9633-4 (Present)")});
  CHECK(with_variant(replaced(kVariant, "LA9633-4", "LA6576-8")) ==
        std::vector<std::string>{at(kVariantPath,
                                    ".valueCodeableConcept: has no coding from LL1971-2 (required "
                                    "binding); expected http://loinc.org#LA9633-4 (Present), or "
                                    "LA9634-2 (Absent), LA18198-4 (No call) or LA11884-6 "
                                    "(Indeterminate)")});
  CHECK(with_variant(replaced(kVariant, "LA9633-4", "LA9634-2")).empty());
  const std::string no_components = replaced(kVariant,
                                             R"(,
    "component": [
      {"code": {"coding": [{"system": "http://loinc.org", "code": "48018-6"}]},
       "valueCodeableConcept": {"coding": [{"system": "http://www.genenames.org", "code": "HGNC:1100"}]}},
      {"code": {"coding": [{"system": "http://loinc.org", "code": "69547-8"}]}, "valueString": "A"}])",
                                             "");
  CHECK(with_variant(no_components) ==
        std::vector<std::string>{at(kVariantPath,
                                    ".component: is missing; a Variant needs components that say "
                                    "which variant it is (gene studied, HGVS, alleles, ...)")});
}

TEST_CASE("implications have derivedFrom and no value", "[mapping][fhir_checks]") {
  const std::string derived = R"("derivedFrom": [{"reference": ")" UUID(2) R"("}],)";
  CHECK(problems_of(
            {kPatient, kVariant, replaced(kImplication, derived, ""), kBiomarker, kChecksReport}) ==
        std::vector<std::string>{at(kImplicationPath,
                                    ".derivedFrom: is missing; DiagnosticImplication requires "
                                    "derivedFrom (1..*) referencing the Variant, Genotype, "
                                    "Haplotype or MolecularBiomarker it interprets")});
  CHECK(problems_of({kPatient, kVariant,
                     replaced(kImplication, derived,
                              derived + R"("valueCodeableConcept": {"text": "Pathogenic"},)"),
                     kBiomarker, kChecksReport}) ==
        std::vector<std::string>{at(kImplicationPath,
                                    ".valueCodeableConcept: must not be present: "
                                    "DiagnosticImplication has no value[x] (0..0 in the IG); put "
                                    "the interpretation in a component, e.g. 53037-8 clinical "
                                    "significance")});
  CHECK(problems_of(
            {kPatient, kVariant,
             replaced(
                 replaced(kImplication, "diagnostic-implication\"]", "therapeutic-implication\"]"),
                 R"("code": "diagnostic-implication")", R"("code": "therapeutic-implication")"),
             kBiomarker, kChecksReport})
            .empty());
}

TEST_CASE("a MolecularBiomarker carries a result", "[mapping][fhir_checks]") {
  const std::string no_value = replaced(
      kBiomarker, R"("valueQuantity": {"value": 29.8, "unit": "mutations per megabase"},)", "");
  CHECK(problems_of({kPatient, kVariant, kImplication, no_value, kChecksReport}) ==
        std::vector<std::string>{at(kBiomarkerPath,
                                    ": has no result: a MolecularBiomarker needs a value[x] (e.g. "
                                    "valueQuantity for TMB, valueCodeableConcept for MSI), a "
                                    "dataAbsentReason, or a component carrying the result")});
  CHECK(
      problems_of({kPatient, kVariant, kImplication,
                   replaced(no_value, R"("status": "final",)",
                            R"("status": "final", "dataAbsentReason": {"text": "not performed"},)"),
                   kChecksReport})
          .empty());
}

TEST_CASE("components have a code and exactly one value of the slice's type",
          "[mapping][fhir_checks]") {
  const std::string ref_allele =
      R"({"code": {"coding": [{"system": "http://loinc.org", "code": "69547-8"}]}, "valueString": "A"})";
  const auto with_component = [&](const std::string& component) {
    return with_variant(replaced(kVariant, ref_allele, component));
  };
  CHECK(with_component(R"({"valueString": "A"})") ==
        std::vector<std::string>{at(kVariantPath,
                                    ".component[1].code: is missing; every component needs a code "
                                    "saying what it reports")});
  CHECK(with_component(
            R"({"code": {"coding": [{"system": "http://loinc.org", "code": "69547-8"}]}})") ==
        std::vector<std::string>{at(kVariantPath,
                                    ".component[1]: has no value: component 69547-8 (ref-allele) "
                                    "needs exactly one value[x] or a dataAbsentReason saying why "
                                    "the value is missing (or leave the component out)")});
  CHECK(with_component(R"({"code": {"coding": [{"system": "http://loinc.org", "code": "69547-8"}]},
      "dataAbsentReason": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-applicable"}]}})")
            .empty());
  CHECK(with_component(R"({"code": {"coding": [{"system": "http://loinc.org", "code": "69547-8"}]},
      "valueString": "A", "valueInteger": 1})") ==
        std::vector<std::string>{at(kVariantPath,
                                    ".component[1]: has 2 value[x] elements (valueString, "
                                    "valueInteger); component 69547-8 (ref-allele) needs exactly "
                                    "one")});
  CHECK(with_component(R"({"code": {"coding": [{"system": "http://loinc.org", "code": "69547-8"}]},
      "valueString": "A", "dataAbsentReason": {"text": "unknown"}})") ==
        std::vector<std::string>{at(kVariantPath,
                                    ".component[1].dataAbsentReason: is present together with "
                                    "valueString; a component has either a value[x] or a "
                                    "dataAbsentReason, not both")});
  CHECK(with_component(R"({"code": {"coding": [{"system": "http://loinc.org", "code": "81254-5"}]},
      "valueQuantity": {"value": 112841059}})") ==
        std::vector<std::string>{at(kVariantPath,
                                    ".component[1].valueQuantity: is the wrong type for component "
                                    "81254-5 (exact-start-end): the Genomics Reporting IG requires "
                                    "valueRange")});
  CHECK(with_component(R"({"code": {"coding": [{"system": "http://loinc.org", "code": "83005-9"}]},
      "valueReference": {"reference": ")" UUID(1) R"("}})") ==
        std::vector<std::string>{at(kVariantPath,
                                    ".component[1].valueReference: is not a component value[x]; "
                                    "expected one of valueQuantity, valueCodeableConcept, "
                                    "valueString, valueBoolean, valueInteger, valueRange, "
                                    "valueRatio, valueSampledData, valueTime, valueDateTime, "
                                    "valuePeriod")});
  // Slice types bind only in Genomics Reporting profiles; a lab panel may use the code freely.
  CHECK(
      problems_of(
          {kPatient,
           replaced(
               kLabResult, R"("valueQuantity": {"value": 182, "unit": "mg/dl"})",
               R"("component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "81254-5"}]},
      "valueQuantity": {"value": 1}}])")})
          .empty());
}

TEST_CASE("an Observation has at most one value[x] and no dataAbsentReason beside it",
          "[mapping][fhir_checks]") {
  const std::string value = R"("valueQuantity": {"value": 182, "unit": "mg/dl"})";
  CHECK(problems_of({kPatient, replaced(kLabResult, value, value + R"(, "valueString": "182")")}) ==
        std::vector<std::string>{"Bundle.entry[1].resource(Observation): has 2 value[x] elements "
                                 "(valueQuantity, valueString); an Observation has at most one "
                                 "value[x]"});
  CHECK(problems_of({kPatient, replaced(kLabResult, value,
                                        value + R"(, "dataAbsentReason": {"text": "error"})")}) ==
        std::vector<std::string>{"Bundle.entry[1].resource(Observation).dataAbsentReason: is "
                                 "present together with valueQuantity; FHIR allows "
                                 "dataAbsentReason only when there is no value[x] (obs-6)"});
  CHECK(problems_of({kPatient, replaced(kLabResult, value, R"("value": 182)")}) ==
        std::vector<std::string>{"Bundle.entry[1].resource(Observation).value: is not an "
                                 "Observation value[x]; expected one of valueQuantity, "
                                 "valueCodeableConcept, valueString, valueBoolean, valueInteger, "
                                 "valueRange, valueRatio, valueSampledData, valueTime, "
                                 "valueDateTime, valuePeriod"});
  CHECK(problems_of({kPatient, replaced(kLabResult, R"("status": "final", )", "")}) ==
        std::vector<std::string>{"Bundle.entry[1].resource(Observation).status: is missing; FHIR "
                                 "requires Observation.status (e.g. \"final\")"});
}

TEST_CASE("a GenomicReport has code 51969-4, the genetics category and Observation results",
          "[mapping][fhir_checks]") {
  const auto with_report = [](const std::string& report) {
    return problems_of({kPatient, kVariant, kImplication, kBiomarker, report});
  };
  CHECK(with_report(
            replaced(kChecksReport, R"({"system": "http://loinc.org", "code": "51969-4"},)", "")) ==
        std::vector<std::string>{at(kReportPath,
                                    ".code: has no coding http://loinc.org#51969-4 (Genetic "
                                    "analysis report); the GenomicReport profile fixes the code to "
                                    "it (keep the lab's own code as a second coding)")});
  CHECK(with_report(replaced(kChecksReport, R"("category": [)" GE R"(],)", "")) ==
        std::vector<std::string>{
            at(kReportPath,
               ".category: has no coding "
               "http://terminology.hl7.org/CodeSystem/v2-0074#GE (Genetics); the "
               "GenomicReport profile requires it")});
  CHECK(with_report(replaced(kChecksReport, R"("effectiveDateTime": "2025-05-28T09:30:00-04:00")",
                             R"("effectivePeriod": {"start": "2025-05-28"})")) ==
        std::vector<std::string>{at(kReportPath,
                                    ".effectivePeriod: is not allowed: the GenomicReport profile "
                                    "restricts effective[x] to effectiveDateTime")});
  CHECK(with_report(
            replaced(kChecksReport, R"({"reference": ")" UUID(4) R"("}])",
                     R"({"reference": ")" UUID(4) R"("}, {"reference": ")" UUID(1) R"("}])")) ==
        std::vector<std::string>{at(kReportPath,
                                    ".result[3].reference: points at Bundle.entry[0], a Patient; "
                                    "DiagnosticReport.result must reference Observations")});
}

TEST_CASE("meta.profile names a Genomics Reporting STU3 profile of the right resource",
          "[mapping][fhir_checks]") {
  CHECK(problems_of({kPatient, kVariant, kImplication, kBiomarker,
                     replaced(kChecksReport, GR "genomic-report", GR "genomics-report")}) ==
        std::vector<std::string>{at(kReportPath,
                                    ".meta.profile[0]: \"" GR
                                    "genomics-report\" is not a Genomics Reporting STU3 (3.0.0) "
                                    "profile; STU1 ids such as genomics-report, tmb, msi and "
                                    "region-studied were replaced (e.g. by genomic-report and "
                                    "molecular-biomarker)")});
  CHECK(problems_of({kPatient, kVariant, kImplication, kBiomarker,
                     replaced(kChecksReport, GR "genomic-report", GR "variant")}) ==
        std::vector<std::string>{at(kReportPath,
                                    ".meta.profile[0]: claims the Variant profile, which "
                                    "constrains Observation, not DiagnosticReport")});
}

TEST_CASE("any JSON shape is checked without throwing", "[mapping][fhir_checks]") {
  const Json odd = parse(R"({"resourceType": "Bundle", "type": "transaction", "entry": [
    1,
    {"fullUrl": 5, "resource": [1], "request": "POST"},
    {"fullUrl": ")" UUID(1) R"(", "request": {"method": 1, "url": 2},
     "resource": {"resourceType": "Observation", "meta": {"profile": ")" GR R"(variant"},
       "status": "final", "category": "laboratory", "code": "69548-6", "derivedFrom": 3,
       "component": [1, {"code": 2, "valueFoo": 1}]}},
    {"fullUrl": ")" UUID(2) R"(", "request": {"method": "POST", "url": "DiagnosticReport"},
     "resource": {"resourceType": "DiagnosticReport", "meta": {"profile": [")" GR
                            R"(genomic-report"]},
       "status": "final", "category": [1], "code": [], "result": [1, {"reference": 2}]}}]})");
  std::vector<std::string> problems;
  REQUIRE_NOTHROW(problems = problems_of(odd));
  // Long messages are split over adjacent literals on purpose.
  // NOLINTBEGIN(bugprone-suspicious-missing-comma)
  CHECK(problems ==
        std::vector<std::string>{
            R"(Bundle.entry[0]: is not a JSON object; expected {"fullUrl", "resource", "request"})",
            R"(Bundle.entry[1].fullUrl: is not a string; expected "urn:uuid:<uuid>")",
            R"(Bundle.entry[1].resource: is not a JSON object; expected a FHIR resource)",
            R"(Bundle.entry[1].request: is not a JSON object; expected {"method", "url"})",
            "Bundle.entry[2].request.method: the value is not a FHIR HTTP verb; expected one of "
            "GET, HEAD, POST, PUT, DELETE, PATCH",
            R"(Bundle.entry[2].request.url: is not a string; expected e.g. "Observation")",
            "Bundle.entry[2].resource(Observation).meta.profile: is not an array; expected an "
            "array of profile URLs",
            "Bundle.entry[2].resource(Observation).category: has no coding "
            "http://terminology.hl7.org/CodeSystem/observation-category#laboratory (Laboratory); "
            "every Observation the adapter sends is a laboratory result",
            "Bundle.entry[2].resource(Observation).component[0]: is not a JSON object; expected "
            "{code, value[x]}",
            "Bundle.entry[2].resource(Observation).component[1].valueFoo: is not a component "
            "value[x]; expected one of valueQuantity, valueCodeableConcept, valueString, "
            "valueBoolean, valueInteger, valueRange, valueRatio, valueSampledData, valueTime, "
            "valueDateTime, valuePeriod",
            "Bundle.entry[3].resource(DiagnosticReport).code: is an empty array; FHIR arrays must "
            "not be empty: leave the element out",
            "Bundle.entry[3].resource(DiagnosticReport).code: has no coding "
            "http://loinc.org#51969-4 (Genetic analysis report); the GenomicReport profile fixes "
            "the code to it (keep the lab's own code as a second coding)",
            "Bundle.entry[3].resource(DiagnosticReport).category: has no coding "
            "http://terminology.hl7.org/CodeSystem/v2-0074#GE (Genetics); the GenomicReport "
            "profile requires it"});
  // NOLINTEND(bugprone-suspicious-missing-comma)
}
