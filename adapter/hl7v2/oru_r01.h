// The ORU^R01 group view (v2.5.1 abstract message syntax):
//
//   MSH [{SFT}]
//   { PATIENT_RESULT
//       [ PATIENT  PID [PD1] [{PRT}] [{NTE}] [{NK1}] [ VISIT PV1 [PV2] [{PRT}] ] ]
//       { ORDER_OBSERVATION
//           [ORC] OBR [{NTE}] [{PRT}] [{ TIMING_QTY TQ1 [{TQ2}] }] [CTD]
//           [{ OBSERVATION OBX [{PRT}] [{NTE}] }]
//           [{FT1}] [{CTI}]
//           [{ SPECIMEN SPM [{OBX}] }] } }
//   [DSC]
//
// PRT (participation) is placed where v2.7+ puts it, since v2.5.1 senders use it too.
//
// Every segment after MSH ends up in exactly one place: in a group, in `extras` of the innermost
// open group (Z segments, which sites put anywhere), or in `unplaced` with the reason. Nothing is
// dropped: an OBX after an SPM is that specimen's observation (as v2.5.1 defines it), and an OBX
// before any OBR is reported rather than ignored.
//
// Indices are 0-based segment positions in the Message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hl7v2/message.h"

namespace adapter::hl7v2 {

using SegmentRef = std::uint32_t;

struct OruObservation {
  SegmentRef obx = 0;
  std::vector<SegmentRef> participants;  // PRT
  std::vector<SegmentRef> notes;         // NTE
  std::vector<SegmentRef> extras;        // Z segments
};

struct OruSpecimen {
  SegmentRef spm = 0;
  std::vector<OruObservation> observations;  // OBX after the SPM (specimen observations)
  std::vector<SegmentRef> extras;
};

struct OruOrder {
  std::optional<SegmentRef> orc;
  std::optional<SegmentRef> obr;  // absent only when an ORC is not followed by an OBR
  std::vector<SegmentRef> notes;
  std::vector<SegmentRef> participants;  // PRT
  std::vector<SegmentRef> timing;        // TQ1, TQ2
  std::optional<SegmentRef> ctd;
  std::vector<OruObservation> observations;
  std::vector<SegmentRef> ft1;
  std::vector<SegmentRef> cti;
  std::vector<OruSpecimen> specimens;
  std::vector<SegmentRef> extras;
};

struct OruPatient {
  SegmentRef pid = 0;
  std::optional<SegmentRef> pd1;
  std::vector<SegmentRef> participants;  // PRT of the patient and of the visit
  std::vector<SegmentRef> notes;
  std::vector<SegmentRef> nk1;
  std::optional<SegmentRef> pv1;
  std::optional<SegmentRef> pv2;
  std::vector<SegmentRef> extras;
};

struct OruPatientResult {
  std::optional<OruPatient> patient;
  std::vector<OruOrder> orders;
  std::vector<SegmentRef> extras;
};

struct Unplaced {
  SegmentRef segment = 0;
  std::string reason;
};

struct OruR01 {
  std::vector<SegmentRef> software;  // SFT
  std::vector<OruPatientResult> patient_results;
  std::optional<SegmentRef> dsc;
  std::vector<SegmentRef> extras;  // Z segments before any group
  std::vector<Unplaced> unplaced;  // segments the structure has no place for

  // Every segment index the view holds (placed, extra or unplaced), in message order; used to
  // prove that nothing was dropped.
  std::vector<SegmentRef> all_segments() const;
};

OruR01 view_oru_r01(const Message& message);

}  // namespace adapter::hl7v2
