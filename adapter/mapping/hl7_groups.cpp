// HL7 v2 structure for templates: ORU^R01 groups and OBX-4 sub-ID groups, as Hl7Group values.
#include <algorithm>

#include "mapping/evaluator.h"

namespace adapter::mapping {
namespace {

using hl7v2::SegmentRef;

void add(std::vector<std::uint32_t>& out, const std::vector<SegmentRef>& s) {
  out.insert(out.end(), s.begin(), s.end());
}
void add(std::vector<std::uint32_t>& out, const std::optional<SegmentRef>& s) {
  if (s) out.push_back(*s);
}

void add_observation(std::vector<std::uint32_t>& out, const hl7v2::OruObservation& o) {
  out.push_back(o.obx);
  add(out, o.participants);
  add(out, o.notes);
  add(out, o.extras);
}

std::vector<std::uint32_t> segments_of(const hl7v2::OruSpecimen& sp) {
  std::vector<std::uint32_t> out{sp.spm};
  for (const auto& o : sp.observations) add_observation(out, o);
  add(out, sp.extras);
  return out;
}

std::vector<std::uint32_t> segments_of(const hl7v2::OruOrder& o) {
  std::vector<std::uint32_t> out;
  add(out, o.orc);
  add(out, o.obr);
  add(out, o.notes);
  add(out, o.participants);
  add(out, o.timing);
  add(out, o.ctd);
  for (const auto& obs : o.observations) add_observation(out, obs);
  add(out, o.ft1);
  add(out, o.cti);
  for (const auto& sp : o.specimens) {
    auto s = segments_of(sp);
    out.insert(out.end(), s.begin(), s.end());
  }
  add(out, o.extras);
  return out;
}

std::vector<std::uint32_t> segments_of(const hl7v2::OruPatient& p) {
  std::vector<std::uint32_t> out{p.pid};
  add(out, p.pd1);
  add(out, p.participants);
  add(out, p.notes);
  add(out, p.nk1);
  add(out, p.pv1);
  add(out, p.pv2);
  add(out, p.extras);
  return out;
}

std::vector<std::uint32_t> segments_of(const hl7v2::OruPatientResult& r) {
  std::vector<std::uint32_t> out;
  if (r.patient) {
    auto p = segments_of(*r.patient);
    out.insert(out.end(), p.begin(), p.end());
  }
  for (const auto& o : r.orders) {
    auto s = segments_of(o);
    out.insert(out.end(), s.begin(), s.end());
  }
  add(out, r.extras);
  return out;
}

}  // namespace

// OBX-4 sub-ID to the variant/region group it belongs to:
//   "2a" -> "2a", "1a.a" (a range inside region 1a) -> "1a", "1.a" -> "1a", "1" -> "1", "" -> "".
std::string subid_group_key(std::string_view sub_id) {
  const std::size_t dot = sub_id.find('.');
  const std::string_view first = sub_id.substr(0, dot);
  const bool digits_only = !first.empty() && std::all_of(first.begin(), first.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
  if (digits_only && dot != std::string_view::npos) {
    std::string_view second = sub_id.substr(dot + 1);
    second = second.substr(0, second.find('.'));
    return std::string(first) + std::string(second);
  }
  return std::string(first);
}

const hl7v2::OruR01& Evaluator::oru() {
  if (!oru_) oru_ = hl7v2::view_oru_r01(*message_);
  return *oru_;
}

// OBR-nested grouping (the Clinical Genomics variation IG, release 2): a child order names its
// parent in OBR-29 (EIP: placer ^ filler). Returns, for each order of a patient result, the index
// of the earlier order it is a child of, or -1.
std::vector<int> Evaluator::parent_orders(const std::vector<hl7v2::OruOrder>& orders) {
  std::vector<int> parent(orders.size(), -1);
  auto first_component = [&](std::uint32_t seg, std::uint32_t field, std::uint32_t comp,
                             std::uint32_t sub) {
    return hl7_text(Hl7Ref{message_, seg, field, 1, comp, sub});
  };
  for (std::size_t i = 0; i < orders.size(); ++i) {
    if (!orders[i].obr) continue;
    const std::uint32_t obr = *orders[i].obr;
    const std::string placer = first_component(obr, 29, 1, 1);
    const std::string filler = first_component(obr, 29, 2, 1);
    if (placer.empty() && filler.empty()) continue;
    for (std::size_t p = 0; p < i; ++p) {
      if (parent[p] >= 0 || !orders[p].obr) continue;  // one level of nesting
      const std::uint32_t pobr = *orders[p].obr;
      if ((!placer.empty() && placer == first_component(pobr, 2, 1, 0)) ||
          (!filler.empty() && filler == first_component(pobr, 3, 1, 0))) {
        parent[i] = static_cast<int>(p);
        break;
      }
    }
  }
  return parent;
}

std::vector<Value> Evaluator::groups(std::string_view kind) {
  std::vector<Value> out;
  if (message_ == nullptr) return out;
  const hl7v2::OruR01& v = oru();
  std::vector<std::pair<std::vector<std::uint32_t>, std::string>> found;
  for (const auto& r : v.patient_results) {
    if (kind == "PATIENT_RESULT") found.emplace_back(segments_of(r), "");
    if (kind == "PATIENT" && r.patient) found.emplace_back(segments_of(*r.patient), "");
    if (kind == "ORDER_OBSERVATION") {
      // A child order's segments join its parent's group: its results belong to the parent's
      // report, and subid_groups() keeps them apart by OBR instance.
      const std::vector<int> parent = parent_orders(r.orders);
      std::vector<std::vector<std::uint32_t>> merged(r.orders.size());
      for (std::size_t i = 0; i < r.orders.size(); ++i) {
        const std::size_t into = parent[i] >= 0 ? static_cast<std::size_t>(parent[i]) : i;
        auto s = segments_of(r.orders[i]);
        merged[into].insert(merged[into].end(), s.begin(), s.end());
      }
      for (std::size_t i = 0; i < r.orders.size(); ++i) {
        if (parent[i] < 0) found.emplace_back(std::move(merged[i]), "");
      }
    }
    for (const auto& o : r.orders) {
      if (kind == "OBSERVATION") {
        // Observations of the order, then those about its specimens (OBX after SPM).
        for (const auto& obs : o.observations) {
          std::vector<std::uint32_t> s;
          add_observation(s, obs);
          found.emplace_back(std::move(s), "");
        }
        for (const auto& sp : o.specimens) {
          for (const auto& obs : sp.observations) {
            std::vector<std::uint32_t> s;
            add_observation(s, obs);
            found.emplace_back(std::move(s), "");
          }
        }
      }
      if (kind == "SPECIMEN") {
        for (const auto& sp : o.specimens) found.emplace_back(segments_of(sp), "");
      }
    }
  }
  // Only groups inside the current context (a group's first segment is in the innermost scope).
  const Scope& here = scopes_.back();
  auto inside = [&](std::uint32_t seg) {
    if (here.segment >= 0) return static_cast<std::int64_t>(seg) == here.segment;
    return std::binary_search(here.group->segments.begin(), here.group->segments.end(), seg);
  };
  std::uint32_t index = 0;
  for (auto& [segs, key] : found) {
    std::sort(segs.begin(), segs.end());
    if (segs.empty() || !inside(segs.front())) continue;
    auto g = std::make_shared<Hl7Group>();
    g->message = message_;
    g->kind = std::string(kind);
    g->key = key;
    g->index = ++index;
    g->segments = std::move(segs);
    out.emplace_back(Hl7GroupPtr(std::move(g)));
  }
  return out;
}

// The same question in the same place gets the same group objects: templates ask for the
// groups of an order several times, and a partial call with a group argument is then found in
// its cache by address.
Value Evaluator::group_list(std::string_view kind) {
  const Scope& here = scopes_.back();  // groups() looks only inside the innermost context
  for (const CachedGroups& c : groups_cache_) {
    if (c.kind == kind && c.subid == false && c.where.group == here.group &&
        c.where.segment == here.segment && c.where.xml == here.xml) {
      return c.list;
    }
  }
  CachedGroups c;
  c.kind = std::string(kind);
  c.where = here;
  c.list = Value::list(groups(kind));
  groups_cache_.push_back(c);
  return c.list;
}

Value Evaluator::subid_group_list() {
  // subid_groups() reads the OBX and OBR of the innermost scopes that have any.
  const char obx[3] = {'O', 'B', 'X'};
  const char obr[3] = {'O', 'B', 'R'};
  const Scope* rows = scope_having(obx);
  const Scope* orders = scope_having(obr);
  auto same = [](const Scope* s, const Scope& cached) {
    return s == nullptr ? cached.segment == -2
                        : s->group == cached.group && s->segment == cached.segment;
  };
  for (const CachedGroups& c : groups_cache_) {
    if (c.subid && same(rows, c.where) && same(orders, c.orders)) return c.list;
  }
  CachedGroups c;
  c.subid = true;
  if (rows != nullptr)
    c.where = *rows;
  else
    c.where.segment = -2;  // -2: no such scope
  if (orders != nullptr)
    c.orders = *orders;
  else
    c.orders.segment = -2;
  c.list = Value::list(subid_groups());
  groups_cache_.push_back(c);
  return c.list;
}

std::vector<Value> Evaluator::subid_groups() {
  std::vector<Value> out;
  if (message_ == nullptr) return out;
  const char obx[3] = {'O', 'B', 'X'};
  const char obr[3] = {'O', 'B', 'R'};
  // The group key is (OBR instance, sub-ID): OBX under the context's first OBR keep their
  // sub-ID group ("2a"); under a nested child OBR the key says which ("obr2", "obr2-2a").
  const std::vector<std::uint32_t> orders = candidates(obr, nullptr);
  std::vector<std::shared_ptr<Hl7Group>> groups;
  for (std::uint32_t seg : candidates(obx, nullptr)) {
    const Value sub_id(Hl7Ref{message_, seg, 4, 0, 0, 0});
    std::string key = subid_group_key(text(sub_id).value_or(""));
    std::size_t instance = 0;
    for (std::size_t i = 0; i < orders.size() && orders[i] < seg; ++i) instance = i + 1;
    if (instance > 1) {
      std::string nested = "obr" + std::to_string(instance);
      if (!key.empty()) nested.append("-").append(key);
      key = std::move(nested);
    }
    auto it =
        std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g->key == key; });
    if (it == groups.end()) {
      auto g = std::make_shared<Hl7Group>();
      g->message = message_;
      g->kind = "subid";
      g->key = key;
      g->index = static_cast<std::uint32_t>(groups.size() + 1);
      groups.push_back(g);
      it = groups.end() - 1;
    }
    (*it)->segments.push_back(seg);
  }
  for (auto& g : groups) out.emplace_back(Hl7GroupPtr(std::move(g)));
  return out;
}

