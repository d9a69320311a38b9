// SqliteStore: the InboxStore on one SQLite file, for a single adapterd instance.
//
// Durability: WAL journal with synchronous=FULL, so every COMMIT fsyncs the WAL before an append
// callback reports success; the file survives SIGKILL at any instant, and power loss after a
// success callback does not lose the message.
//
// Group commit: one writer thread owns the write connection. append() only queues; the writer
// takes everything queued (up to max_batch messages) into one transaction, one SAVEPOINT per
// append() so that each is atomic on its own, commits once, then runs the callbacks. Requests that
// arrive during a commit form the next batch, so throughput grows with concurrent callers.
//
// Thread safety: every public method may be called from any thread. Callbacks run on the writer
// thread (or, once closed, on the caller's thread) and must not block or call close(). Reads use
// their own connection under a mutex and do not wait for the writer.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "store/inbox_store.h"
#include "store/outbox.h"

namespace adapter::store {
namespace sqlite {
struct MappingWrite;
struct DeliveryWrite;
struct Request;
}  // namespace sqlite

struct SqliteStoreOptions {
  std::string path;             // the database file; missing parent directories are created
  std::size_t max_batch = 512;  // messages per commit at most (an append() larger than this
                                // still commits whole, alone)
  std::chrono::milliseconds busy_timeout{5000};  // how long to wait for a lock held by another
                                                 // connection (another process, a backup tool)
  // Tests only: caps the file at this many pages (PRAGMA max_page_count) so that "disk full" can
  // be provoked deterministically.
  std::optional<int> max_page_count_for_test;
};

// Counters since open(), for /stats and tests. Read independently, so not a consistent snapshot.
struct SqliteStoreStats {
  std::uint64_t batches = 0;          // transactions the writer started (or tried to)
  std::uint64_t commits = 0;          // successful COMMITs, i.e. WAL fsyncs for appends
  std::uint64_t failed_batches = 0;   // transactions that could not begin or commit
  std::uint64_t requests = 0;         // append() calls that succeeded
  std::uint64_t messages = 0;         // messages in them (stored, duplicate or conflict)
  std::uint64_t failed_requests = 0;  // append() calls that got an error
  std::size_t queued = 0;             // append() calls waiting for the writer right now
  std::uint64_t checkpoints = 0;      // background WAL checkpoints completed
};

class SqliteStore final : public InboxStore, public Outbox {
 public:
  // Opens (creating if needed) and migrates the database, then starts the writer thread.
  // Errors: bad_config (empty path, schema newer than this binary, not an adapterd database),
  // io_error (cannot create the parent directory), store_unavailable (SQLite cannot open it or
  // cannot enable WAL).
  static Result<std::unique_ptr<SqliteStore>> open(const SqliteStoreOptions& options);

  ~SqliteStore() override;  // close(), then closes the connections
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  void append(std::vector<InboundMessage> messages, AppendCallback done) override;
  Result<std::optional<StoredMessage>> get(std::int64_t id) override;
  Result<std::vector<StoredMessage>> find(const MessageQuery& query) override;
  Result<std::int64_t> count(std::optional<MessageState> state) override;
  Result<std::vector<StoredMessage>> to_map(std::int64_t after_id, std::size_t limit) override;
  Result<std::int64_t> mapping_watermark() override;
  Result<MappingBacklog> mapping_backlog() override;
  void record_mapping(MappingRecord record, InboxStore::RecordCallback done) override;
  Result<std::optional<MappingRecord>> mapping_of(std::int64_t message_id) override;
  Result<std::optional<ReportHistory>> report_history(std::string_view order_key) override;
  Result<std::int64_t> requeue_mappings(std::optional<std::int64_t> message_id) override;
  Result<std::int64_t> purge_finished(std::int64_t cutoff_us, bool payload_only,
                                      std::size_t limit) override;

  Result<std::vector<DueDelivery>> due_deliveries(std::string_view destination, std::int64_t now_us,
                                                  std::size_t limit) override;
  Result<std::optional<std::int64_t>> next_due_at(std::string_view destination) override;
  void record_delivery(DeliveryUpdate update, Outbox::StatusCallback done) override;
  Result<std::vector<DeliveryRecord>> deliveries_of(std::int64_t message_id) override;
  Result<std::vector<DeliveryAttempt>> attempts_of(std::int64_t message_id) override;
  Result<std::vector<DeliveryRecord>> find_deliveries(const DeliveryQuery& query) override;
  Result<OutboxCounts> outbox_counts(std::string_view destination) override;
  Result<std::int64_t> retry_dead_letters(std::optional<std::int64_t> message_id) override;
  Result<std::int64_t> discard_dead_letters(std::int64_t message_id, std::string reason) override;

  // Stops accepting, commits everything already queued, runs its callbacks and joins the writer.
  // Reads keep working until destruction. Idempotent; concurrent callers all wait for the drain.
  void close() override;

  SqliteStoreStats stats() const;
  const std::string& path() const;

 private:
  struct Impl;  // keeps sqlite3.h and the threading out of this header
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  void append_mapping_write(sqlite::MappingWrite write, AppendCallback done);
  void append_delivery_write(sqlite::DeliveryWrite write, AppendCallback done);
  // Queues a request for the writer thread, or fails it at once once closed.
  void enqueue(sqlite::Request request);
  Result<std::int64_t> delivery_write_and_wait(sqlite::DeliveryWrite write);

  std::unique_ptr<Impl> impl_;
};

}  // namespace adapter::store
