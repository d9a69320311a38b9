#include "mapping/engine.h"

#include <catch2/catch.hpp>

#include <algorithm>

#include "unit/mapping/memory_files.h"
#include "xml/document.h"

using namespace adapter;
using namespace adapter::mapping;
using adapter::mapping::test::MemoryFiles;

namespace {

const char* kRoutes =
    R"({"routes": [{"match": {"message_type": "ORU^R01"}, "template": "t.json"}]})";

const std::string kMessage =
    "MSH|^~\\&|LAB|FAC|EHR|HOSP|20240315143000-0500||ORU^R01^ORU_R01|C1|P|2.5.1\r"
    "PID|1||MRN1^^^HOSP^MR~PI9^^^LAB^PI||DOE^JANE^Q\r"
    "OBR|1|ORD1|LAB1|81247-9^Panel^LN\r"
    "OBX|1|CWE|48018-6^Gene^LN|2a|HGNC:1100^BRCA1^HGNC||||||F\r"
    "OBX|2|ST|48004-6^c.HGVS^LN|2a|NM_007294.3:c.5266dupC||||||F\r"
    "OBX|3|NM|81258-6^VAF^LN|2a|0.480|1^^UCUM|||||F\r"
    "OBX|4|CWE|48018-6^Gene^LN|2b|HGNC:1101^BRCA2^HGNC||||||F\r"
    "OBX|5|ST|48004-6^c.HGVS^LN|2b|NM_000059.3:c.7397T>C||||||F\r"
    "OBX|6|TX|51969-4^Summary^LN|1|Two variants \\T\\ more||||||F\r";

struct Fixture {
  std::shared_ptr<const TemplateSet> set;
  hl7v2::Message message = *hl7v2::Message::parse(kMessage);

  explicit Fixture(const std::string& tmpl, MemoryFiles files = {}) {
    files.add("routes.json", kRoutes).add("t.json", tmpl);
    auto loaded = load_template_set(files);
    if (!loaded) {
      std::string all;
      for (const auto& e : loaded.error()) all += e.where + ": " + e.message + "\n";
      FAIL(all);
    }
    set = *loaded;
  }
  MappingResult map(MappingSettings s = {}) {
    auto route = route_hl7(*set, hl7v2::header_of(message));
    REQUIRE(route);
    return map_hl7(*set, **route, message, s);
  }
};

std::vector<std::string> load_errors(const std::string& tmpl, MemoryFiles files = {}) {
  files.add("routes.json", kRoutes).add("t.json", tmpl);
  auto loaded = load_template_set(files);
  REQUIRE_FALSE(loaded);
  std::vector<std::string> out;
  for (const auto& e : loaded.error()) out.push_back(e.where + ": " + e.message);
  return out;
}

}  // namespace

TEST_CASE("templates read HL7 paths and omit what has no value", "[mapping][engine]") {
  Fixture f(R"J({"$template": "t", "$version": "1",
    "id": "{{ PID-3.1 }}",
    "second": "{{ PID-3[2].1 }}",
    "name": {"family": "{{ PID-5.1 }}", "given": ["{{ PID-5.2 }}", "{{ PID-5.3 }}", "{{ PID-5.4 }}"]},
    "missing": "{{ PID-99 }}",
    "nested": {"gone": "{{ ZZZ-1 }}"},
    "interpolated": "Patient/{{ PID-3.1 }}",
    "nothing": "Patient/{{ PID-77 }}",
    "summary": "{{ OBX[OBX-3.1 == '51969-4']-5 }}"
  })J");
  const MappingResult r = f.map();
  INFO(r.output.dump(true));
  CHECK(r.output.dump() ==
        R"({"id":"MRN1","second":"PI9","name":{"family":"DOE","given":["JANE","Q"]},)"
        R"("interpolated":"Patient/MRN1","summary":"Two variants & more"})");
  CHECK(r.issues.empty());
}

