// The MSH fields that intake, duplicate detection and acknowledgments need.
#pragma once

#include <string>
#include <string_view>

#include "hl7v2/message.h"
#include "hl7v2/types.h"

namespace adapter::hl7v2 {

// Values are kept as sent (still escaped with `delimiters`), so an ACK can copy them verbatim.
struct Header {
  Delimiters delimiters;
  std::string sending_application;    // MSH-3
  std::string sending_facility;       // MSH-4
  std::string receiving_application;  // MSH-5
  std::string receiving_facility;     // MSH-6
  std::string message_type;           // MSH-9, e.g. "ORU^R01^ORU_R01"
  std::string message_code;           // MSH-9.1, decoded
  std::string trigger_event;          // MSH-9.2, decoded
  std::string control_id;             // MSH-10
  std::string processing_id;          // MSH-11
  std::string version;                // MSH-12 (first component)
  std::string accept_ack_type;        // MSH-15: AL, NE, ER, SU (empty: original mode)
  std::string application_ack_type;   // MSH-16
  std::string charset;                // MSH-18 (first repetition)
  bool found = false;                 // an MSH was there to read at all

  // Enhanced acknowledgment mode: MSH-15 present.
  bool enhanced_mode() const { return !accept_ack_type.empty(); }
  // "ORU^R01" (code and trigger, the form configuration uses).
  std::string type_and_trigger() const;
};

Header header_of(const Message& message);

// Best effort for input that does not parse: reads what it can of a leading MSH so that even a
// rejection can be addressed and correlated (MSA-2). Never fails; `found` tells if MSH was there.
Header sniff_header(std::string_view bytes);

// The MSH fields the adapter requires before it accepts a message: MSH-9 (code and trigger),
// MSH-10 and MSH-12. The error names the first missing one.
Result<void, ParseError> check_required(const Header& header);

}  // namespace adapter::hl7v2
