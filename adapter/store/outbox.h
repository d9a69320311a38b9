// The outbox: each mapped message's Bundle waits here, per destination, until the destination
// has it. Rows are written in the same transaction as the mapping that produced them (a
// transactional outbox), so a message is never mapped without being queued, nor queued twice.
// This header is the seam between the delivery worker and a storage engine; it names no database.
//
// Ordering: deliveries that share an order key (the report they are about) go out one at a time,
// in message id (receipt) order. A later one waits while an earlier one is pending or a dead
// letter, so a corrected result never overtakes its original; discarding the dead letter (or
// delivering it) releases the ones behind it.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace adapter::store {

enum class DeliveryState {
  pending,      // waiting for its first or next attempt (or for its mapping to be redone)
  delivered,    // the destination answered 2xx
  dead_letter,  // refused (4xx) or given up after the retry limits: kept for `dead-letters`
  discarded,    // a dead letter an operator chose not to deliver (with a reason)
};
std::string_view to_string(DeliveryState state);
std::optional<DeliveryState> parse_delivery_state(std::string_view text);

// One delivery as stored.
struct DeliveryRecord {
  std::int64_t message_id = 0;
  std::string destination;
  std::string order_key;  // the report it is about ("DiagnosticReport|<system>|<value>")
  DeliveryState state = DeliveryState::pending;
  std::int64_t attempts = 0;
  std::int64_t queued_at_us = 0;        // first queued; retry age counts from here
  std::int64_t next_attempt_at_us = 0;  // not before this time
  std::int64_t last_attempt_at_us = 0;  // 0: never tried
  int last_status = 0;                  // HTTP status of the last answer; 0: none (no answer)
  std::string last_error;               // why the last attempt did not deliver
  std::string response;                 // delivered: entry statuses and locations (JSON);
                                        // dead letter: the server's OperationOutcome
  std::int64_t delivered_at_us = 0;
  std::string discard_reason;
};

// One try, kept for inspection (and for tests that check the backoff).
struct DeliveryAttempt {
  std::int64_t message_id = 0;
  std::string destination;
  std::int64_t number = 0;  // 1, 2, ...
  std::int64_t started_at_us = 0;
  std::int64_t duration_us = 0;
  int status = 0;       // HTTP status; 0 when no answer came
  std::string outcome;  // "delivered", "retry" or "dead_letter"
  std::string error;    // empty when delivered
};

// A delivery that may be attempted now, with what to send.
struct DueDelivery {
  std::int64_t message_id = 0;
  std::string destination;
  std::string order_key;
  std::int64_t attempts = 0;
  std::int64_t queued_at_us = 0;
  std::int64_t received_at_us = 0;  // when the message itself arrived
  std::string bundle_json;
};

// What the worker writes after an attempt.
struct DeliveryUpdate {
  DeliveryAttempt attempt;
  DeliveryState state = DeliveryState::pending;  // pending (retry), delivered or dead_letter
  std::int64_t next_attempt_at_us = 0;           // with pending
  std::string response;
};

struct DeliveryQuery {
  std::optional<DeliveryState> state;
  std::optional<std::string> destination;
  std::int64_t after_id = 0;  // paging: message ids > after_id
  std::size_t limit = 100;
};

struct OutboxCounts {
  std::int64_t pending = 0;
  std::int64_t delivered = 0;
  std::int64_t dead_letter = 0;
  std::int64_t discarded = 0;
  std::int64_t oldest_pending_queued_at_us = 0;  // 0 when nothing is pending
};

class Outbox {
 public:
  virtual ~Outbox() = default;

  // Deliveries to `destination` whose time has come (next_attempt_at_us <= now_us), whose
  // mapping is `mapped`, and that no earlier delivery of the same order key holds back; in
  // message id order.
  virtual Result<std::vector<DueDelivery>> due_deliveries(std::string_view destination,
                                                          std::int64_t now_us,
                                                          std::size_t limit) = 0;
  // The earliest next_attempt_at_us among pending deliveries to `destination` (to sleep until),
  // or nothing.
  virtual Result<std::optional<std::int64_t>> next_due_at(std::string_view destination) = 0;

  // Records an attempt and the delivery's new state; `done` runs once durable (store thread).
  using StatusCallback = std::function<void(Status)>;
  virtual void record_delivery(DeliveryUpdate update, StatusCallback done) = 0;

  virtual Result<std::vector<DeliveryRecord>> deliveries_of(std::int64_t message_id) = 0;
  virtual Result<std::vector<DeliveryAttempt>> attempts_of(std::int64_t message_id) = 0;
  virtual Result<std::vector<DeliveryRecord>> find_deliveries(const DeliveryQuery& query) = 0;
  virtual Result<OutboxCounts> outbox_counts(std::string_view destination) = 0;

  // Dead letters. retry: the message is mapped again with the current templates (so a fixed
  // template takes effect) and its dead deliveries become pending with a fresh attempt count;
  // one message, or (no id) every dead letter. discard: dead letters of the message become
  // discarded with the reason. Both return how many deliveries changed.
  virtual Result<std::int64_t> retry_dead_letters(std::optional<std::int64_t> message_id) = 0;
  virtual Result<std::int64_t> discard_dead_letters(std::int64_t message_id,
                                                    std::string reason) = 0;
};

Status record_delivery_and_wait(Outbox& outbox, DeliveryUpdate update);

}  // namespace adapter::store