TEST_CASE("each iterates sub-ID groups and filters find the OBX of a group", "[mapping][engine]") {
  Fixture f(R"J({"$template": "t", "$version": "1",
    "variants": [{"$each": "subid_groups()", "$as": "g", "$if": "starts_with($g.key, '2')",
      "key": "{{ $g.key }}",
      "gene": "{{ OBX[OBX-3.1 == '48018-6']-5.2 }}",
      "hgvs": "{{ hgvs_change(OBX[OBX-3.1 == '48004-6']-5) }}",
      "vaf": "{{ quantity(OBX[OBX-3.1 == '81258-6']-5, '1') }}",
      "id": "{{ uuid('variant', MSH-10, $g.key) }}"}]
  })J");
  const MappingResult r = f.map();
  INFO(r.output.dump(true));
  const Json* variants = r.output.find("variants");
  REQUIRE(variants != nullptr);
  REQUIRE(variants->as_array().size() == 2);
  const Json& a = variants->as_array()[0];
  CHECK(a.find("key")->as_string() == "2a");
  CHECK(a.find("gene")->as_string() == "BRCA1");
  CHECK(a.find("hgvs")->as_string() == "c.5266dupC");
  CHECK(a.find("vaf")->dump() ==
        R"({"value":0.480,"unit":"1","system":"http://unitsofmeasure.org","code":"1"})");
  const Json& b = variants->as_array()[1];
  CHECK(b.find("gene")->as_string() == "BRCA2");
  CHECK(b.find("vaf") == nullptr);
  CHECK(a.find("id")->as_string() != b.find("id")->as_string());
  CHECK(a.find("id")->as_string().rfind("urn:uuid:", 0) == 0);
  // Deterministic: the same input maps to the same ids.
  CHECK(f.map().output == r.output);
}

TEST_CASE("partials and lets and merge and requires compose", "[mapping][engine]") {
  MemoryFiles files;
  files.add("partials/cwe.json", R"J({"$partial": "cwe", "$params": ["v"],
    "coding": [{"$requires": "code", "system": "{{ lookup('systems', $v.3) }}", "code": "{{ $v.1 }}",
                "display": "{{ $v.2 }}"}],
    "text": "{{ $v.2 }}"})J");
  files.add("tables/systems.csv",
            "label,uri\nLN,http://loinc.org\nHGNC,http://www.genenames.org\n");
  Fixture f(R"J({"$template": "t", "$version": "1",
    "$let": {"gene": "{{ OBX[1]-5 }}"},
    "code": {"$include": "cwe", "v": "{{ OBX[1]-3 }}"},
    "value": {"$include": "cwe", "v": "{{ $gene }}"},
    "empty": {"$include": "cwe", "v": "{{ OBX[1]-99 }}"},
    "obj": {"a": "1", "$merge": {"b": "{{ 'two' }}", "a": "replaced"}},
    "needs": {"$requires": ["code"], "other": "x"}
  })J",
            files);
  const MappingResult r = f.map();
  INFO(r.output.dump(true));
  CHECK(
      r.output.dump() ==
      R"({"code":{"coding":[{"system":"http://loinc.org","code":"48018-6","display":"Gene"}],"text":"Gene"},)"
      R"("value":{"coding":[{"system":"http://www.genenames.org","code":"HGNC:1100","display":"BRCA1"}],"text":"BRCA1"},)"
      R"("obj":{"a":"replaced","b":"two"}})");
}

TEST_CASE("constant objects and arrays render as written, empties omitted, and are shared",
          "[mapping][engine]") {
  // No expression and no directive below them: built once at load (template.cpp), so two
  // mappings share one block. Empty members and items are still omitted, a constant $do array
  // still gives one item per element, and a resource's object is still built each time so that
  // --explain names it.
  Fixture f(R"J({"$template": "t", "$version": "1",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                              "code": "laboratory"}]}],
    "sparse": {"a": "", "b": [], "c": {}, "d": [null, "x", {"e": ""}], "f": 0.480, "g": false},
    "nothing": {"a": "", "b": {"c": []}},
    "rows": [{"$each": "OBX[OBX-4 == '2a']", "$as": "o", "$do": [{"n": 1}, {"n": 2}]}],
    "resource": {"resourceType": "Basic"}
  })J");
  MappingSettings explain;
  explain.explain = true;
  const MappingResult r = f.map(explain);
  INFO(r.output.dump(true));
  CHECK(
      r.output.dump() ==
      R"({"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],)"
      R"("sparse":{"d":["x"],"f":0.480,"g":false},)"
      R"("rows":[{"n":1},{"n":2},{"n":1},{"n":2},{"n":1},{"n":2}],)"
      R"("resource":{"resourceType":"Basic"}})");
  REQUIRE(r.explain.size() == 1);
  CHECK(r.explain[0].rfind("Basic from t.json:", 0) == 0);
  const MappingResult again = f.map();
  const Json* category = again.output.find("category");
  REQUIRE(category != nullptr);
  CHECK(category->block() == r.output.find("category")->block());
  CHECK(again.output.find("resource")->block() != r.output.find("resource")->block());
}

