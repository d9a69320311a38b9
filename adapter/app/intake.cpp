#include "app/intake.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>

#include "common/log.h"
#include "common/sha256.h"
#include "hl7v2/ack.h"
#include "hl7v2/batch.h"
#include "hl7v2/builder.h"
#include "hl7v2/header.h"
#include "hl7v2/message.h"
#include "hl7v2/timestamp.h"

namespace adapter::app {

using hl7v2::AckCode;
using hl7v2::AckError;
using hl7v2::Header;
using store::Disposition;
using store::MessageState;

struct Intake::Classified {
  store::InboundMessage record;
  Header header;
  Errc outcome = Errc::ok;
  std::optional<AckError> error;
};

namespace {

std::string base36(std::uint64_t n) {
  static constexpr char kDigits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string s;
  do {
    s.insert(s.begin(), kDigits[n % 36]);
    n /= 36;
  } while (n > 0);
  return s;
}

AckError ack_error(const hl7v2::ParseError& e) {
  return AckError{e.code, e.message, e.location, 'E'};
}

}  // namespace

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Intake::Intake(ListenerPolicy policy, store::InboxStore& store, MllpStats& stats)
    : policy_(std::move(policy)), store_(store), stats_(stats) {}

std::string Intake::next_ack_id() {
  // ACK control IDs: the process start time in microseconds, then a process-wide counter, both
  // in base 36 and letters/digits only (no character can clash with a sender's delimiters).
  // Unique across listeners and restarts, and within MSH-10's 20 characters (10 + up to 10).
  static const std::string prefix = base36(static_cast<std::uint64_t>(now_us()));
  static std::atomic<std::uint64_t> counter{0};
  return prefix + base36(counter.fetch_add(1, std::memory_order_relaxed) + 1);
}

Intake::Classified Intake::classify(std::string raw, const Inbound& in,
                                    std::optional<ParseResult> parsed_already) const {
  Classified c;
  auto& r = c.record;
  r.raw = std::move(raw);
  const std::string_view payload = r.raw;
  r.received_at_us = in.received_at_us;
  r.listener = policy_.listener;
  r.peer = in.peer;

  ParseResult parsed =
      parsed_already ? std::move(*parsed_already) : hl7v2::Message::parse(payload, parse_options());
  if (!parsed) {
    c.header = hl7v2::sniff_header(payload);
    c.outcome = parsed.error().code;
    c.error = ack_error(parsed.error());
  } else {
    c.header = hl7v2::header_of(*parsed);
    if (auto req = hl7v2::check_required(c.header); !req) {
      c.outcome = req.error().code;
      c.error = ack_error(req.error());
    } else if (!policy_.accept_message_types.empty() &&
               std::find(policy_.accept_message_types.begin(), policy_.accept_message_types.end(),
                         c.header.type_and_trigger()) == policy_.accept_message_types.end()) {
      c.outcome = Errc::message_type_refused;
      hl7v2::Location loc;
      loc.segment = "MSH";
      loc.segment_index = 1;
      loc.occurrence = 1;
      loc.field = 9;
      c.error = AckError{Errc::message_type_refused,
                         "message type " + c.header.type_and_trigger() +
                             " is not accepted by listener '" + policy_.listener + "'",
                         loc, 'E'};
    }
    // Content hash without MSH-7: a sender that stamps a new time on a resend is still
    // resending the same message.
    const std::string_view text = parsed->text();
    const std::string_view msh7 = parsed->msh(7).raw();
    const auto cut = static_cast<std::size_t>(msh7.data() - text.data());
    Sha256 h;
    h.update(text.substr(0, cut));
    h.update(text.substr(cut + msh7.size()));
    r.content_sha256 = h.hex_digest();
  }
  if (r.content_sha256.empty()) r.content_sha256 = sha256_hex(payload);
  r.sender_application = c.header.sending_application;
  r.sender_facility = c.header.sending_facility;
  r.control_id = c.header.control_id;
  r.message_type = c.header.message_type;
  r.state = c.outcome == Errc::ok ? MessageState::received : MessageState::rejected;
  if (c.error)
    r.error = std::string(name(c.error->code)) + " at " + c.error->location.to_string() + ": " +
              c.error->text;
  r.ack_code = std::string(hl7v2::to_string(hl7v2::ack_code_for(c.header, c.outcome)));
  return c;
}

std::string Intake::ack_for(const Classified& c, const store::AppendOutcome* outcome,
                            Errc store_error) {
  Errc result = c.outcome;
  std::optional<AckError> error = c.error;
  if (store_error != Errc::ok && result == Errc::ok) {
    // Never a positive ACK for a message that is not durable.
    result = store_error;
    error = AckError{store_error, "the message could not be stored; send it again later", {}, 'E'};
  } else if (outcome != nullptr && outcome->disposition == Disposition::conflict) {
    result = Errc::duplicate_conflict;
    hl7v2::Location loc;
    loc.segment = "MSH";
    loc.segment_index = 1;
    loc.occurrence = 1;
    loc.field = 10;
    error = AckError{Errc::duplicate_conflict,
                     "control ID was already accepted (message " +
                         std::to_string(outcome->original_id) +
                         ") with different content; use a new MSH-10 for a new message",
                     loc, 'E'};
  }
  const AckCode code = hl7v2::ack_code_for(c.header, result);
  // Counters.
  if (store_error != Errc::ok) {
    bump(stats_.store_failures);
  } else if (outcome != nullptr && outcome->disposition == Disposition::duplicate) {
    bump(stats_.messages_duplicate);
  } else if (hl7v2::is_positive(code)) {
    bump(stats_.messages_accepted);
  } else if (info(result).ack_code == "AR") {
    bump(stats_.messages_rejected);
  } else {
    bump(stats_.messages_refused);
  }
  if (!hl7v2::should_send(c.header, code)) {
    bump(stats_.acks_suppressed);
    return {};
  }
  hl7v2::AckOptions opts;
  opts.control_id = next_ack_id();
  opts.default_application = policy_.instance;
  return hl7v2::make_ack(c.header, code, error ? &*error : nullptr, opts);
}

void Intake::submit(Inbound in, std::function<void(Receipt)> done) {
  std::vector<Classified> items;
  std::optional<hl7v2::ParseError> batch_error;
  std::string_view batch_header;
  // Parse first: a batch shows up as Errc::bad_batch (FHS/BHS first, or a second MSH), so a
  // single message (nearly every frame) is read once, with no separate batch scan.
  std::optional<ParseResult> parsed = hl7v2::Message::parse(in.payload, parse_options());
  const bool batch = !*parsed && parsed->error().code == Errc::bad_batch;
  if (batch) {
    auto split = hl7v2::split_batch(in.payload);
    if (!split) {
      batch_error = split.error();
    } else {
      batch_header = split->batch_header;
      for (std::string_view text : split->messages)
        items.push_back(classify(std::string(text), in));
    }
  } else {
    // The message views point into its own copy of the text, so moving the payload is safe.
    items.push_back(classify(std::move(in.payload), in, std::move(parsed)));
  }
  if (batch_error) {
    // The envelope is wrong: keep the whole input as one rejected record and reject it all.
    Classified c;
    c.header = hl7v2::sniff_header(in.payload);
    c.outcome = batch_error->code;
    c.error = ack_error(*batch_error);
    c.record.raw = in.payload;
    c.record.received_at_us = in.received_at_us;
    c.record.listener = policy_.listener;
    c.record.peer = in.peer;
    c.record.content_sha256 = sha256_hex(in.payload);
    c.record.state = MessageState::rejected;
    c.record.error = std::string(name(c.outcome)) + " at " + batch_error->location.to_string() +
                     ": " + batch_error->message;
    c.record.ack_code = std::string(hl7v2::to_string(hl7v2::ack_code_for(c.header, c.outcome)));
    items.push_back(std::move(c));
  }

  std::vector<store::InboundMessage> records;
  records.reserve(items.size());
  // The records go to the store; the items keep what the ACK needs (header, outcome, error).
  for (auto& c : items) records.push_back(std::move(c.record));

  // Batch ACK envelope: BHS ... BTS around one ACK per message (HL7 batch protocol).
  std::string bhs11;  // batch control ID, echoed in the answer's BHS-11
  if (batch && !batch_error && batch_header.size() > 3) {
    // BHS is laid out like MSH: piece 0 is "BHS", piece 1 is BHS-2, piece k is BHS-(k+1).
    const char fs = batch_header[3];
    std::size_t pos = 0;
    for (int piece = 0; piece < 10 && pos != std::string_view::npos; ++piece) {
      pos = batch_header.find(fs, pos == 0 ? 3 : pos + 1);
    }
    if (pos != std::string_view::npos) {
      const std::size_t end = batch_header.find(fs, pos + 1);
      bhs11 = std::string(
          batch_header.substr(pos + 1, end == std::string_view::npos ? end : end - pos - 1));
    }
  }
  auto shared = std::make_shared<std::vector<Classified>>(std::move(items));
  const bool wrap = batch && !batch_error;
  const std::int64_t received_at_us = in.received_at_us;
  store_.append(std::move(records), [this, shared, wrap, bhs11, received_at_us,
                                     done = std::move(done)](
                                        Result<std::vector<store::AppendOutcome>> result) {
    Receipt receipt;
    const Errc store_error = result ? Errc::ok : Errc::store_unavailable;
    if (!result) {
      log::error("intake.store_failed", {{"listener", policy_.listener},
                                         {"error", result.error().message},
                                         {"messages", shared->size()}});
    }
    std::string acks;
    bool all_positive = true;
    for (std::size_t i = 0; i < shared->size(); ++i) {
      const store::AppendOutcome* outcome = result ? &(*result)[i] : nullptr;
      const Classified& c = (*shared)[i];
      std::string ack = ack_for(c, outcome, store_error);
      const bool conflict = outcome != nullptr && outcome->disposition == Disposition::conflict;
      const bool positive = store_error == Errc::ok && c.outcome == Errc::ok && !conflict;
      if (outcome != nullptr) {
        const bool duplicate = outcome->disposition == Disposition::duplicate;
        receipt.message_ids.push_back(duplicate ? outcome->original_id : outcome->id);
        if (i == 0) receipt.duplicate = duplicate;
      }
      if (!positive && receipt.outcome == Errc::ok) {
        receipt.outcome = store_error != Errc::ok ? store_error
                          : c.outcome != Errc::ok ? c.outcome
                                                  : Errc::duplicate_conflict;
        receipt.error =
            store_error != Errc::ok ? "the message could not be stored; send it again"
            : c.outcome != Errc::ok
                ? std::string(name(c.outcome)) +
                      (c.error ? " at " + c.error->location.to_string() + ": " + c.error->text
                               : std::string())
                : "control ID already accepted (message " + std::to_string(outcome->original_id) +
                      ") with different content; use a new MSH-10 for a new message";
      }
      all_positive = all_positive && positive;
      if (c.outcome != Errc::ok) {
        log::info("intake.rejected", {{"listener", policy_.listener},
                                      {"message_id", outcome ? outcome->id : 0},
                                      {"error", name(c.outcome)},
                                      {"where", c.error ? c.error->location.to_string() : ""}});
      } else if (log::enabled(log::Level::debug)) {
        log::debug("intake.stored",
                   {{"listener", policy_.listener},
                    {"message_id", outcome ? outcome->id : 0},
                    {"disposition", outcome ? store::to_string(outcome->disposition) : "failed"}});
      }
      acks += ack;
    }
    receipt.positive = all_positive;
    stats_.ack_latency.observe_us(now_us() - received_at_us);
    if (result && on_stored_) on_stored_();
    if (wrap && !acks.empty()) {
      hl7v2::MessageBuilder env;
      env.segment("BHS")
          .text(3, policy_.instance)
          .text(7, hl7v2::format_dtm(std::chrono::system_clock::now()))
          .raw(11, bhs11);
      std::string out = env.encode() + acks;
      hl7v2::MessageBuilder trailer;
      trailer.segment("BTS").text(1, std::to_string(shared->size()));
      receipt.ack = out + trailer.encode();
    } else {
      receipt.ack = std::move(acks);
    }
    done(std::move(receipt));
  });
}

void Intake::submit_broken(Inbound in, Errc why, std::function<void(Receipt)> done) {
  Classified c;
  c.header = hl7v2::sniff_header(in.payload);
  c.outcome = why;
  const std::string text = why == Errc::frame_too_large
                               ? "the frame is larger than this listener accepts"
                               : "the connection ended before the frame was complete";
  c.error = AckError{why, text, {}, 'E'};
  auto& r = c.record;
  r.raw = std::move(in.payload);
  r.received_at_us = in.received_at_us;
  r.listener = policy_.listener;
  r.peer = std::move(in.peer);
  r.sender_application = c.header.sending_application;
  r.sender_facility = c.header.sending_facility;
  r.control_id = c.header.control_id;
  r.message_type = c.header.message_type;
  r.content_sha256 = sha256_hex(r.raw);
  r.state = MessageState::rejected;
  r.error = std::string(name(why)) + ": " + text;
  r.ack_code = std::string(hl7v2::to_string(hl7v2::ack_code_for(c.header, why)));
  std::vector<store::InboundMessage> records{r};
  auto shared = std::make_shared<Classified>(std::move(c));
  store_.append(std::move(records), [this, shared, why, done = std::move(done)](
                                        Result<std::vector<store::AppendOutcome>> result) {
    if (!result) {
      log::error("intake.store_failed",
                 {{"listener", policy_.listener}, {"error", result.error().message}});
      bump(stats_.store_failures);
    }
    log::info("intake.broken_frame", {{"listener", policy_.listener},
                                      {"error", name(why)},
                                      {"message_id", result ? (*result)[0].id : 0}});
    Receipt receipt;
    if (why == Errc::frame_too_large) {
      hl7v2::AckOptions opts;
      opts.control_id = next_ack_id();
      opts.default_application = policy_.instance;
      const AckCode code = hl7v2::ack_code_for(shared->header, why);
      receipt.ack = hl7v2::make_ack(shared->header, code, &*shared->error, opts);
      receipt.close = true;
    }
    done(std::move(receipt));
  });
}

}  // namespace adapter::app
