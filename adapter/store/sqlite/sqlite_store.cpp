#include "store/sqlite/sqlite_store.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "common/log.h"
#include "store/sqlite/connection.h"
#include "store/sqlite/migrations.h"
#include "store/sqlite/reader.h"
#include "store/sqlite/writer.h"

namespace adapter::store {

using sqlite::AppendResult;
using sqlite::configure_writer;
using sqlite::Counters;
using sqlite::DbPtr;
using sqlite::DeliveryWrite;
using sqlite::directory_of;
using sqlite::MappingWrite;
using sqlite::open_connection;
using sqlite::pragma;
using sqlite::prepare_directory;
using sqlite::Reader;
using sqlite::Request;
using sqlite::sync_directory;
using sqlite::Writer;

struct SqliteStore::Impl {
  SqliteStoreOptions options;
  std::unique_ptr<Writer> writer;  // touched only by the writer thread once it runs
  std::unique_ptr<Reader> reader;  // declared after `writer`: closed first, so that the writer
                                   // connection is the last one and checkpoints the WAL away
  Counters counters;

  std::mutex mu;                 // guards the three fields below
  std::condition_variable wake;  // signalled when `queue` grows or `accepting` turns false
  std::deque<Request> queue;
  bool accepting = true;

  std::mutex close_mu;  // serializes close(): held while joining `thread`
  std::thread thread;
  std::thread::id thread_id;  // set before open() returns, then constant

