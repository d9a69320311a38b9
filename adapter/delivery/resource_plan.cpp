#include "delivery/resource_plan.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <set>

namespace adapter::delivery {
namespace {

using rapidjson::Value;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::string_view kUrnUuid = "urn:uuid:";

// Lookups through HasMember: comparing RapidJSON 1.1 member iterators is ambiguous in C++20.
const Value* member(const Value& object, const char* name) {
  return object.IsObject() && object.HasMember(name) ? &object[name] : nullptr;
}

std::string_view text(const Value* v) {
  if (v == nullptr || !v->IsString()) return {};
  return {v->GetString(), v->GetStringLength()};
}

void string(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// Every "reference": "urn:uuid:..." below `v`.
void collect_references(const Value& v, std::set<std::string>& out) {
  if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      const std::string_view key(m.name.GetString(), m.name.GetStringLength());
      if (key == "reference" && m.value.IsString()) {
        const std::string_view ref(m.value.GetString(), m.value.GetStringLength());
        if (ref.substr(0, kUrnUuid.size()) == kUrnUuid) out.emplace(ref);
      } else {
        collect_references(m.value, out);
      }
    }
  } else if (v.IsArray()) {
    for (const Value& item : v.GetArray()) collect_references(item, out);
  }
}

// A Reference element ({"reference": "urn:uuid:..."}) to one of `omit`.
bool omitted(const Value& v, const std::set<std::string>& omit) {
  if (omit.empty() || !v.IsObject()) return false;
  const std::string_view ref = text(member(v, "reference"));
  return !ref.empty() && omit.count(std::string(ref)) > 0;
}

// Nothing would be left of `v` once the omitted references are left out: an omitted Reference,
// or an object or array made only of such (FHIR has no empty objects or arrays).
bool prunable(const Value& v, const std::set<std::string>& omit) {
  if (omit.empty()) return false;
  if (omitted(v, omit)) return true;
  if (v.IsObject()) {
    if (v.MemberCount() == 0) return false;
    for (const auto& m : v.GetObject()) {
      if (!prunable(m.value, omit)) return false;
    }
    return true;
  }
  if (v.IsArray()) {
    if (v.Empty()) return false;
    for (const Value& item : v.GetArray()) {
      if (!prunable(item, omit)) return false;
    }
    return true;
  }
  return false;
}

struct Rewrite {
  const std::map<std::string, std::string>& assigned;
  const std::set<std::string>& in_bundle;
  const std::set<std::string>& omit;
};

// Writes `v` with urn:uuid references replaced and the omitted ones left out; a reference to an
// entry without an id yet is an error.
Status write_resolved(const Value& v, const Rewrite& r, Writer& w) {
  if (v.IsObject()) {
    w.StartObject();
    for (const auto& m : v.GetObject()) {
      if (prunable(m.value, r.omit)) continue;
      const std::string_view key(m.name.GetString(), m.name.GetStringLength());
      string(w, key);
      if (key == "reference" && m.value.IsString()) {
        const std::string ref(m.value.GetString(), m.value.GetStringLength());
        const auto it = r.assigned.find(ref);
        if (it != r.assigned.end()) {
          string(w, it->second);
          continue;
        }
        if (r.in_bundle.count(ref) > 0) {
          return make_error(Errc::internal, "reference " + ref + " is to an entry not sent yet");
        }
      }
      if (Status s = write_resolved(m.value, r, w); !s) return s;
    }
    w.EndObject();
    return {};
  }
  if (v.IsArray()) {
    w.StartArray();
    for (const Value& item : v.GetArray()) {
      if (prunable(item, r.omit)) continue;
      if (Status s = write_resolved(item, r, w); !s) return s;
    }
    w.EndArray();
    return {};
  }
  v.Accept(w);
  return {};
}

// Whether entry `start` can reach itself through references to entries not sent yet.
bool on_unsent_cycle(std::size_t start, const std::vector<std::set<std::size_t>>& waits_for,
                     const std::vector<bool>& sent) {
  std::vector<bool> seen(waits_for.size(), false);
  std::vector<std::size_t> stack(waits_for[start].begin(), waits_for[start].end());
  while (!stack.empty()) {
    const std::size_t at = stack.back();
    stack.pop_back();
    if (sent[at] || seen[at]) continue;
    if (at == start) return true;
    seen[at] = true;
    stack.insert(stack.end(), waits_for[at].begin(), waits_for[at].end());
  }
  return false;
}

std::string compact(const Value& v) {
  rapidjson::StringBuffer out;
  Writer w(out);
  v.Accept(w);
  return {out.GetString(), out.GetSize()};
}

}  // namespace

