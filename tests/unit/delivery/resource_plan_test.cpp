#include "delivery/resource_plan.h"

#include <catch2/catch.hpp>

namespace {

using namespace adapter::delivery;

// Observation -> Patient and Specimen; Specimen -> Patient; Report -> Observation, Patient.
const std::string kBundle = R"({"resourceType":"Bundle","type":"transaction","entry":[
 {"fullUrl":"urn:uuid:obs","resource":{"resourceType":"Observation",
   "subject":{"reference":"urn:uuid:pat"},"specimen":{"reference":"urn:uuid:spec"},
   "derivedFrom":[{"reference":"urn:uuid:spec","display":"x"},{"reference":"Patient/outside"}]},
  "request":{"method":"POST","url":"Observation","ifNoneExist":"identifier=s|o1"}},
 {"fullUrl":"urn:uuid:rep","resource":{"resourceType":"DiagnosticReport",
   "result":[{"reference":"urn:uuid:obs"}],"subject":{"reference":"urn:uuid:pat"}},
  "request":{"method":"POST","url":"DiagnosticReport","ifNoneExist":"identifier=s|r1"}},
 {"fullUrl":"urn:uuid:spec","resource":{"resourceType":"Specimen","subject":{"reference":"urn:uuid:pat"}},
  "request":{"method":"POST","url":"Specimen"}},
 {"fullUrl":"urn:uuid:pat","resource":{"resourceType":"Patient","id":"ignored"},
  "request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=s|p1"}}
]})";

std::vector<std::string> types(const ResourcePlan& plan) {
  std::vector<std::string> out;
  for (const PlannedEntry& e : plan.entries()) out.push_back(e.resource_type);
  return out;
}

TEST_CASE("resources go after what they reference, otherwise in Bundle order",
          "[delivery][resource_plan]") {
  auto plan = ResourcePlan::from_bundle(kBundle);
  REQUIRE(plan);
  CHECK(types(*plan) ==
        std::vector<std::string>{"Patient", "Specimen", "Observation", "DiagnosticReport"});
  CHECK(plan->entries()[0].index == 3);
  CHECK(plan->entries()[0].if_none_exist == "identifier=s|p1");
  CHECK(plan->entries()[1].if_none_exist.empty());
}

TEST_CASE("references are rewritten at any depth to the ids the server assigned",
          "[delivery][resource_plan]") {
  auto plan = ResourcePlan::from_bundle(kBundle);
  REQUIRE(plan);
  std::map<std::string, std::string> assigned{{"urn:uuid:pat", "Patient/7"},
                                              {"urn:uuid:spec", "Specimen/8"}};
  auto obs = plan->resolve(plan->entries()[2], assigned);
  REQUIRE(obs);
  CHECK(*obs == R"({"resourceType":"Observation","subject":{"reference":"Patient/7"},)"
                R"("specimen":{"reference":"Specimen/8"},"derivedFrom":[{"reference":"Specimen/8",)"
                R"("display":"x"},{"reference":"Patient/outside"}]})");
  // The report needs the Observation, which has no id yet.
  auto report = plan->resolve(plan->entries()[3], assigned);
  REQUIRE(!report);
  CHECK(report.error().message ==
        "entry 2 (DiagnosticReport): reference urn:uuid:obs is to an entry not sent yet");
}

TEST_CASE("a reference cycle is broken by an update after the creates",
          "[delivery][resource_plan]") {
  auto plan = ResourcePlan::from_bundle(R"({"resourceType":"Bundle","entry":[
    {"fullUrl":"urn:uuid:a","resource":{"resourceType":"ServiceRequest","id":"x","specimen":[{"reference":"urn:uuid:b"}],"subject":{"reference":"urn:uuid:c"}},"request":{"method":"POST"}},
    {"fullUrl":"urn:uuid:b","resource":{"resourceType":"Specimen","request":[{"reference":"urn:uuid:a"}],"subject":{"reference":"urn:uuid:c"}},"request":{"method":"POST"}},
    {"fullUrl":"urn:uuid:c","resource":{"resourceType":"Patient"},"request":{"method":"POST"}}]})");
  REQUIRE(plan);
  // The Patient first; then the cycle is cut at the first of its entries.
  CHECK(types(*plan) == std::vector<std::string>{"Patient", "ServiceRequest", "Specimen"});
  CHECK(plan->updates() == std::vector<std::size_t>{1});
  const PlannedEntry& request = plan->entries()[1];
  CHECK(request.deferred == std::set<std::string>{"urn:uuid:b"});
  std::map<std::string, std::string> assigned{{"urn:uuid:c", "Patient/1"}};
  auto create = plan->resolve(request, assigned);
  REQUIRE(create);
  CHECK(*create ==
        R"({"resourceType":"ServiceRequest","id":"x","subject":{"reference":"Patient/1"}})");
  assigned["urn:uuid:a"] = "ServiceRequest/2";
  auto specimen = plan->resolve(plan->entries()[2], assigned);
  REQUIRE(specimen);
  CHECK(*specimen == R"({"resourceType":"Specimen","request":[{"reference":"ServiceRequest/2"}],)"
                     R"("subject":{"reference":"Patient/1"}})");
  assigned["urn:uuid:b"] = "Specimen/3";
  auto update = plan->resolve_update(request, assigned, "2");
  REQUIRE(update);
  CHECK(*update ==
        R"({"resourceType":"ServiceRequest","id":"2","specimen":[{"reference":"Specimen/3"}],)"
        R"("subject":{"reference":"Patient/1"}})");
}

