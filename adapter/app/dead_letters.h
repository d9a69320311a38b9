// `adapterd dead-letters ...`: the operator's view of deliveries a destination refused or that
// ran out of retries, and what to do with them.
//
//   list                      one line per dead letter: message, destination, attempts, status,
//                             when, and the reason
//   show MESSAGE_ID           every delivery of the message, its attempts, and the server's
//                             answer (the OperationOutcome) as received
//   retry (MESSAGE_ID|--all)  map again with the current templates, then deliver (a fixed
//                             template or a fixed server takes effect)
//   discard MESSAGE_ID --reason TEXT
//                             give up on it, saying why; deliveries about the same report that
//                             waited behind it go on
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "store/outbox.h"

namespace adapter::app {

// Runs one dead-letters command against `outbox`. Returns the process exit code (0 done, 1 an
// error or nothing matched, 2 usage). A running daemon picks retried messages up within its poll
// interval.
int dead_letters_command(store::Outbox& outbox, const std::vector<std::string>& operands,
                         std::ostream& out, std::ostream& err);

}  // namespace adapter::app
