// Checks on the FHIR transaction Bundle a template produced, run before anything is sent.
//
// Not a profile validator: it checks the FHIR R4 and Genomics Reporting IG STU3 (3.0.0) rules
// that an EHR would reject, or that would make a genomic result wrong or unreadable, when a
// template or its input goes astray:
//   - the Bundle is a transaction whose entries have a unique urn:uuid fullUrl, a resource and a
//     request (method, and a url naming the resource's type), and every urn:uuid reference names
//     one of those entries;
//   - no empty elements anywhere (null, "", [], {}): FHIR forbids them;
//   - Observation and DiagnosticReport have status and code (FHIR core); meta.profile names a
//     Genomics Reporting STU3 profile made for the resource's type;
//   - every Observation has the laboratory category; Genomics Reporting Observations also the
//     genetics one (v2-0074#GE), or biomarker-category for MolecularBiomarker;
//   - the fixed code of each profile, the Variant value (LL1971-2), implications with derivedFrom
//     and no value[x], at most one value[x] per Observation, components with a code and exactly
//     one value[x] of the type their slice requires;
//   - a GenomicReport has code 51969-4 and the genetics category, and its results are Observations.
//
// A problem found here becomes an error-severity mapping issue, so the message is held
// (mapping-failed, replayable once the template is fixed) instead of being sent.
//
//   for (const BundleProblem& p : check_bundle(result.output)) { ... p.where, p.message ... }
//
// Pure and total: no I/O, no exceptions; any JSON value may be passed.
#pragma once

#include <string>
#include <vector>

#include "mapping/json.h"

namespace adapter::mapping {

struct BundleProblem {
  std::string where;    // "Bundle.entry[3].resource(Observation).category"
  std::string message;  // what is wrong and what is expected, for an integration engineer

  std::string to_string() const { return where + ": " + message; }
};

// Every problem found, entry by entry; empty when the Bundle may be sent.
std::vector<BundleProblem> check_bundle(const Json& bundle);

}  // namespace adapter::mapping
