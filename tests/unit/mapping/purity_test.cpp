#include "mapping/purity.h"

#include <catch2/catch.hpp>

#include "hl7v2/header.h"
#include "mapping/engine.h"
#include "unit/mapping/memory_files.h"

using namespace adapter;
using namespace adapter::mapping;
using adapter::mapping::test::MemoryFiles;

namespace {

const char* kPurityRoutes =
    R"({"routes": [{"match": {"message_type": "ORU^R01"}, "template": "t.json"}]})";

const std::string kPurityMessage =
    "MSH|^~\\&|LAB|FAC|EHR|HOSP|20240315143000-0500||ORU^R01^ORU_R01|C1|P|2.5.1\r"
    "PID|1||MRN1^^^HOSP^MR\r"
    "OBR|1|ORD1|LAB1|81247-9^Panel^LN\r"
    "OBX|1|ST|48018-6^Gene^LN|2a|BRCA1||||||F\r"
    "OBX|2|ST|48004-6^c.HGVS^LN|2a|c.1A>G||||||F\r"
    "OBX|3|ST|48018-6^Gene^LN|2b|BRCA2||||||F\r";

struct Loaded {
  std::shared_ptr<const TemplateSet> set;
  hl7v2::Message message = *hl7v2::Message::parse(kPurityMessage);

  explicit Loaded(const std::string& tmpl, MemoryFiles files = {}) {
    files.add("routes.json", kPurityRoutes).add("t.json", tmpl);
    auto loaded = load_template_set(files);
    if (!loaded) {
      std::string all;
      for (const auto& e : loaded.error()) all += e.where + ": " + e.message + "\n";
      FAIL(all);
    }
    set = *loaded;
  }
  const Partial& partial(const std::string& name) const { return set->partials.at(name); }
  MappingResult map() {
    auto route = route_hl7(*set, hl7v2::header_of(message));
    REQUIRE(route);
    return map_hl7(*set, **route, message, MappingSettings{});
  }
};

const char* kTemplateHead = R"J({"$template": "t", "$version": "1", )J";

}  // namespace

TEST_CASE("a partial is pure when it reads only its parameters, globals and its own context",
          "[mapping][purity]") {
  MemoryFiles files;
  files
      .add(
          "partials/code.json",
          R"J({"$partial": "code", "$params": ["v"], "code": "{{ $v.1 }}", "sys": "{{ $feed.x }}"})J")
      .add("partials/row.json",
           R"J({"$partial": "row", "$params": ["obx"], "$with": "$obx",
                "value": "{{ OBX-5 }}", "code": {"$include": "code", "v": "{{ OBX-3 }}"}})J")
      .add("partials/caller_var.json",
           R"J({"$partial": "caller_var", "$params": ["a"], "v": "{{ $a + $outer }}"})J")
      .add("partials/no_with.json",
           R"J({"$partial": "no_with", "$params": ["a"], "v": "{{ OBX-5 }}"})J")
      .add(
          "partials/groups.json",
          R"J({"$partial": "groups", "$params": ["o"], "$with": "$o", "n": "{{ count(groups('OBSERVATION')) }}"})J")
      .add(
          "partials/calls_impure.json",
          R"J({"$partial": "calls_impure", "$params": ["a"], "x": {"$include": "caller_var", "a": "{{ $a }}"}})J")
      .add("partials/binds_outer.json",
           R"J({"$partial": "binds_outer", "$params": ["a"], "$let": {"outer": "1"},
                "x": {"$include": "caller_var", "a": "{{ $a }}"}})J");
  Loaded f(std::string(kTemplateHead) + R"J("x": 1})J", files);

  CHECK(f.partial("code").pure);
  CHECK(f.partial("code").context_segments.empty());
  CHECK(f.partial("row").pure);
  CHECK(f.partial("row").context_param == 0);
  CHECK(f.partial("row").context_segments == std::vector<std::string>{"OBX"});
  // Reads a variable of its caller: the same arguments may give another result.
  CHECK_FALSE(f.partial("caller_var").pure);
  // A path without a "$with" resolves in the caller's context.
  CHECK_FALSE(f.partial("no_with").pure);
  // groups() reads the innermost context, whatever made it.
  CHECK_FALSE(f.partial("groups").pure);
  // What an included partial reads counts for its caller, unless the caller binds it.
  CHECK_FALSE(f.partial("calls_impure").pure);
  CHECK(f.partial("binds_outer").pure);
}

TEST_CASE("a global variable bound by some template is not treated as global",
          "[mapping][purity]") {
  MemoryFiles files;
  files.add("partials/code.json",
            R"J({"$partial": "code", "$params": ["v"], "sys": "{{ $feed.x }}"})J");
  Loaded f(std::string(kTemplateHead) + R"J("$let": {"feed": "{{ 'mine' }}"},
      "a": {"$include": "code", "v": "1"}})J",
           files);
  CHECK_FALSE(f.partial("code").pure);
}