TEST_CASE("dates become valid FHIR with the feed's default zone", "[mapping][engine]") {
  Fixture f(R"J({"$template": "t", "$version": "1",
    "a": "{{ datetime(MSH-7) }}", "b": "{{ datetime('202403151430') }}", "c": "{{ date(MSH-7) }}",
    "d": "{{ datetime('20240315') }}", "bad": "{{ datetime('2024-13-15') }}",
    "iso": "{{ datetime('2022-03-21T13:45:00.5Z') }}", "iso_local": "{{ datetime('2022-03-21T13:45') }}",
    "iso_date": "{{ date('2022-03-21') }}", "iso_offset": "{{ datetime('2022-03-21T13:45:00-04:30') }}"})J");
  MappingSettings s;
  s.default_offset_minutes = 60;
  const MappingResult r = f.map(s);
  CHECK(r.output.find("a")->as_string() == "2024-03-15T14:30:00-05:00");
  CHECK(r.output.find("b")->as_string() == "2024-03-15T14:30:00+01:00");
  CHECK(r.output.find("c")->as_string() == "2024-03-15");
  CHECK(r.output.find("d")->as_string() == "2024-03-15");
  CHECK(r.output.find("bad") == nullptr);
  // ISO 8601 text (XML feeds) follows the same rules.
  CHECK(r.output.find("iso")->as_string() == "2022-03-21T13:45:00.5+00:00");
  CHECK(r.output.find("iso_local")->as_string() == "2022-03-21T13:45:00+01:00");
  CHECK(r.output.find("iso_date")->as_string() == "2022-03-21");
  CHECK(r.output.find("iso_offset")->as_string() == "2022-03-21T13:45:00-04:30");
  REQUIRE(r.issues.size() == 1);
  CHECK(r.issues[0].severity == Issue::Severity::error);
  CHECK(r.issues[0].message.find("not a valid date/time") != std::string::npos);
  CHECK(r.issues[0].template_pos.rfind("t.json:3:", 0) == 0);
  CHECK(r.failed());
}

TEST_CASE("data issues name the template position and the HL7 path", "[mapping][engine]") {
  Fixture f(R"J({"$template": "t", "$version": "1",
    "n": "{{ number(OBX[1]-5) }}"})J");
  const MappingResult r = f.map();
  REQUIRE(r.issues.size() == 1);
  CHECK(r.issues[0].source == "OBX-5");
  CHECK(r.issues[0].message == "'HGNC:1100^BRCA1^HGNC' is not a number");
  CHECK(r.issues[0].template_pos == "t.json:2:14");
}

// Found by fuzz_hl7v2_translate: an SN value "^182\.br\" decodes to "182" and a line break, and
// the issue quoting it printed as two lines (`adapterd translate`), the second one the data's.
TEST_CASE("issues and the unmapped report keep the data they quote on one line",
          "[mapping][engine]") {
  Fixture f(R"J({"$template": "t", "$version": "1",
    "n": "{{ number(OBX[1]-5.2) }}"})J");
  f.message = *hl7v2::Message::parse(
      std::string_view("MSH|^~\\&|LAB|FAC|EHR|HOSP|20240315143000-0500||ORU^R01|C1|P|2.5.1\r"
                       "OBX|1|SN|1554-5^GLUCOSE^LN||^182\\.br\\\x01|mg/dl|||||F\r"
                       "NTE|1||line one\\.br\\line two\r"));
  const MappingResult r = f.map();
  REQUIRE(r.issues.size() == 1);
  CHECK(r.issues[0].message == "'182\\n\\u0001' is not a number");
  CHECK(r.issues[0].source == "OBX-5.2");
  // So does the unmapped report, one line per place (`adapterd translate --explain`).
  CHECK(std::find(r.unmapped.begin(), r.unmapped.end(), "NTE-3 = line one\\nline two") !=
        r.unmapped.end());
  // And a routing error, which quotes the header (also found by fuzz_hl7v2_translate).
  const auto odd = hl7v2::Message::parse(
      std::string_view("MSH|^~\\&|LAB|FAC|EHR|HOSP|20240315||ORU^R0\\.br\\1|C1|P|2.5.1\r"));
  REQUIRE(odd);
  const auto route = route_hl7(*f.set, hl7v2::header_of(*odd));
  REQUIRE_FALSE(route);
  CHECK(route.error().message ==
        "no route for message type ORU^R0\\n1 from LAB|FAC (version 2.5.1)");
}

