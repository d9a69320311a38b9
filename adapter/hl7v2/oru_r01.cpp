#include "hl7v2/oru_r01.h"

#include <algorithm>

namespace adapter::hl7v2 {
namespace {

bool is_z_segment(std::string_view id) {
  return !id.empty() && id[0] == 'Z';
}

// Where the next segment may attach; each state is the innermost open group.
enum class Scope {
  header,
  patient,
  visit,
  order,
  observation,
  specimen,
  specimen_observation,
  end
};

class Builder {
 public:
  explicit Builder(const Message& m) : m_(m) {}

  OruR01 build() {
    for (std::size_t i = 1; i < m_.segment_count(); ++i) place(static_cast<SegmentRef>(i));
    return std::move(view_);
  }

 private:
  OruPatientResult& result() { return view_.patient_results.back(); }
  OruOrder& order() { return result().orders.back(); }

  void unplaced(SegmentRef s, std::string why) { view_.unplaced.push_back({s, std::move(why)}); }

  void new_result() { view_.patient_results.emplace_back(); }

  void new_order() {
    if (view_.patient_results.empty()) new_result();
    result().orders.emplace_back();
  }

  std::vector<SegmentRef>& innermost_extras() {
    switch (scope_) {
      case Scope::header:
      case Scope::end:
        return view_.extras;
      case Scope::patient:
      case Scope::visit:
        return result().patient->extras;
      case Scope::order:
        return order().extras;
      case Scope::observation:
        return order().observations.back().extras;
      case Scope::specimen:
        return order().specimens.back().extras;
      case Scope::specimen_observation:
        return order().specimens.back().observations.back().extras;
    }
    return view_.extras;
  }

  bool in_order() const {
    return scope_ == Scope::order || scope_ == Scope::observation || scope_ == Scope::specimen ||
           scope_ == Scope::specimen_observation;
  }

  void place(SegmentRef s) {
    const std::string_view id = m_.segment(s).id();
    if (scope_ == Scope::end) {
      if (is_z_segment(id)) return view_.extras.push_back(s);
      return unplaced(s, "segment after DSC, which ends the message");
    }
    if (is_z_segment(id)) return innermost_extras().push_back(s);

    if (id == "SFT") {
      if (scope_ == Scope::header) return view_.software.push_back(s);
      return unplaced(s, "SFT belongs right after MSH");
    }
    if (id == "PID") {
      new_result();
      result().patient.emplace().pid = s;
      scope_ = Scope::patient;
      return;
    }
    if (id == "PD1" || id == "NK1") {
      if (scope_ != Scope::patient)
        return unplaced(s, std::string(id) + " must follow PID (before PV1)");
      auto& p = *result().patient;
      if (id == "NK1") return p.nk1.push_back(s);
      if (p.pd1 || !p.participants.empty() || !p.notes.empty() || !p.nk1.empty()) {
        return unplaced(s, "PD1 must directly follow PID");
      }
      p.pd1 = s;
      return;
    }
    if (id == "PV1") {
      if (scope_ != Scope::patient || result().patient->pv1) {
        return unplaced(s, "PV1 must follow the patient's PID");
      }
      result().patient->pv1 = s;
      scope_ = Scope::visit;
      return;
    }
    if (id == "PV2") {
      if (scope_ != Scope::visit || result().patient->pv2)
        return unplaced(s, "PV2 must follow PV1");
      result().patient->pv2 = s;
      return;
    }
    if (id == "PRT") {
      switch (scope_) {
        case Scope::patient:
          if (result().patient->notes.empty() && result().patient->nk1.empty()) {
            return result().patient->participants.push_back(s);
          }
          return unplaced(s, "PRT of the patient must come before NTE and NK1");
        case Scope::visit:
          return result().patient->participants.push_back(s);
        case Scope::order:
          // After ORC (v2.7+ ORC [{PRT}]) or after OBR and its NTE, before TQ1/CTD.
          if (order().timing.empty() && !order().ctd) return order().participants.push_back(s);
          return unplaced(s, "PRT of an order must come before TQ1/CTD");
        case Scope::observation:
          if (order().observations.back().notes.empty()) {
            return order().observations.back().participants.push_back(s);
          }
          return unplaced(s, "PRT of an observation must come before its NTE");
        case Scope::specimen_observation:
          return order().specimens.back().observations.back().participants.push_back(s);
        default:
          return unplaced(s, "PRT has no patient, order or observation to attach to");
      }
    }
    if (id == "NTE") {
      switch (scope_) {
        case Scope::patient:
          return result().patient->notes.push_back(s);
        case Scope::order:
          if (order().observations.empty() && order().timing.empty() && !order().ctd) {
            return order().notes.push_back(s);
          }
          return unplaced(s, "NTE after TQ1/CTD but before any OBX");
        case Scope::observation:
          return order().observations.back().notes.push_back(s);
        case Scope::specimen_observation:
          return order().specimens.back().observations.back().notes.push_back(s);
        default:
          return unplaced(s, "NTE has no patient, order or observation to attach to");
      }
    }
    if (id == "ORC") {
      if (scope_ == Scope::header || scope_ == Scope::patient || scope_ == Scope::visit ||
          in_order()) {
        new_order();
        order().orc = s;
        scope_ = Scope::order;
        return;
      }
      return unplaced(s, "ORC out of order");
    }
    if (id == "OBR") {
      // An OBR completes the ORC right before it; otherwise it opens a new order.
      const bool pairs_with_orc = scope_ == Scope::order && !view_.patient_results.empty() &&
                                  !result().orders.empty() && order().orc && !order().obr &&
                                  order().notes.empty() && order().timing.empty();
      if (!pairs_with_orc) new_order();
      order().obr = s;
      scope_ = Scope::order;
      return;
    }
    if (id == "TQ1" || id == "TQ2") {
      if (scope_ == Scope::order && order().obr && order().observations.empty() && !order().ctd) {
        if (id == "TQ2" && order().timing.empty()) return unplaced(s, "TQ2 must follow TQ1");
        return order().timing.push_back(s);
      }
      return unplaced(s, std::string(id) + " must follow OBR, before any OBX");
    }
    if (id == "CTD") {
      if (scope_ == Scope::order && order().obr && order().observations.empty() && !order().ctd) {
        order().ctd = s;
        return;
      }
      return unplaced(s, "CTD must follow OBR, before any OBX");
    }
    if (id == "OBX") {
      if (scope_ == Scope::order || scope_ == Scope::observation) {
        if (!order().obr) return unplaced(s, "OBX in an order that has no OBR");
        if (!order().ft1.empty() || !order().cti.empty()) {
          return unplaced(s, "OBX after FT1/CTI; observations come first");
        }
        order().observations.push_back(OruObservation{s, {}, {}, {}});
        scope_ = Scope::observation;
        return;
      }
      if (scope_ == Scope::specimen || scope_ == Scope::specimen_observation) {
        order().specimens.back().observations.push_back(OruObservation{s, {}, {}, {}});
        scope_ = Scope::specimen_observation;
        return;
      }
      return unplaced(s, "OBX before any OBR: it belongs to no order");
    }
    if (id == "FT1" || id == "CTI") {
      if (scope_ == Scope::order || scope_ == Scope::observation) {
        if (!order().specimens.empty()) return unplaced(s, std::string(id) + " after SPM");
        return (id == "FT1" ? order().ft1 : order().cti).push_back(s);
      }
      return unplaced(s, std::string(id) + " must follow an order's observations");
    }
    if (id == "SPM") {
      if (!in_order() || !order().obr)
        return unplaced(s, "SPM before any OBR: it belongs to no order");
      order().specimens.push_back(OruSpecimen{s, {}, {}});
      scope_ = Scope::specimen;
      return;
    }
    if (id == "DSC") {
      view_.dsc = s;
      scope_ = Scope::end;
      return;
    }
    unplaced(s, "segment " + std::string(id) + " is not part of the ORU^R01 structure");
  }