TEST_CASE("cached partial calls give what calling them again gives", "[mapping][purity]") {
  MemoryFiles files;
  files
      .add("partials/row.json",
           R"J({"$partial": "row", "$params": ["obx"], "$with": "$obx",
                "value": "{{ OBX-5 }}",
                "$check": "{{ OBX-5 == 'BRCA2' ? issue('warning', 'second gene', OBX-5) : null }}"})J")
      .add("partials/context.json",
           // Pure as written, but a parameter that is no place leaves the caller's context.
           R"J({"$partial": "context", "$params": ["p"], "$with": "$p", "v": "{{ OBX-5 }}"})J")
      .add("partials/caller_var.json",
           R"J({"$partial": "caller_var", "$params": ["a"], "v": "{{ $a + $outer }}"})J");
  Loaded f(std::string(kTemplateHead) + R"J(
      "rows": [{"$each": "OBX", "$as": "o", "$do": [
        {"$include": "row", "obx": "{{ $o }}"}, {"$include": "row", "obx": "{{ $o }}"}]}],
      "contexts": [{"$each": "OBX", "$do": {"$include": "context", "p": "same"}}],
      "scoped": [{"$each": "OBX", "$let": {"outer": "{{ OBX-1 }}"},
                  "$do": {"$include": "caller_var", "a": "x"}}],
      "filtered": [{"$each": "['2a', '2b']", "$as": "k", "$do": "{{ count(OBX[OBX-4 == $k]) }}"}],
      "pure_filter": [{"$each": "subid_groups()", "$do": "{{ count(OBX[OBX-3.1 == '48018-6']) }}"}]
    })J",
           files);
  CHECK(f.partial("row").pure);
  CHECK(f.partial("context").pure);
  const MappingResult r = f.map();
  INFO(r.output.dump(true));
  CHECK(r.output.dump() ==
        R"({"rows":[{"value":"BRCA1"},{"value":"BRCA1"},{"value":"c.1A>G"},{"value":"c.1A>G"},)"
        R"({"value":"BRCA2"},{"value":"BRCA2"}],)"
        R"("contexts":[{"v":"BRCA1"},{"v":"c.1A>G"},{"v":"BRCA2"}],)"
        R"("scoped":[{"v":"x1"},{"v":"x2"},{"v":"x3"}],)"
        R"("filtered":[2,1],"pure_filter":[1,1]})");
  // A call that records an issue is not reused: the second call records it again.
  REQUIRE(r.issues.size() == 2);
  CHECK(r.issues[0].to_string() == r.issues[1].to_string());
  CHECK(r.issues[0].source == "OBX[3]-5");
}

TEST_CASE("segment filters that read only their segment get a cache slot", "[mapping][purity]") {
  Loaded f(std::string(kTemplateHead) + R"J(
      "$let": {"k": "2a"},
      "a": "{{ count(OBX[OBX-3.1 == '48018-6']) }}",
      "b": "{{ count(OBX[OBX-4 == $k]) }}",
      "c": "{{ count(OBX[OBR-2 == 'ORD1']) }}",
      "d": "{{ count(OBX[OBX-5 == $feed.gene]) }}",
      "e": [{"$each": "subid_groups()", "$do": "{{ count(OBX[OBX-3.1 == '48018-6']) }}"}],
      "f": "{{ count(OBX[OBX-3.1 == '48004-6']) }}"
    })J");
  // a and d (e is written as a, and shares its slot), f; b reads a variable, c another segment.
  CHECK(f.set->pure_filters == 3);
  const MappingResult r = f.map();
  CHECK(r.output.dump() == R"({"a":2,"b":2,"c":3,"d":0,"e":[1,1],"f":1})");
}

TEST_CASE("groups asked for again in another context are that context's groups",
          "[mapping][purity]") {
  Loaded f(std::string(kTemplateHead) + R"J(
      "all": "{{ count(groups('OBSERVATION')) }}",
      "orders": [{"$each": "groups('ORDER_OBSERVATION')", "$as": "o", "$do": {
        "n": "{{ count(groups('OBSERVATION')) }}",
        "keys": [{"$each": "subid_groups()", "$as": "g", "$do": "{{ $g.key }}"}],
        "rows": [{"$each": "subid_groups()", "$as": "g", "$do": [{"$each": "groups('OBSERVATION')",
                  "$do": "{{ OBX-5 }}"}]}]}}],
      "in_group": [{"$each": "subid_groups()", "$as": "g", "$do": "{{ count(subid_groups()) }}"}],
      "again": "{{ count(groups('OBSERVATION')) }}"
    })J");
  f.message = *hl7v2::Message::parse(kPurityMessage +
                                     "OBR|2|ORD2|LAB2|81247-9^Panel^LN\r"
                                     "OBX|1|ST|48018-6^Gene^LN|3a|TP53||||||F\r");
  const MappingResult r = f.map();
  INFO(r.output.dump(true));
  CHECK(r.output.dump() == R"({"all":4,"orders":[)"
                           R"({"n":3,"keys":["2a","2b"],"rows":["BRCA1","c.1A>G","BRCA2"]},)"
                           R"({"n":1,"keys":["3a"],"rows":["TP53"]}],)"
                           R"("in_group":[1,1,1],"again":4})");
}

TEST_CASE("an $include member that names no parameter is an error each time it is rendered",
          "[mapping][purity]") {
  MemoryFiles files;
  files.add("partials/p.json", R"J({"$partial": "p", "$params": ["a", "b"], "v": "{{ $a }}"})J");
  Loaded f(std::string(kTemplateHead) + R"J(
      "rows": [{"$each": "['1', '2']", "$do": {"$include": "p", "x": "0", "a": "{{ $it }}", "y": "0"}}]
    })J",
           files);
  const MappingResult r = f.map();
  CHECK(r.output.dump() == R"({"rows":[{"v":"1"},{"v":"2"}]})");
  REQUIRE(r.issues.size() == 4);
  CHECK(r.issues[0].message == "partial 'p' has no parameter 'x'");
  CHECK(r.issues[1].message == "partial 'p' has no parameter 'y'");
  CHECK(r.issues[2].message == "partial 'p' has no parameter 'x'");
  CHECK(r.issues[0].template_pos == "t.json:2:70");  // the member's value
}