TEST_CASE("the unmapped report lists content no template read", "[mapping][engine]") {
  Fixture f(R"J({"$template": "t", "$version": "1", "$ignore": ["MSH", "OBX-1", "OBX-2", "OBX-11"],
    "genes": [{"$each": "OBX[OBX-3.1 == '48018-6']", "gene": "{{ OBX-5.2 }}", "sub": "{{ OBX-4 }}"}]})J");
  const MappingResult r = f.map();
  for (const auto& u : r.unmapped) UNSCOPED_INFO(u);
  CHECK(r.output.dump() ==
        R"({"genes":[{"gene":"BRCA1","sub":"2a"},{"gene":"BRCA2","sub":"2b"}]})");
  auto has = [&](const std::string& s) {
    return std::find(r.unmapped.begin(), r.unmapped.end(), s) != r.unmapped.end();
  };
  CHECK(has("PID-5.1 = DOE"));
  CHECK(has("OBX[3]-5 = 0.480"));
  CHECK(has("OBX-5.1 = HGNC:1100"));  // only component 2 was read
  CHECK_FALSE(has("OBX-5.2 = BRCA1"));
  CHECK_FALSE(has("OBX-3.1 = 48018-6"));  // read by the filter
  CHECK_FALSE(has("OBX-1 = 1"));          // $ignore
  for (const auto& u : r.unmapped) CHECK(u.rfind("MSH", 0) != 0);
}

TEST_CASE("load errors give file and line and column", "[mapping][engine]") {
  auto errors = load_errors(
      "{\"$template\": \"t\", \"$version\": \"1\",\n  \"a\": \"{{ hgsv(OBX-5) }}\",\n"
      "  \"b\": \"{{ OBX-5 == }}\",\n  \"c\": {\"$include\": \"nope\"},\n"
      "  \"d\": {\"$each\": \"OBX\"},\n  \"e\": {\"$iff\": \"x\"}\n}");
  for (const auto& e : errors) UNSCOPED_INFO(e);
  REQUIRE(errors.size() == 5);
  CHECK(errors[0] == "t.json:2:12: unknown function 'hgsv' (adapterd functions lists them)");
  CHECK(errors[1].rfind("t.json:3:", 0) == 0);
  CHECK(errors[1].find("expected a value") != std::string::npos);
  CHECK(errors[2] == "t.json:5:9: $each is only allowed on an item of an array");
  CHECK(errors[3].rfind("t.json:6:9: unknown directive '$iff'", 0) == 0);
  CHECK(errors[4] == "t.json:4:21: no partial named 'nope'");
  auto syntax = load_errors("{\"$template\": \"t\",\n  \"a\": [1, 2,\n}");
  REQUIRE(syntax.size() == 1);
  CHECK(syntax[0].rfind("t.json:3:1:", 0) == 0);
}

TEST_CASE("bad HL7 paths are load errors at their position", "[mapping][engine]") {
  auto errors = load_errors(
      "{\"$template\": \"t\", \"$version\": \"1\",\n  \"a\": \"{{ OBX-0 }}\",\n"
      "  \"b\": \"{{ OBX-5.1.1.1 }}\",\n  \"c\": \"{{ OBX-5[0] }}\",\n"
      "  \"d\": \"{{ OBX-99999 }}\",\n  \"e\": \"{{ PID-5.0 }}\"\n}");
  for (const auto& e : errors) UNSCOPED_INFO(e);
  REQUIRE(errors.size() == 5);
  CHECK(errors[0] == "t.json:2:16: field numbers run from 1 to 999");
  CHECK(errors[1] ==
        "t.json:3:21: an HL7 path ends at the subcomponent: "
        "SEG-field[rep].component.subcomponent");
  CHECK(errors[2] == "t.json:4:18: repetition numbers run from 1 to 999");
  CHECK(errors[3] == "t.json:5:16: field numbers run from 1 to 999");
  CHECK(errors[4] == "t.json:6:18: component numbers run from 1 to 999");
}

// ---------------------------------------------------------------------------------------------
// XML sources

namespace {

const char* kXmlRoutes =
    R"({"routes": [{"match": {"xml_root": "report", "xml_namespace": "urn:lab"},
                                         "template": "x.json"}]})";