Result<ResourcePlan> ResourcePlan::from_bundle(std::string_view bundle_json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseStopWhenDoneFlag>(bundle_json.data(), bundle_json.size());
  if (doc.HasParseError() || !doc.IsObject() || text(member(doc, "resourceType")) != "Bundle") {
    return make_error(Errc::internal, "not a FHIR Bundle");
  }
  const Value* entries = member(doc, "entry");
  const std::size_t n = entries != nullptr && entries->IsArray() ? entries->Size() : 0;

  ResourcePlan plan;
  std::vector<PlannedEntry> planned(n);
  std::vector<std::set<std::string>> needs(n);  // urn:uuid references of each entry
  std::map<std::string, std::size_t> by_url;
  plan.resources_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const Value& entry = (*entries)[static_cast<rapidjson::SizeType>(i)];
    const Value* resource = member(entry, "resource");
    const Value* request = member(entry, "request");
    const std::string where = "entry " + std::to_string(i + 1);
    if (resource == nullptr || !resource->IsObject() ||
        text(member(*resource, "resourceType")).empty()) {
      return make_error(Errc::internal, where + " has no resource");
    }
    const std::string_view method = request != nullptr ? text(member(*request, "method")) : "";
    const std::string_view url = request != nullptr ? text(member(*request, "url")) : "";
    const std::string_view type = text(member(*resource, "resourceType"));
    const bool conditional_update = method == "PUT" && url.size() > type.size() + 1 &&
                                    url.starts_with(type) && url[type.size()] == '?';
    if (method != "POST" && !conditional_update) {
      return make_error(Errc::internal, where +
                                            " is neither a POST nor a conditional update (PUT "
                                            "Type?search): only those can be sent one by one");
    }
    PlannedEntry& p = planned[i];
    p.index = i;
    p.full_url = std::string(text(member(entry, "fullUrl")));
    p.resource_type = std::string(type);
    if (conditional_update) {
      p.conditional_update = std::string(url);
    } else {
      p.if_none_exist = std::string(text(member(*request, "ifNoneExist")));
    }
    if (!p.full_url.empty() && !by_url.emplace(p.full_url, i).second) {
      return make_error(Errc::internal, where + " repeats the fullUrl " + p.full_url);
    }
    collect_references(*resource, needs[i]);
    // A reference to itself can only be written once it has an id: put back by the update.
    if (!p.full_url.empty() && needs[i].count(p.full_url) > 0) p.deferred.insert(p.full_url);
    plan.resources_[i] = compact(*resource);
  }

  // Kahn's algorithm, always taking the earliest ready entry: Bundle order wherever the
  // references allow it.
  std::vector<std::set<std::size_t>> waits_for(n);
  for (std::size_t i = 0; i < n; ++i) {
    for (const std::string& ref : needs[i]) {
      const auto it = by_url.find(ref);
      if (it != by_url.end() && it->second != i) waits_for[i].insert(it->second);
    }
  }
  std::vector<bool> sent(n, false);
  for (std::size_t done = 0; done < n; ++done) {
    std::size_t next = n;
    for (std::size_t i = 0; i < n && next == n; ++i) {
      if (sent[i]) continue;
      bool ready = true;
      for (std::size_t dep : waits_for[i]) ready = ready && sent[dep];
      if (ready) next = i;
    }
    if (next == n) {
      // Only entries on cycles, or waiting for one, remain: break a cycle at the entry on one
      // with the fewest unsent references (the first such in Bundle order), sending it without
      // them for now and updating it at the end. An entry merely waiting for a cycle is never
      // cut: it goes once the cycle is.
      std::size_t fewest_count = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (sent[i] || !on_unsent_cycle(i, waits_for, sent)) continue;
        std::size_t count = 0;
        for (std::size_t dep : waits_for[i]) count += sent[dep] ? 0u : 1u;
        if (next == n || count < fewest_count) {
          next = i;
          fewest_count = count;
        }
      }
      for (std::size_t dep : waits_for[next]) {
        if (!sent[dep]) planned[next].deferred.insert(planned[dep].full_url);
      }
    }
    sent[next] = true;
    if (!planned[next].deferred.empty() &&
        (plan.updates_.empty() || plan.updates_.back() != plan.order_.size())) {
      plan.updates_.push_back(plan.order_.size());
    }
    plan.order_.push_back(planned[next]);
  }
  return plan;
}