std::vector<Value> Evaluator::segments(std::string_view id) {
  std::vector<Value> out;
  if (id.size() != 3) return out;
  for (std::uint32_t seg : candidates(id.data(), nullptr))
    out.emplace_back(Hl7Ref{message_, seg, 0, 0, 0, 0});
  return out;
}

// The notes that belong to a group itself, not to what it contains: an order's NTE follow its OBR,
// an observation's follow its OBX, a patient's follow PID.
std::vector<Value> Evaluator::notes() {
  std::vector<Value> out;
  if (message_ == nullptr) return out;
  auto emit = [&](const std::vector<SegmentRef>& notes) {
    for (SegmentRef n : notes) out.emplace_back(Hl7Ref{message_, n, 0, 0, 0, 0});
  };
  for (auto s = scopes_.rbegin(); s != scopes_.rend(); ++s) {
    if (!s->group || s->group->segments.empty()) continue;
    const std::string& kind = s->group->kind;
    const SegmentRef head = s->group->segments.front();
    if (kind != "OBSERVATION" && kind != "ORDER_OBSERVATION" && kind != "PATIENT") continue;
    for (const auto& r : oru().patient_results) {
      if (kind == "PATIENT" && r.patient && r.patient->pid == head) emit(r.patient->notes);
      for (const auto& o : r.orders) {
        const SegmentRef first = o.orc ? *o.orc : o.obr.value_or(0);
        if (kind == "ORDER_OBSERVATION" && first == head) emit(o.notes);
        if (kind != "OBSERVATION") continue;
        for (const auto& obs : o.observations) {
          if (obs.obx == head) emit(obs.notes);
        }
        for (const auto& sp : o.specimens) {
          for (const auto& obs : sp.observations) {
            if (obs.obx == head) emit(obs.notes);
          }
        }
      }
    }
    return out;
  }
  return out;
}

}  // namespace adapter::mapping
