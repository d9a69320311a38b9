// The durable inbox: every message the adapter receives is appended here, and committed to stable
// storage, before any acknowledgment is sent. This header is the seam between the daemon and a
// storage engine (SQLite today, PostgreSQL later); it names no database.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace adapter::store {

enum class MessageState {
  received,  // accepted and durable (its mapping, once done, is a MappingRecord)
  rejected,  // kept for inspection and replay, but not processed: parse error, refused type, ...
};
std::string_view to_string(MessageState state);

// One received message as the listener saw it.
struct InboundMessage {
  std::string raw;                  // the bytes exactly as received (the MLLP frame's payload)
  std::int64_t received_at_us = 0;  // receipt time, microseconds since the Unix epoch
  std::string listener;             // configured listener name
  std::string peer;                 // remote "address:port"
  std::string sender_application;   // MSH-3 as sent (may be empty)
  std::string sender_facility;      // MSH-4 as sent (may be empty)
  std::string control_id;           // MSH-10; empty when the message has none or cannot be parsed
  std::string message_type;         // MSH-9 as sent, e.g. "ORU^R01^ORU_R01"
  std::string content_sha256;       // hex hash telling a resend from a reuse of the control ID
  MessageState state = MessageState::received;
  std::string error;     // why a rejected message was rejected ("OBX[4]-5: ...")
  std::string ack_code;  // the acknowledgment code the adapter answers with
};

enum class Disposition {
  stored,     // a new row
  duplicate,  // same (MSH-3, MSH-4, MSH-10) and same content as an accepted message: not stored
              // again (the original's duplicate counter goes up); answer as for the original
  conflict,   // same key as an accepted message but different content: stored as rejected
};
std::string_view to_string(Disposition disposition);

struct AppendOutcome {
  Disposition disposition = Disposition::stored;
  std::int64_t id = 0;           // the new row, or for a duplicate the original's row
  std::int64_t original_id = 0;  // for duplicate and conflict: the accepted message with the key
};

// A stored message, as read back (admin, tests, replay).
struct StoredMessage {
  std::int64_t id = 0;
  InboundMessage message;
  std::int64_t duplicate_count = 0;  // resends answered from this row
};

// The outcome of mapping one received message (the daemon maps after the ACK has gone out).
enum class MappingState {
  pending,         // queued for (re)mapping: new, or replayed after a template fix
  mapped,          // the Bundle is ready for delivery
  mapping_failed,  // an error-severity issue: kept, not delivered, replayable
};
std::string_view to_string(MappingState state);

struct MessageQuery {
  std::optional<MessageState> state;
  std::optional<std::string> control_id;
  std::optional<std::string> source;              // listener, feed or folder name
  std::optional<std::string> sender_application;  // MSH-3 as sent (an HTTP feed: its name)
  std::optional<std::int64_t> received_from_us;   // received_at_us >= this
  std::optional<std::int64_t> received_until_us;  // received_at_us < this
  std::optional<MappingState> mapping_state;      // messages whose mapping is in this state
  std::optional<std::string> content_sha256;      // messages with exactly these bytes
  std::optional<std::string> peer;                // as recorded ("127.0.0.1:5012", "folder:x")
  std::int64_t after_id = 0;                      // paging: rows with id > after_id
  std::size_t limit = 100;
};

// A report a Bundle is about, and when the lab issued this version of it.
struct ReportKey {
  std::string key;             // "DiagnosticReport?identifier=system|value" (see outbox.h)
  std::int64_t issued_us = 0;  // its DiagnosticReport.issued; 0: none, or not an instant
  bool operator==(const ReportKey&) const = default;
};

struct MappingRecord {
  std::int64_t message_id = 0;
  MappingState state = MappingState::pending;
  std::string template_name;         // "oru-r01"
  std::string template_version;      // the template's $version
  std::string template_set;          // content hash of the whole mappings folder
  std::string issues_json;           // [{"severity", "message", "template", "source"}, ...]
  std::string unmapped_json = "[]";  // ["OBX[3]-6.1 = mg/dl", ...]: content no template read
  std::string bundle_json;           // the output (kept even when failed, for inspection)
  std::int64_t mapped_at_us = 0;
  std::int64_t attempts = 0;  // read back: how many times it was mapped

  // Written with a `mapped` record only (not read back): the outbox rows queued in the same
  // transaction, one per destination, and the report the Bundle is about (see outbox.h). A row
  // that exists already (a replay) becomes pending again with a fresh attempt count.
  std::vector<std::string> deliver_to;
  std::string order_key;
  // Every report the Bundle is about (its DiagnosticReports' keys, `order_key` among them),
  // recorded in the report history (report_history()) when the record is queued.
  std::vector<ReportKey> report_keys;
  // The mapping step found that a newer version of one of these reports was sent already
  // (MappingWorker::map_stored): the record is kept with a warning and queued nowhere, and the
  // message's deliveries still open (a replay, a dead-letter retry) are discarded.
  bool held_back = false;
  // Versions of a report are ordered by their issued time ($feed.older_versions "hold", the
  // default): queuing this record discards the deliveries still open (pending, dead letters) of
  // other messages that carried an older version of one of its reports, to the same
  // destinations. Untimed versions (issued_us 0) supersede nothing and are superseded by
  // nothing. False ("send"): arrival order alone, nothing is discarded.
  bool versions_by_issued = true;
};