const std::string kReport = R"(<?xml version="1.0"?>
<lab:report xmlns:lab="urn:lab" id="R-1">
  <lab:date>2022-03-21T13:45:00+02:00</lab:date>
  <lab:variant gene="BRCA1"><lab:change>c.5266dupC</lab:change><lab:depth>88</lab:depth></lab:variant>
  <lab:variant gene="TP53"><lab:change>c.215C&gt;G</lab:change><lab:depth>150</lab:depth></lab:variant>
  <lab:reviewer>Dr Who</lab:reviewer>
</lab:report>)";

MappingResult map_report(const std::string& tmpl, const std::string& report = kReport) {
  MemoryFiles files;
  files.add("routes.json", kXmlRoutes).add("x.json", tmpl);
  auto loaded = load_template_set(files);
  if (!loaded) {
    std::string all;
    for (const auto& e : loaded.error()) all += e.where + ": " + e.message + "\n";
    FAIL(all);
  }
  auto doc = xml::parse(report);
  REQUIRE(doc);
  auto route = route_xml(**loaded, *doc);
  REQUIRE(route);
  return map_xml(**loaded, **route, *doc, MappingSettings{});
}

}  // namespace

TEST_CASE("XML templates iterate XPath node sets with namespaces", "[mapping][xml]") {
  const MappingResult r = map_report(R"J({"$template": "x", "$version": "1",
    "$namespaces": {"l": "urn:lab"},
    "$ignore": ["/l:report/l:reviewer"],
    "id": "{{ xpath('/l:report/@id') }}",
    "when": "{{ datetime(xpath('l:date')) }}",
    "variants": [{"$each": "xpath('l:variant')", "$as": "v",
      "gene": "{{ $v.gene }}", "change": "{{ xpath('l:change') }}", "n": "{{ $index }}"}],
    "count": "{{ xpath('count(l:variant)') }}"
  })J");
  CHECK(r.issues.empty());
  CHECK(
      r.output.dump() ==
      R"({"id":"R-1","when":"2022-03-21T13:45:00+02:00","variants":[{"gene":"BRCA1","change":"c.5266dupC","n":1},{"gene":"TP53","change":"c.215C>G","n":2}],"count":2})");
  // Depth was never read: reported, with readable paths. The reviewer is $ignore'd.
  CHECK(r.unmapped == std::vector<std::string>{"/report/variant[1]/depth = 88",
                                               "/report/variant[2]/depth = 150"});
}

TEST_CASE("XML routing names the root element and namespace it could not place", "[mapping][xml]") {
  MemoryFiles files;
  files.add("routes.json", kXmlRoutes).add("x.json", R"({"$template": "x", "$version": "1"})");
  auto loaded = load_template_set(files);
  REQUIRE(loaded);
  auto doc = xml::parse("<report xmlns='urn:other'/>");
  REQUIRE(doc);
  auto route = route_xml(**loaded, *doc);
  REQUIRE_FALSE(route);
  CHECK(route.error().message == "no route for XML root element <report> in namespace urn:other");
}

TEST_CASE("XPath errors: syntax at load with file:line:column, unknown prefix at run time",
          "[mapping][xml]") {
  MemoryFiles files;
  files.add("routes.json", kXmlRoutes)
      .add("x.json",
           "{\"$template\": \"x\", \"$version\": \"1\",\n  \"a\": \"{{ xpath('/report[') }}\"}");
  auto loaded = load_template_set(files);
  REQUIRE_FALSE(loaded);
  CHECK(loaded.error()[0].where == "x.json:2:12");
  CHECK(loaded.error()[0].message == "XPath '/report[': Invalid expression");

  const MappingResult r = map_report(R"({"$template": "x", "$version": "1",
    "a": "{{ xpath('nope:variant') }}"})");
  REQUIRE(r.issues.size() == 1);
  CHECK(r.failed());
  CHECK(r.issues[0].template_pos == "x.json:2:14");
  CHECK(r.issues[0].message.find("nope:variant") != std::string::npos);
}

TEST_CASE("xpath() on an HL7 message is an error, not a crash", "[mapping][xml]") {
  Fixture f(R"({"$template": "t", "$version": "1", "a": "{{ xpath('/x') }}"})");
  const MappingResult r = f.map();
  REQUIRE(r.issues.size() == 1);
  CHECK(r.issues[0].message == "xpath() needs an XML source; this message is HL7 v2");
}