  void writer_loop();
  std::vector<Request> take_batch();
};

// Blocks until there is work; returns the next batch, or nothing once closed and drained.
std::vector<Request> SqliteStore::Impl::take_batch() {
  std::vector<Request> batch;
  std::unique_lock lock(mu);
  wake.wait(lock, [&] { return !queue.empty() || !accepting; });
  std::size_t messages = 0;
  while (!queue.empty()) {
    const std::size_t n = queue.front().messages.size();
    // A request is never split (it is atomic), so one larger than max_batch commits alone.
    if (!batch.empty() && messages + n > options.max_batch) break;
    messages += n;
    batch.push_back(std::move(queue.front()));
    queue.pop_front();
  }
  return batch;
}

void SqliteStore::Impl::writer_loop() {
  for (;;) {
    std::vector<Request> batch = take_batch();
    if (batch.empty()) return;

    std::vector<AppendResult> results;
    try {
      results = writer->run_batch(batch, counters);
    } catch (...) {  // e.g. bad_alloc: no callback may be left hanging, no txn left open
      writer->abandon();
      log::error("store.writer_exception", {});
      const AppendResult failure = make_error(Errc::internal, "store writer: unexpected exception");
      results.assign(batch.size(), failure);
    }

    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (results[i]) {
        counters.requests.fetch_add(1, std::memory_order_relaxed);
        counters.messages.fetch_add(batch[i].messages.size(), std::memory_order_relaxed);
      } else {
        counters.failed_requests.fetch_add(1, std::memory_order_relaxed);
      }
      if (!batch[i].done) continue;
      try {
        batch[i].done(std::move(results[i]));
      } catch (const std::exception& e) {
        // A throwing callback is the caller's bug; the other callers still get their answers.
        log::error("store.callback_threw", {{"error", e.what()}});
      } catch (...) {
        log::error("store.callback_threw", {{"error", "unknown exception"}});
      }
    }
    // Between transactions and after this batch's ACKs are on their way (see writer.h).
    writer->checkpoint_if_due(counters);
  }
}

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteStore::~SqliteStore() {
  close();
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const SqliteStoreOptions& options) {
  if (options.path.empty()) return make_error(Errc::bad_config, "the store path is empty");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->options.max_batch = std::max<std::size_t>(options.max_batch, 1);

  if (Status s = prepare_directory(options.path); !s) return s.error();

  Result<DbPtr> write_db = open_connection(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                           options.busy_timeout);
  if (!write_db) return std::move(write_db).error();
  if (Status s = configure_writer(write_db->get()); !s) return s.error();
  if (Status s = migrate(write_db->get()); !s) return s.error();
  if (options.max_page_count_for_test) {
    const std::string sql =
        "PRAGMA max_page_count = " + std::to_string(*options.max_page_count_for_test);
    if (Result<std::string> r = pragma(write_db->get(), sql.c_str()); !r) {
      return std::move(r).error();
    }
  }
  Result<std::unique_ptr<Writer>> writer = Writer::create(std::move(*write_db));
  if (!writer) return std::move(writer).error();
  impl->writer = std::move(*writer);

  // Opened after the writer has switched the file to WAL, which a read-only connection cannot do.
  Result<DbPtr> read_db = open_connection(options.path, SQLITE_OPEN_READONLY, options.busy_timeout);
  if (!read_db) return std::move(read_db).error();
  Result<std::unique_ptr<Reader>> reader = Reader::create(std::move(*read_db));
  if (!reader) return std::move(reader).error();
  impl->reader = std::move(*reader);

  // The database file may be new: make its directory entry durable before acknowledging anything.
  if (Status s = sync_directory(directory_of(options.path)); !s) return s.error();

  Impl* raw = impl.get();
  try {
    impl->thread = std::thread([raw] { raw->writer_loop(); });
  } catch (const std::system_error& e) {
    return make_error(Errc::store_unavailable,
                      std::string("cannot start the store writer thread: ") + e.what());
  }
  impl->thread_id = impl->thread.get_id();
  log::info("store.opened", {{"path", options.path},
                             {"schema_version", latest_schema_version()},
                             {"max_batch", impl->options.max_batch}});
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

void SqliteStore::append(std::vector<InboundMessage> messages, AppendCallback done) {
  enqueue(Request{std::move(messages), std::move(done), std::nullopt, std::nullopt});
}

void SqliteStore::enqueue(Request request) {
  Impl& s = *impl_;
  {
    std::unique_lock lock(s.mu);
    if (s.accepting) {
      s.queue.push_back(std::move(request));
      lock.unlock();
      s.wake.notify_one();
      return;
    }
  }
  s.counters.failed_requests.fetch_add(1, std::memory_order_relaxed);
  if (request.done) {
    request.done(make_error(Errc::store_unavailable, "the message store is closed"));
  }
}

Result<std::optional<StoredMessage>> SqliteStore::get(std::int64_t id) {
  return impl_->reader->get(id);
}

Result<std::vector<StoredMessage>> SqliteStore::find(const MessageQuery& query) {
  return impl_->reader->find(query);
}

Result<std::int64_t> SqliteStore::count(std::optional<MessageState> state) {
  return impl_->reader->count(state);
}

Result<std::vector<StoredMessage>> SqliteStore::to_map(std::int64_t after_id, std::size_t limit) {
  return impl_->reader->to_map(after_id, limit);
}

Result<std::int64_t> SqliteStore::mapping_watermark() {
  return impl_->reader->mapping_watermark();
}

Result<MappingBacklog> SqliteStore::mapping_backlog() {
  return impl_->reader->mapping_backlog();
}

Result<std::optional<MappingRecord>> SqliteStore::mapping_of(std::int64_t message_id) {
  return impl_->reader->mapping_of(message_id);
}

Result<std::optional<ReportHistory>> SqliteStore::report_history(std::string_view order_key) {
  return impl_->reader->report_history(order_key);
}

// Mapping writes share the writer thread (and its group commit) with intake: one write
// connection means no lock contention that could delay an ACK.
void SqliteStore::record_mapping(MappingRecord record, InboxStore::RecordCallback done) {
  MappingWrite write;
  write.record = std::move(record);
  append_mapping_write(std::move(write),
                       [done = std::move(done)](const Result<std::vector<AppendOutcome>>& r) {
                         if (!done) return;
                         if (!r) return done(r.error());
                         // The writer's count for a mapping record: the deliveries it superseded.
                         done(RecordOutcome{r->empty() ? 0 : r->front().id});
                       });
}

Result<std::int64_t> SqliteStore::requeue_mappings(std::optional<std::int64_t> message_id) {
  MappingWrite write;
  write.requeue = true;
  write.requeue_id = message_id;
  write.now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  auto changed = call_and_wait<Result<std::vector<AppendOutcome>>>(
      [&](AppendCallback done) { append_mapping_write(std::move(write), std::move(done)); });
  if (!changed) return changed.error();
  return changed->empty() ? std::int64_t{0} : changed->front().id;
}

void SqliteStore::append_mapping_write(MappingWrite write, AppendCallback done) {
  enqueue(Request{{}, std::move(done), std::move(write), std::nullopt});
}

void SqliteStore::append_delivery_write(DeliveryWrite write, AppendCallback done) {
  enqueue(Request{{}, std::move(done), std::nullopt, std::move(write)});
}

Result<std::int64_t> SqliteStore::delivery_write_and_wait(DeliveryWrite write) {
  auto changed = call_and_wait<Result<std::vector<AppendOutcome>>>(
      [&](AppendCallback done) { append_delivery_write(std::move(write), std::move(done)); });
  if (!changed) return changed.error();
  return changed->empty() ? std::int64_t{0} : changed->front().id;
}

Result<std::vector<DueDelivery>> SqliteStore::due_deliveries(std::string_view destination,
                                                             std::int64_t now_us,
                                                             std::size_t limit) {
  return impl_->reader->due_deliveries(destination, now_us, limit);
}

Result<std::optional<std::int64_t>> SqliteStore::next_due_at(std::string_view destination) {
  return impl_->reader->next_due_at(destination);
}

// Delivery outcomes share the writer thread and its group commit, like mapping writes.
void SqliteStore::record_delivery(DeliveryUpdate update, Outbox::StatusCallback done) {
  DeliveryWrite write;
  write.kind = DeliveryWrite::Kind::update;
  write.update = std::move(update);
  append_delivery_write(std::move(write),
                        [done = std::move(done)](const Result<std::vector<AppendOutcome>>& r) {
                          if (done) done(r ? Status{} : Status(r.error()));
                        });
}

Result<std::vector<DeliveryRecord>> SqliteStore::deliveries_of(std::int64_t message_id) {
  return impl_->reader->deliveries_of(message_id);
}

Result<std::vector<DeliveryAttempt>> SqliteStore::attempts_of(std::int64_t message_id) {
  return impl_->reader->attempts_of(message_id);
}

Result<std::vector<DeliveryRecord>> SqliteStore::find_deliveries(const DeliveryQuery& query) {
  return impl_->reader->find_deliveries(query);
}

Result<OutboxCounts> SqliteStore::outbox_counts(std::string_view destination) {
  return impl_->reader->outbox_counts(destination);
}

Result<std::int64_t> SqliteStore::retry_dead_letters(std::optional<std::int64_t> message_id) {
  DeliveryWrite write;
  write.kind = DeliveryWrite::Kind::retry_dead_letters;
  write.message_id = message_id;
  write.now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  return delivery_write_and_wait(std::move(write));
}

Result<std::int64_t> SqliteStore::discard_dead_letters(std::int64_t message_id,
                                                       std::string reason) {
  DeliveryWrite write;
  write.kind = DeliveryWrite::Kind::discard_dead_letters;
  write.message_id = message_id;
  write.reason = std::move(reason);
  return delivery_write_and_wait(std::move(write));
}

Result<std::int64_t> SqliteStore::purge_finished(std::int64_t cutoff_us, bool payload_only,
                                                 std::size_t limit) {
  DeliveryWrite write;
  write.kind = DeliveryWrite::Kind::purge;
  write.now_us = cutoff_us;
  write.payload_only = payload_only;
  write.limit = static_cast<std::int64_t>(limit);
  return delivery_write_and_wait(std::move(write));
}

void SqliteStore::close() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    s.accepting = false;
  }
  s.wake.notify_all();
  if (std::this_thread::get_id() == s.thread_id) {
    // Joining ourselves would deadlock; the writer stops after this batch and a later close()
    // (or the destructor) on another thread joins it.
    log::error("store.close_from_callback", {});
    return;
  }
  std::lock_guard close_lock(s.close_mu);
  if (s.thread.joinable()) s.thread.join();
}

SqliteStoreStats SqliteStore::stats() const {
  const Counters& c = impl_->counters;
  SqliteStoreStats stats;
  stats.batches = c.batches.load(std::memory_order_relaxed);
  stats.commits = c.commits.load(std::memory_order_relaxed);
  stats.failed_batches = c.failed_batches.load(std::memory_order_relaxed);
  stats.requests = c.requests.load(std::memory_order_relaxed);
  stats.messages = c.messages.load(std::memory_order_relaxed);
  stats.failed_requests = c.failed_requests.load(std::memory_order_relaxed);
  stats.checkpoints = c.checkpoints.load(std::memory_order_relaxed);
  {
    std::lock_guard lock(impl_->mu);
    stats.queued = impl_->queue.size();
  }
  return stats;
}

const std::string& SqliteStore::path() const {
  return impl_->options.path;
}

}  // namespace adapter::store