TEST_CASE("only an entry on the cycle is cut, and a self-reference waits for the update",
          "[delivery][resource_plan]") {
  // The Observation waits for the Specimen, which is on a cycle with the ServiceRequest; the
  // Observation has no fullUrl and must not be cut.
  auto plan = ResourcePlan::from_bundle(R"({"resourceType":"Bundle","entry":[
    {"resource":{"resourceType":"Observation","specimen":{"reference":"urn:uuid:s"}},"request":{"method":"POST"}},
    {"fullUrl":"urn:uuid:r","resource":{"resourceType":"ServiceRequest","specimen":[{"reference":"urn:uuid:s"}]},"request":{"method":"POST"}},
    {"fullUrl":"urn:uuid:s","resource":{"resourceType":"Specimen","request":[{"reference":"urn:uuid:r"}]},"request":{"method":"POST"}},
    {"fullUrl":"urn:uuid:g","resource":{"resourceType":"Group","member":[{"entity":{"reference":"urn:uuid:g"}}]},"request":{"method":"POST"}}]})");
  REQUIRE(plan);
  CHECK(types(*plan) ==
        std::vector<std::string>{"Group", "ServiceRequest", "Specimen", "Observation"});
  CHECK(plan->entries()[0].deferred == std::set<std::string>{"urn:uuid:g"});
  CHECK(plan->entries()[1].deferred == std::set<std::string>{"urn:uuid:s"});
  CHECK(plan->entries()[3].deferred.empty());
  CHECK(plan->updates() == std::vector<std::size_t>{0, 1});
  std::map<std::string, std::string> assigned;
  auto group = plan->resolve(plan->entries()[0], assigned);
  REQUIRE(group);
  CHECK(*group == R"({"resourceType":"Group"})");
  assigned["urn:uuid:g"] = "Group/5";
  auto update = plan->resolve_update(plan->entries()[0], assigned, "5");
  REQUIRE(update);
  CHECK(*update ==
        R"({"resourceType":"Group","id":"5","member":[{"entity":{"reference":"Group/5"}}]})");
}

TEST_CASE("bundles that cannot be sent one by one are refused with the entry named",
          "[delivery][resource_plan]") {
  auto put = ResourcePlan::from_bundle(R"({"resourceType":"Bundle","entry":[
    {"resource":{"resourceType":"Patient"},"request":{"method":"PUT","url":"Patient/1"}}]})");
  REQUIRE(!put);
  CHECK(put.error().message ==
        "entry 1 is neither a POST nor a conditional update (PUT Type?search): only those can be "
        "sent one by one");
  auto other_type = ResourcePlan::from_bundle(R"({"resourceType":"Bundle","entry":[
    {"resource":{"resourceType":"Patient"},"request":{"method":"PUT","url":"Person?x=1"}}]})");
  REQUIRE(!other_type);
  auto twice = ResourcePlan::from_bundle(R"({"resourceType":"Bundle","entry":[
    {"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient"},"request":{"method":"POST"}},
    {"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient"},"request":{"method":"POST"}}]})");
  REQUIRE(!twice);
  CHECK(twice.error().message == "entry 2 repeats the fullUrl urn:uuid:a");
  CHECK(!ResourcePlan::from_bundle("[]"));
  auto empty = ResourcePlan::from_bundle(R"({"resourceType":"Bundle"})");
  REQUIRE(empty);
  CHECK(empty->size() == 0);
}

TEST_CASE("a correction's conditional updates are planned like creates, by their search",
          "[delivery][resource_plan]") {
  auto plan = ResourcePlan::from_bundle(R"({"resourceType":"Bundle","entry":[
    {"fullUrl":"urn:uuid:rep","resource":{"resourceType":"DiagnosticReport",
      "result":[{"reference":"urn:uuid:obs"}]},
     "request":{"method":"PUT","url":"DiagnosticReport?identifier=s|r1"}},
    {"fullUrl":"urn:uuid:obs","resource":{"resourceType":"Observation"},
     "request":{"method":"PUT","url":"Observation?identifier=s|o1"}}]})");
  REQUIRE(plan);
  CHECK(types(*plan) == std::vector<std::string>{"Observation", "DiagnosticReport"});
  CHECK(plan->entries()[0].conditional_update == "Observation?identifier=s|o1");
  CHECK(plan->entries()[0].if_none_exist.empty());
  auto report = plan->resolve(plan->entries()[1], {{"urn:uuid:obs", "Observation/3"}});
  REQUIRE(report);
  CHECK(*report ==
        R"({"resourceType":"DiagnosticReport","result":[{"reference":"Observation/3"}]})");
}

TEST_CASE("the id comes from the Location or from the answer's body", "[delivery][resource_plan]") {
  CHECK(ResourcePlan::assigned_id("http://h/fhir/Patient/12/_history/1", "", "Patient") ==
        "Patient/12");
  CHECK(ResourcePlan::assigned_id("Observation/ab-c", "", "Observation") == "Observation/ab-c");
  // "Patient/" inside another type's name does not count.
  CHECK(ResourcePlan::assigned_id("http://h/RelatedPatient/1",
                                  R"({"resourceType":"Patient","id":"9"})",
                                  "Patient") == "Patient/9");
  CHECK(ResourcePlan::assigned_id("", "{}", "Patient").empty());
  CHECK(ResourcePlan::summary({{"201 Created", "Patient/1/_history/1"}, {"200 OK", ""}}) ==
        R"([{"status":"201 Created","location":"Patient/1/_history/1"},{"status":"200 OK"}])");
}

}  // namespace
