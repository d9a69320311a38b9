// The store's write side: the one write connection, used by the writer thread only (after
// SqliteStore::open()). A batch of append requests becomes one transaction, each request inside
// its own savepoint, and successes are reported only after COMMIT (and its fsync) returned.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "store/inbox_store.h"
#include "store/outbox.h"
#include "store/sqlite/connection.h"

namespace adapter::store::sqlite {

using AppendResult = Result<std::vector<AppendOutcome>>;

// What the mapping side writes: a mapping result, or a replay (requeue).
struct MappingWrite {
  std::optional<MappingRecord> record;
  bool requeue = false;
  std::optional<std::int64_t> requeue_id;  // with requeue: one message, or every failed one
  std::int64_t now_us = 0;                 // with requeue: when (pending_since_us)
};

// What the delivery side writes: an attempt's outcome, or an operator's dead-letter decision.
struct DeliveryWrite {
  enum class Kind { update, retry_dead_letters, discard_dead_letters, purge };
  Kind kind = Kind::update;
  std::optional<DeliveryUpdate> update;    // with update
  std::optional<std::int64_t> message_id;  // with retry (none: every dead letter) and discard
  std::string reason;                      // with discard
  std::int64_t now_us = 0;                 // with retry: the new queued_at_us; purge: cutoff
  bool payload_only = false;               // with purge
  std::int64_t limit = 0;                  // with purge: most messages per write
};

// One append() of messages, or one mapping or delivery write (then `messages` is empty and the
// result holds one AppendOutcome whose `id` is the number of rows the write changed; for a
// mapping record, the number of other messages' deliveries it discarded as superseded).
struct Request {
  std::vector<InboundMessage> messages;
  InboxStore::AppendCallback done;
  std::optional<MappingWrite> mapping;
  std::optional<DeliveryWrite> delivery;
};

struct Counters {
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> commits{0};
  std::atomic<std::uint64_t> failed_batches{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> messages{0};
  std::atomic<std::uint64_t> failed_requests{0};
  std::atomic<std::uint64_t> checkpoints{0};
};

class Writer {
 public:
  static Result<std::unique_ptr<Writer>> create(DbPtr db);

  // Runs one batch in one transaction and returns one result per request, in order. Successes
  // are returned only once COMMIT has returned SQLITE_OK.
  std::vector<AppendResult> run_batch(std::vector<Request>& batch, Counters& counters);

  // Copies the WAL into the database file once it has grown past kCheckpointPages. Called by
  // the writer thread after a batch's callbacks, so no ACK waits for it (SQLite's own
  // auto-checkpoint runs inside a COMMIT, before that batch's ACKs). Done between transactions,
  // it lets the next one restart the WAL from its beginning: the WAL file is overwritten, never
  // grown, and an fsync of overwritten blocks costs about half that of appended ones.
  void checkpoint_if_due(Counters& counters);
  static constexpr int kCheckpointPages = 1000;

  // Abandons whatever is in progress (after an unexpected exception).
  void abandon() { rollback_if_open(); }

 private:
  explicit Writer(DbPtr db) : db_(std::move(db)) {}
  static int on_wal_commit(void* self, sqlite3* db, const char* schema, int wal_pages);

  sqlite3* db() const { return db_.get(); }

  void rollback_if_open();

  // One append() inside its own savepoint: all of its messages or none.
  AppendResult apply_request(const Request& request);

  // Rolls back the current request only. If that fails, the request's partial work must not
  // reach COMMIT, so the whole transaction goes.
  void undo_request();

  Result<AppendOutcome> apply_message(const InboundMessage& m);
  Result<AppendOutcome> apply_mapping(const MappingWrite& w);
  // Queues a mapped record's deliveries and records its reports; returns how many open
  // deliveries of older versions of those reports it discarded (see MappingRecord).
  Result<std::int64_t> queue_deliveries(const MappingRecord& r);
  Result<AppendOutcome> apply_delivery(const DeliveryWrite& w);

  Result<std::int64_t> insert(const InboundMessage& m, std::string_view sha, MessageState state,
                              std::string_view error, std::string_view ack_code);

  DbPtr db_;  // declared first: destroyed after the statements
  StmtPtr begin_, commit_, rollback_, savepoint_, release_, rollback_to_;
  StmtPtr lookup_, insert_, bump_duplicate_;
  StmtPtr upsert_mapping_, requeue_one_, requeue_failed_;
  StmtPtr upsert_delivery_, update_delivery_, insert_attempt_, record_report_, record_version_;
  StmtPtr requeue_dead_mapping_one_, requeue_dead_mapping_all_, retry_dead_one_, retry_dead_all_;
  StmtPtr discard_dead_, discard_held_back_, discard_superseded_;
  // Retention (purge): the chosen ids go into a temporary table, then every table drops them.
  StmtPtr purge_clear_;
  StmtPtr purge_choose_;
  StmtPtr purge_choose_payload_;
  StmtPtr purge_attempts_;
  StmtPtr purge_deliveries_;
  StmtPtr purge_versions_;
  StmtPtr purge_mappings_;
  StmtPtr purge_messages_;
  StmtPtr purge_payload_messages_;
  StmtPtr purge_payload_mappings_;
  StmtPtr purge_payload_deliveries_;
  bool cannot_commit_ = false;  // a request could not be undone and ROLLBACK failed too
  int wal_pages_ = 0;           // WAL size after the last commit (from sqlite3_wal_hook)
};

// WAL + synchronous=FULL on the write connection, each read back (see writer.cpp).
Status configure_writer(sqlite3* db);

}  // namespace adapter::store::sqlite