// What recording a mapping did besides keeping the record.
struct RecordOutcome {
  // Deliveries of other messages discarded because the record queued a newer version of one of
  // their reports (MappingRecord::versions_by_issued).
  std::int64_t superseded = 0;
};

struct ReportHistory {
  std::int64_t first_message_id = 0;
  std::int64_t last_message_id = 0;
  // The newest version of the report queued so far: the latest DiagnosticReport.issued among
  // those messages, and the message that carried it. Both 0 when none carried an issued time.
  std::int64_t latest_issued_us = 0;
  std::int64_t latest_issued_message_id = 0;
};

// What waits for the mapping worker, for /metrics: the messages to_map() would return from the
// worker's watermark, counted rather than read.
struct MappingBacklog {
  std::int64_t pending = 0;  // received messages with no mapping yet, and replayed ones
  // Since when the one that has waited longest waits: its receipt, or for a replayed one the
  // replay. 0 when none.
  std::int64_t oldest_since_us = 0;
};

class InboxStore {
 public:
  virtual ~InboxStore() = default;

  // Called once the batch is durable (or failed). Runs on a thread of the store's own: the
  // callee must not block and should post its work to its own executor.
  using AppendCallback = std::function<void(Result<std::vector<AppendOutcome>>)>;

  // Appends the messages atomically (all or none), with duplicate detection on
  // (sender_application, sender_facility, control_id) among messages that are not rejected.
  // Rejected messages and messages with an empty control ID are never duplicates. Concurrent
  // callers share commits (group commit); each callback still follows its own durable commit.
  virtual void append(std::vector<InboundMessage> messages, AppendCallback done) = 0;

  virtual Result<std::optional<StoredMessage>> get(std::int64_t id) = 0;
  virtual Result<std::vector<StoredMessage>> find(const MessageQuery& query) = 0;
  virtual Result<std::int64_t> count(std::optional<MessageState> state) = 0;

  // Mapping. Messages to map: received (not rejected) messages with id > after_id that have no
  // mapping yet, and any message whose mapping is pending (replayed), in id order.
  virtual Result<std::vector<StoredMessage>> to_map(std::int64_t after_id, std::size_t limit) = 0;
  // Where to resume after a restart: the highest message id that has a mapping (messages are
  // mapped and recorded in id order, so the ones below it have theirs), or 0.
  virtual Result<std::int64_t> mapping_watermark() = 0;
  // How many messages wait to be mapped and since when (one indexed query: received messages
  // above mapping_watermark(), plus pending mappings of received messages). A replayed message
  // waits from its replay, not from its receipt.
  virtual Result<MappingBacklog> mapping_backlog() = 0;
  // Records (replaces) the mapping of a message and, when it is mapped, queues its deliveries in
  // the same transaction; `done` runs once it is durable (store thread).
  using RecordCallback = std::function<void(Result<RecordOutcome>)>;
  virtual void record_mapping(MappingRecord record, RecordCallback done) = 0;
  virtual Result<std::optional<MappingRecord>> mapping_of(std::int64_t message_id) = 0;
  // The messages that were queued for delivery about a report (`order_key`, see outbox.h): the
  // first and the last by id, and the newest version by issued time, or nothing. Kept apart
  // from the deliveries, which retention purges, so that a final result months after the
  // preliminary one still finds it. The mapping step maps a message with $source.supersedes
  // when it is a later version of a report already queued, and holds back an older version
  // (MappingWorker::map_stored).
  virtual Result<std::optional<ReportHistory>> report_history(std::string_view order_key) = 0;
  // Replay: marks mappings pending again, so the daemon maps those messages with the templates
  // it has now. One message, or (no id) every mapping_failed one. Returns how many.
  virtual Result<std::int64_t> requeue_mappings(std::optional<std::int64_t> message_id) = 0;

  // Retention. Up to `limit` messages received before `cutoff_us` whose work is finished (mapped,
  // and every delivery delivered or discarded), oldest first, are removed with their mapping,
  // deliveries and attempts; with `payload_only`, only their raw bytes, Bundle, issues and
  // server responses are emptied (the rows stay for counts and lookups). Pending,
  // mapping-failed, dead-letter and rejected messages are never purged. Returns how many.
  virtual Result<std::int64_t> purge_finished(std::int64_t cutoff_us, bool payload_only,
                                              std::size_t limit) = 0;

  // Waits for every pending append to complete and stops accepting new ones (they fail with
  // store_unavailable). Idempotent.
  virtual void close() = 0;
};

// Calls `start(callback)` and blocks until the callback has run; returns what it was given. The
// state is shared with the callback rather than living on this stack frame: a store may still
// hold (and destroy) its copy of the callback after we have returned.
template <class R, class Start>
R call_and_wait(Start&& start) {
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<R> result;
  };
  auto waiter = std::make_shared<Waiter>();
  start([waiter](R result) {
    std::lock_guard lock(waiter->mu);
    waiter->result.emplace(std::move(result));
    waiter->cv.notify_one();
  });
  std::unique_lock lock(waiter->mu);
  waiter->cv.wait(lock, [&] { return waiter->result.has_value(); });
  return std::move(*waiter->result);
}

// Blocking conveniences over append() and record_mapping(), for tools, workers and tests (never
// on an I/O thread).
Result<std::vector<AppendOutcome>> append_and_wait(InboxStore& store,
                                                   std::vector<InboundMessage> messages);
Result<RecordOutcome> record_mapping_and_wait(InboxStore& store, MappingRecord record);

}  // namespace adapter::store
