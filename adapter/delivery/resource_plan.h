// Delivery to servers without transaction support: the Bundle's entries sent one at a time, each
// as a conditional create, in an order where every resource comes after the resources it
// references, with its `urn:uuid:` references rewritten to the ids the server assigned.
//
//   Result<ResourcePlan> plan = ResourcePlan::from_bundle(bundle_json);
//   for (const PlannedEntry& e : plan->entries()) {
//     Result<std::string> body = plan->resolve(e, assigned);     // references rewritten
//     // POST [base]/<e.resource_type>, If-None-Exist: e.if_none_exist
//     assigned[e.full_url] = "Patient/123";                       // from the answer's Location
//   }
//
// References form cycles in ordinary Bundles (a ServiceRequest names its Specimen, which names
// the ServiceRequest). A cycle is broken at the entry with the fewest references into it: those
// references are left out of its create and put back by a PUT once every entry has its id
// (`updates()`).
//
// Sending the whole sequence again after a failure half-way is safe: every entry is a
// conditional create on its business identifier, so the ones that arrived are found, not
// created twice. Unlike a transaction, a failure leaves the first entries on the server; the
// retry completes them.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace adapter::delivery {

struct PlannedEntry {
  std::size_t index = 0;      // position in the Bundle (0-based)
  std::string full_url;       // "urn:uuid:..." (may be empty: nothing refers to it)
  std::string resource_type;  // "Observation"
  std::string if_none_exist;  // "identifier=system|value" (may be empty: a plain create)
  // "Observation?identifier=system|value": a conditional update (PUT to that search: the server
  // updates what it finds, or creates) instead of a create. Empty for a create.
  std::string conditional_update;
  // References that close a cycle (ServiceRequest.specimen <-> Specimen.request): left out of
  // the create, and put back by an update (PUT) once every entry has its id.
  std::set<std::string> deferred;
};

// One entry's answer, for the summary the store keeps.
struct EntryAnswer {
  std::string status;    // "201 Created"
  std::string location;  // "Observation/12/_history/1"
};

class ResourcePlan {
 public:
  // Errors: not a Bundle, an entry that is neither a POST of a resource nor a conditional update
  // (PUT to "Type?search"), two entries with the same fullUrl.
  static Result<ResourcePlan> from_bundle(std::string_view bundle_json);

  // In send order.
  const std::vector<PlannedEntry>& entries() const { return order_; }
  std::size_t size() const { return order_.size(); }
  // Positions in entries() of those with deferred references, to update after the creates.
  const std::vector<std::size_t>& updates() const { return updates_; }

  // The entry's resource as JSON for its create: every "reference": "urn:uuid:..." (at any
  // depth) replaced by what `assigned` maps it to ("Patient/123"), and the Reference elements of
  // its deferred references left out. A reference to an entry not sent yet is an error (the
  // order prevents it; a reference to something outside the Bundle is left as it is).
  Result<std::string> resolve(const PlannedEntry& entry,
                              const std::map<std::string, std::string>& assigned) const;
  // The same, whole (deferred references included), with "id": `id`: the body of its update.
  Result<std::string> resolve_update(const PlannedEntry& entry,
                                     const std::map<std::string, std::string>& assigned,
                                     std::string_view id) const;

  // [{"status","location"}, ...] in Bundle order, the same shape as a transaction's summary
  // (outcome.h), from the answers indexed by PlannedEntry::index.
  static std::string summary(const std::vector<EntryAnswer>& by_index);

  // "Patient/123" from a Location ("http://x/fhir/Patient/123/_history/1" or "Patient/123"), or
  // from the answer's body ({"resourceType":"Patient","id":"123"}); empty when neither says.
  static std::string assigned_id(std::string_view location, std::string_view body,
                                 std::string_view resource_type);

 private:
  Result<std::string> write(const PlannedEntry& entry,
                            const std::map<std::string, std::string>& assigned,
                            const std::set<std::string>& omit, std::string_view id) const;

  std::vector<PlannedEntry> order_;
  std::vector<std::size_t> updates_;
  std::vector<std::string> resources_;  // compact JSON by Bundle index
};

}  // namespace adapter::delivery
