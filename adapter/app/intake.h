// Intake: one received input -> parsed -> stored durably -> the acknowledgment to send.
//
// This is the seam every ingress shares: a listener only frames bytes and writes back the
// Receipt, so MLLP (and later HTTP) differ only in transport. The order of events is the
// product's core promise: the ACK is built only after the store has committed, and a positive
// ACK (AA/CA) only when the message is durable. Inputs that fail are stored too, as rejected,
// so nothing received is lost.
//
// Thread-safe. Callbacks run on the store's thread: post real work to your own executor.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "app/stats.h"
#include "common/errc.h"
#include "hl7v2/message.h"
#include "hl7v2/types.h"
#include "store/inbox_store.h"

namespace adapter::app {

struct ListenerPolicy {
  std::string listener;                           // listener name, recorded with each message
  std::vector<std::string> accept_message_types;  // "ORU^R01"; empty accepts all
  hl7v2::Charset default_charset = hl7v2::Charset::utf8;
  std::string instance = "adapterd";  // MSH-3 of ACKs when MSH-5 was empty
};

struct Inbound {
  std::string payload;              // one MLLP frame's content
  std::string peer;                 // "address:port"
  std::int64_t received_at_us = 0;  // receipt time
};

struct Receipt {
  std::string ack;        // the acknowledgment (unframed); empty: send nothing
  bool positive = false;  // the message is durable and accepted (AA/CA)
  bool close = false;     // close the connection after answering
  // For transports that answer other than with the ACK (HTTP): the stored rows (a duplicate's
  // is the original's; none when the store failed), and the first message's outcome.
  std::vector<std::int64_t> message_ids;
  bool duplicate = false;  // the (first) message was a resend, answered from the original
  Errc outcome = Errc::ok;
  std::string error;  // "<code> at <HL7 path>: <text>" when not positive
};

class Intake {
 public:
  // `store` and `stats` must outlive the Intake.
  Intake(ListenerPolicy policy, store::InboxStore& store, MllpStats& stats);

  // Parses the payload (a message, or a batch of them), stores it and calls `done`.
  void submit(Inbound in, std::function<void(Receipt)> done);

  // Input that is not a whole message (Errc::frame_too_large, Errc::truncated): kept as
  // rejected for inspection. A frame_too_large receipt carries an error ACK and asks to close;
  // a truncated one answers nothing (the sender is gone or started over).
  void submit_broken(Inbound in, Errc why, std::function<void(Receipt)> done);

  const ListenerPolicy& policy() const { return policy_; }

  // Called (on the store's thread; must not block) after messages were stored as received, so
  // that the mapping worker starts at once instead of at its next poll. Set before submit().
  void set_on_stored(std::function<void()> hook) { on_stored_ = std::move(hook); }

 private:
  struct Classified;
  // `raw` is one message's bytes; `in` gives the receipt context (peer, time).
  using ParseResult = Result<hl7v2::Message, hl7v2::ParseError>;
  Classified classify(std::string raw, const Inbound& in,
                      std::optional<ParseResult> parsed_already = std::nullopt) const;
  hl7v2::ParseOptions parse_options() const { return hl7v2::ParseOptions{policy_.default_charset}; }
  std::string ack_for(const Classified& c, const store::AppendOutcome* outcome, Errc store_error);
  static std::string next_ack_id();

  ListenerPolicy policy_;
  store::InboxStore& store_;
  MllpStats& stats_;
  std::function<void()> on_stored_;
};

std::int64_t now_us();

}  // namespace adapter::app
