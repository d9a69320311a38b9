// Finds the partials and segment filters whose results depend only on their inputs (see
// purity.cpp), so that an Evaluator may reuse them within one message. Internal to mapping/.
#pragma once

#include "mapping/template.h"

namespace adapter::mapping {

// Sets Partial::pure, context_param, context_segments and index, Hl7PathSpec::memo_slot and
// TemplateSet::pure_filters. Runs once, after bind_names, before the set is shared.
void find_pure_calls(TemplateSet& set);

}  // namespace adapter::mapping
