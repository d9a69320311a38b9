// Acknowledgments (ACK messages) in original mode (AA/AE/AR) and enhanced mode (CA/CE/CR).
//
// The ACK swaps sender and receiver, answers MSH-9 "ACK^<trigger>^ACK" with a new MSH-10, keeps
// the incoming version (MSH-12), character set (MSH-18) and delimiters, echoes the incoming
// control ID in MSA-2, and carries an ERR segment on every rejection: ERR-2 the location (ERL),
// ERR-3 the HL7 table 0357 code, ERR-4 the severity and ERR-8 a readable message (plus ERR-1 for
// versions before 2.5, which only know that field).
#pragma once

#include <string>
#include <string_view>

#include "common/errc.h"
#include "hl7v2/header.h"
#include "hl7v2/types.h"

namespace adapter::hl7v2 {

enum class AckCode { AA, AE, AR, CA, CE, CR };
std::string_view to_string(AckCode code);
bool is_positive(AckCode code);  // AA or CA

// The code for an outcome: Errc::ok -> AA/CA; the errc table's "ack" column chooses AE or AR;
// enhanced mode (MSH-15 present) turns them into CA/CE/CR.
AckCode ack_code_for(const Header& incoming, Errc outcome);

// Enhanced mode honours MSH-15: AL always, NE never, ER only on CE/CR, SU only on CA. Original
// mode always answers.
bool should_send(const Header& incoming, AckCode code);

struct AckError {
  Errc code = Errc::internal;
  std::string text;   // ERR-8 (and MSA-3 for older receivers); goes back to the sender only
  Location location;  // ERR-2
  char severity = 'E';
};

struct AckOptions {
  std::string control_id;  // MSH-10 of the ACK; must be unique
  std::string timestamp;   // MSH-7; format_dtm(now) when empty
  // MSH-3/MSH-4 of the ACK when the incoming MSH-5/MSH-6 are empty.
  std::string default_application = "ADAPTERD";
};

std::string make_ack(const Header& incoming, AckCode code, const AckError* error,
                     const AckOptions& options);

}  // namespace adapter::hl7v2
