// What replaying a stored message would change, without replaying it: the message is mapped
// again with the current mappings (by the mapping worker's own MappingWorker::map_stored) and the
// outcome is compared with the mapping on record. Nothing is written and nothing is sent. An
// integration engineer runs it after changing a template, over the messages the change should
// fix (or must not touch), before `replay` sends anything to the EHR.
//
// One message's answer:
//   {"id": 42, "changed": true,
//    "recorded": {"state", "template", "version", "template_set"} | null (never mapped),
//    "replayed": {"state", "template", "version", "template_set"},
//    "bundle":   ["entry[3].resource.valueQuantity.value: expected 0.48, got 0.480", ...],
//    "issues":   {"added": [...], "gone": [...]},
//    "unmapped": {"added": [...], "gone": [...]},
//    "held_back": true (only when it is)}
// `bundle` lists the differences from the recorded Bundle to the replayed one (json_diff, at
// most 50 lines). The Provenance names the template set, which every change of mappings
// changes: that reference alone is not a difference. Issues are compared by severity, message
// and source path (a template edit that moves a line is not a new issue); the unmapped report
// by its lines. `changed`: the state (mapped or mapping_failed; a record pending again keeps its
// last outcome, and waiting is not a change), the Bundle, the issues or the unmapped report
// differ. `held_back`: the replay would be mapped but not sent, because a newer version of its
// report was queued since (MappingWorker::map_stored); its warning is among the added issues.
#pragma once

#include <cstdint>
#include <optional>

#include "app/translate.h"
#include "mapping/json.h"
#include "store/inbox_store.h"

namespace adapter::app {

struct ReplayPreview {
  bool changed = false;
  bool held_back = false;  // mapped, and not sent: an older version of its report
  store::MappingState replayed_state = store::MappingState::pending;
  mapping::Json answer;  // the object above
};

// Reads the store only to learn whether an earlier message queued the same report
// (MappingWorker::map_stored); fails when it cannot.
Result<ReplayPreview> preview_replay(const Mapper& mapper, store::InboxStore& store,
                                     const store::StoredMessage& message,
                                     const std::optional<store::MappingRecord>& recorded,
                                     std::int64_t now_us);

}  // namespace adapter::app