TEST_CASE("a Bundle that breaks the output checks is an error naming the element",
          "[mapping][engine][fhir_checks]") {
  Fixture f(R"J({"$template": "t", "$version": "1",
    "resourceType": "Bundle", "type": "transaction",
    "entry": [{"fullUrl": "{{ uuid('Observation', 'x') }}",
               "resource": {"resourceType": "Observation", "status": "final",
                            "code": {"text": "{{ OBX[1]-3.2 }}"}},
               "request": {"method": "POST", "url": "Observation"}}]
  })J");
  const MappingResult r = f.map();
  REQUIRE_FALSE(r.issues.empty());
  CHECK(r.failed());
  CHECK(r.issues[0].message.rfind("output check: ", 0) == 0);
  CHECK(r.issues[0].source == "Bundle.entry[0].resource(Observation).category");
  CHECK(r.issues[0].template_pos == "t.json");
}

TEST_CASE("$with on nothing omits the object, and on several places is an error",
          "[mapping][engine]") {
  Fixture f(R"J({"$template": "t", "$version": "1",
    "none": {"$with": "OBX[OBX-3.1 == 'no-such-code']", "value": "{{ OBX-5 }}"},
    "one": {"$with": "OBX[OBX-3.1 == '81258-6']", "value": "{{ OBX-5 }}"},
    "many": {"$with": "OBX[OBX-3.1 == '48018-6']", "value": "{{ OBX-5 }}"}
  })J");
  const MappingResult r = f.map();
  CHECK(r.output.find("none") == nullptr);
  REQUIRE(r.output.find("one") != nullptr);
  CHECK(r.output.find("one")->find("value")->as_string() == "0.480");
  CHECK(r.output.find("many") == nullptr);
  REQUIRE(r.issues.size() == 1);
  CHECK(r.issues[0].message == "$with names 2 places; it needs one segment, group or XML node");
  CHECK(r.issues[0].source == "OBX");  // the first of them
}

TEST_CASE("$ignore rules with a typo are load errors and never ignore a whole segment",
          "[mapping][engine]") {
  auto errors = load_errors(
      "{\"$template\": \"t\", \"$version\": \"1\",\n"
      "  \"$ignore\": [\"OBX\", \"OBX-1\", \"PID-3.4\", \"ZGX-12\", \"OBX5\", \"OBX-\", "
      "\"obx-1\",\n"
      "              \"OBX-3.\", \"OBX-0\", \"/report/@version\"]}");
  for (const auto& e : errors) UNSCOPED_INFO(e);
  REQUIRE(errors.size() == 5);
  CHECK(errors[0] ==
        "t.json:2:52: 'OBX5' is not an ignore rule: write SEG, SEG-n or SEG-n.c (HL7), or an "
        "XPath starting with /");
  CHECK(errors[1].rfind("t.json:2:60: 'OBX-' is not an ignore rule", 0) == 0);
  CHECK(errors[2].rfind("t.json:2:68: 'obx-1' is not an ignore rule", 0) == 0);
  CHECK(errors[3].rfind("t.json:3:15: 'OBX-3.' is not an ignore rule", 0) == 0);
  CHECK(errors[4].rfind("t.json:3:25: 'OBX-0' is not an ignore rule", 0) == 0);
}

TEST_CASE("comparisons are numeric only when both sides read as numbers", "[mapping][engine]") {
  Fixture f(R"J({"$template": "t", "$version": "1",
    "a": "{{ '10' > '9' }}", "b": "{{ '10' > 'x' }}", "c": "{{ OBX-1 == '1.0' }}",
    "d": "{{ OBX-1 == 'a' }}", "e": "{{ OBX[3]-5 < 0.5 }}", "f": "{{ OBX-99 == null }}",
    "g": "{{ true == 'true' }}", "h": "{{ OBX-1 >= '+1' }}", "i": "{{ OBX-1 < 'A' }}"
  })J");
  const MappingResult r = f.map();
  CHECK(r.output.dump() ==
        R"({"a":true,"b":false,"c":true,"d":false,"e":true,"f":true,"g":true,"h":true,"i":true})");
}