  const Message& m_;
  OruR01 view_;
  Scope scope_ = Scope::header;
};

void append_observation(std::vector<SegmentRef>& out, const OruObservation& o) {
  out.push_back(o.obx);
  out.insert(out.end(), o.participants.begin(), o.participants.end());
  out.insert(out.end(), o.notes.begin(), o.notes.end());
  out.insert(out.end(), o.extras.begin(), o.extras.end());
}

}  // namespace

OruR01 view_oru_r01(const Message& message) {
  return Builder(message).build();
}

std::vector<SegmentRef> OruR01::all_segments() const {
  std::vector<SegmentRef> out(software);
  for (const auto& r : patient_results) {
    if (r.patient) {
      const auto& p = *r.patient;
      out.push_back(p.pid);
      if (p.pd1) out.push_back(*p.pd1);
      out.insert(out.end(), p.participants.begin(), p.participants.end());
      out.insert(out.end(), p.notes.begin(), p.notes.end());
      out.insert(out.end(), p.nk1.begin(), p.nk1.end());
      if (p.pv1) out.push_back(*p.pv1);
      if (p.pv2) out.push_back(*p.pv2);
      out.insert(out.end(), p.extras.begin(), p.extras.end());
    }
    for (const auto& o : r.orders) {
      if (o.orc) out.push_back(*o.orc);
      if (o.obr) out.push_back(*o.obr);
      out.insert(out.end(), o.notes.begin(), o.notes.end());
      out.insert(out.end(), o.participants.begin(), o.participants.end());
      out.insert(out.end(), o.timing.begin(), o.timing.end());
      if (o.ctd) out.push_back(*o.ctd);
      for (const auto& obs : o.observations) append_observation(out, obs);
      out.insert(out.end(), o.ft1.begin(), o.ft1.end());
      out.insert(out.end(), o.cti.begin(), o.cti.end());
      for (const auto& sp : o.specimens) {
        out.push_back(sp.spm);
        for (const auto& obs : sp.observations) append_observation(out, obs);
        out.insert(out.end(), sp.extras.begin(), sp.extras.end());
      }
      out.insert(out.end(), o.extras.begin(), o.extras.end());
    }
    out.insert(out.end(), r.extras.begin(), r.extras.end());
  }
  if (dsc) out.push_back(*dsc);
  out.insert(out.end(), extras.begin(), extras.end());
  for (const auto& u : unplaced) out.push_back(u.segment);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace adapter::hl7v2