Result<std::string> ResourcePlan::resolve(
    const PlannedEntry& entry, const std::map<std::string, std::string>& assigned) const {
  return write(entry, assigned, entry.deferred, {});
}

Result<std::string> ResourcePlan::resolve_update(const PlannedEntry& entry,
                                                 const std::map<std::string, std::string>& assigned,
                                                 std::string_view id) const {
  return write(entry, assigned, {}, id);
}

Result<std::string> ResourcePlan::write(const PlannedEntry& entry,
                                        const std::map<std::string, std::string>& assigned,
                                        const std::set<std::string>& omit,
                                        std::string_view id) const {
  rapidjson::Document doc;
  const std::string& resource = resources_.at(entry.index);
  doc.Parse(resource.data(), resource.size());
  std::set<std::string> in_bundle;
  for (const PlannedEntry& e : order_) {
    if (!e.full_url.empty()) in_bundle.insert(e.full_url);
  }
  rapidjson::StringBuffer out;
  Writer w(out);
  Status written;
  const Rewrite rewrite{assigned, in_bundle, omit};
  if (id.empty()) {
    written = write_resolved(doc, rewrite, w);
  } else {
    // The update names the resource: "id" right after "resourceType", any other id dropped.
    w.StartObject();
    // Iterated as const: RapidJSON 1.1's mutable member iterators compare ambiguously in C++20.
    const Value& resource_value = doc;
    for (const auto& m : resource_value.GetObject()) {
      const std::string_view key(m.name.GetString(), m.name.GetStringLength());
      if (key == "id") continue;
      string(w, key);
      if (key == "resourceType") {
        m.value.Accept(w);
        w.Key("id");
        string(w, id);
        continue;
      }
      written = write_resolved(m.value, rewrite, w);
      if (!written) break;
    }
    if (written) w.EndObject();
  }
  if (!written) {
    return make_error(written.error().code, "entry " + std::to_string(entry.index + 1) + " (" +
                                                entry.resource_type +
                                                "): " + written.error().message);
  }
  return std::string(out.GetString(), out.GetSize());
}

std::string ResourcePlan::summary(const std::vector<EntryAnswer>& by_index) {
  rapidjson::StringBuffer out;
  Writer w(out);
  w.StartArray();
  for (const EntryAnswer& a : by_index) {
    w.StartObject();
    if (!a.status.empty()) {
      w.Key("status");
      string(w, a.status);
    }
    if (!a.location.empty()) {
      w.Key("location");
      string(w, a.location);
    }
    w.EndObject();
  }
  w.EndArray();
  return {out.GetString(), out.GetSize()};
}

std::string ResourcePlan::assigned_id(std::string_view location, std::string_view body,
                                      std::string_view resource_type) {
  // ".../<Type>/<id>[/_history/<v>]": the segment after the last "<Type>/".
  const std::string marker = std::string(resource_type) + "/";
  std::size_t at = std::string_view::npos;
  for (std::size_t pos = location.find(marker); pos != std::string_view::npos;
       pos = location.find(marker, pos + 1)) {
    if (pos == 0 || location[pos - 1] == '/') at = pos;
  }
  if (at != std::string_view::npos) {
    std::string_view id = location.substr(at + marker.size());
    id = id.substr(0, id.find('/'));
    if (!id.empty()) return marker + std::string(id);
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseStopWhenDoneFlag>(body.data(), body.size());
  if (!doc.HasParseError() && text(member(doc, "resourceType")) == resource_type) {
    const std::string_view id = text(member(doc, "id"));
    if (!id.empty()) return marker + std::string(id);
  }
  return {};
}

}  // namespace adapter::delivery