// Comparisons with a text literal on the right take a path of their own (engine.cpp compare):
// the same answers as any other comparison.
TEST_CASE("comparing with a text literal: variables, escapes, nothing and !=",
          "[mapping][engine]") {
  Fixture f(R"J({"$template": "t", "$version": "1",
    "$let": {"gene": "{{ OBX[1]-5.2 }}", "none": "{{ OBX-99 }}", "field": "{{ OBX[1]-5 }}"},
    "a": "{{ $gene == 'BRCA1' }}", "b": "{{ $gene != 'BRCA1' }}", "c": "{{ $gene == 'brca1' }}",
    "d": "{{ OBX[6]-5 == 'Two variants & more' }}", "e": "{{ $none == '' }}",
    "f": "{{ $none != 'x' }}", "g": "{{ OBX-99 == 'x' }}", "h": "{{ $field == 'HGNC:1100^BRCA1^HGNC' }}",
    "i": "{{ $gene == 'BRCA1' and OBX[2]-4 != '2b' }}", "j": "{{ 'BRCA1' == $gene }}",
    "k": "{{ $missing == 'x' }}"
  })J");
  const MappingResult r = f.map();
  CHECK(r.output.dump() ==
        R"({"a":true,"b":false,"c":false,"d":true,"e":true,"f":true,"g":false,"h":true,)"
        R"("i":true,"j":true,"k":false})");
  // An unknown variable is still reported where it is written.
  REQUIRE(r.issues.size() == 1);
  CHECK(r.issues[0].message == "unknown variable $missing");
}

TEST_CASE("an $if that uses no $let is checked first: a dropped object evaluates no $let",
          "[mapping][engine]") {
  Fixture f(R"J({"$template": "t", "$version": "1",
    "rows": [{"$each": "OBX", "$as": "o",
              "$let": {"noisy": "{{ issue('warning', 'let evaluated', OBX-5) }}", "code": "{{ OBX-3.1 }}"},
              "$if": "OBX-2 == 'NM'",
              "value": "{{ OBX-5 }}"}],
    "uses_let": [{"$each": "OBX", "$as": "o",
                  "$let": {"code": "{{ OBX-3.1 }}"},
                  "$if": "$code == '48004-6'",
                  "value": "{{ OBX-5 }}"}]
  })J");
  const MappingResult r = f.map();
  INFO(r.output.dump(true));
  CHECK(r.output.dump() ==
        R"({"rows":[{"value":"0.480"}],)"
        R"("uses_let":[{"value":"NM_007294.3:c.5266dupC"},{"value":"NM_000059.3:c.7397T>C"}]})");
  // Only the NM row kept its object, so only its $let ran.
  REQUIRE(r.issues.size() == 1);
  CHECK(r.issues[0].message == "let evaluated");
  CHECK(r.issues[0].source == "OBX[3]-5");
}

TEST_CASE("exists, empty, in, coalesce and lookup keep their meaning on the evaluator's own path",
          "[mapping][engine]") {
  // bind_names hands these calls to the Evaluator (Expr::Builtin); the general path remains for
  // the forms it does not take (in() with a variable list, lookup() of a table named at run time).
  MemoryFiles files;
  files.add("tables/systems.csv",
            "label,uri,kind\nLN,http://loinc.org,code\nHGNC,http://www.genenames.org,\n");
  Fixture f(R"J({"$template": "t", "$version": "1",
    "$let": {"systems": "{{ ['HGNC', 'LN'] }}", "table": "systems"},
    "exists": ["{{ exists(OBX[1]-5) }}", "{{ exists(OBX[1]-99) }}", "{{ not empty(PID-5.2) }}"],
    "empty": ["{{ empty(OBX[1]-99) }}", "{{ empty(OBX[1]) }}"],
    "in": ["{{ in(OBX[1]-2, 'NM', 'CWE') }}", "{{ in(OBX[3]-5, 0.48, '0.480') }}",
           "{{ in(OBX[1]-99, 'x') }}", "{{ in(OBX[1]-5.3, $systems) }}"],
    "coalesce": ["{{ coalesce(OBX[1]-99, OBX[1]-5.2, issue('error', 'not evaluated', OBX[1]-5)) }}",
                 "{{ coalesce(OBX[1]-99, OBX[2]-99) }}"],
    "lookup": ["{{ lookup('systems', OBX[1]-3.3) }}", "{{ lookup('systems', 'LN', 'kind') }}",
               "{{ lookup('systems', 'HGNC', 'kind') }}", "{{ lookup($table, 'LN') }}",
               "{{ lookup('systems', 'LN', 'nope') }}"]
  })J",
            files);
  const MappingResult r = f.map();
  INFO(r.output.dump(true));
  CHECK(r.output.dump() == R"({"exists":[true,false,true],"empty":[true,false],)"
                           R"("in":[true,true,false,true],"coalesce":["BRCA1"],)"
                           R"("lookup":["http://loinc.org","code","http://loinc.org"]})");
  // coalesce() stopped at its second argument; the missing column is reported where written.
  REQUIRE(r.issues.size() == 1);
  CHECK(r.issues[0].message == "table 'systems' has no column 'nope'");
  CHECK(r.issues[0].template_pos.find("t.json:") == 0);
}

TEST_CASE("token() escapes the search syntax, then percent-encodes", "[mapping][engine]") {
  Fixture f(R"J({"$template": "t", "$version": "1",
    "plain": "{{ token('urn:oid:2.16.840.1.113883.3.888', 'MRN12345') }}",
    "escaped": "{{ token('urn:x|y', 'a,b$c d/é') }}",
    "no_system": "{{ token('', 'x|y') }}",
    "no_value": "{{ token('urn:x', '') }}"
  })J");
  const MappingResult r = f.map();
  INFO(r.output.dump(true));
  CHECK(r.output.dump() ==
        R"({"plain":"urn:oid:2.16.840.1.113883.3.888|MRN12345",)"
        R"("escaped":"urn:x%5C%7Cy|a%5C%2Cb%5C%24c%20d/%C3%A9","no_system":"x%5C%7Cy"})");
}

// The evaluator keeps its stacks, caches and read set per thread between mappings (emptied):
// nothing of one mapping may show in the next, whatever template set it used.
TEST_CASE("a mapping carries nothing into the next one on the same thread", "[mapping][engine]") {
  MemoryFiles partial_files;
  partial_files.add("partials/gene.json", R"J({"$partial": "gene", "$params": ["g"],
    "$with": "$g", "code": "{{ OBX-5.1 }}", "sub": "{{ OBX-4 }}", "feed": "{{ $feed.name }}"})J");
  Fixture first(R"J({"$template": "t", "$version": "1", "$ignore": ["MSH"],
    "genes": [{"$each": "OBX[OBX-3.1 == '48018-6']", "$as": "g",
               "$do": {"$include": "gene", "g": "{{ $g }}"}}],
    "again": [{"$each": "OBX[OBX-3.1 == '48018-6']", "$as": "g",
               "$do": "{{ include('gene', $g).code }}"}],
    "groups": [{"$each": "subid_groups()", "$as": "s", "$do": "{{ $s.key }}"}]})J",
                partial_files);
  // Another set: no partials, another filter, groups in another place.
  Fixture other(R"J({"$template": "t", "$version": "1",
    "rows": [{"$each": "OBX[OBX-3.1 == '48004-6']", "$do": "{{ OBX-5 }}"}],
    "orders": [{"$each": "groups('ORDER_OBSERVATION')", "$as": "o", "$do": "{{ OBR-2 }}"}],
    "all": "{{ MSH-10 }}"})J");

  MappingSettings one;
  one.feed = Json::object({{"name", Json::string("one")}});
  MappingSettings two;
  two.feed = Json::object({{"name", Json::string("two")}});

  const MappingResult a = first.map(one);
  const MappingResult b = other.map();
  const MappingResult a_again = first.map(one);
  CHECK(a.output.dump() == R"({"genes":[{"code":"HGNC:1100","sub":"2a","feed":"one"},)"
                           R"({"code":"HGNC:1101","sub":"2b","feed":"one"}],)"
                           R"("again":["HGNC:1100","HGNC:1101"],"groups":["2a","2b","1"]})");
  CHECK(b.output.dump() == R"({"rows":["NM_007294.3:c.5266dupC","NM_000059.3:c.7397T>C"],)"
                           R"("orders":["ORD1"],"all":"C1"})");
  CHECK(a_again.output.dump() == a.output.dump());
  // What the second mapping read is not taken as read by the third.
  CHECK(a_again.unmapped == a.unmapped);
  CHECK(std::find(a.unmapped.begin(), a.unmapped.end(), "OBX[2]-5 = NM_007294.3:c.5266dupC") !=
        a.unmapped.end());
  CHECK(a_again.issues.size() == a.issues.size());
  // The same message and template set with another $feed: no partial call of the last mapping
  // is taken for this one's.
  const std::string with_two = first.map(two).output.dump();
  CHECK(with_two.find(R"("feed":"two")") != std::string::npos);
  CHECK(with_two.find(R"("feed":"one")") == std::string::npos);
}
