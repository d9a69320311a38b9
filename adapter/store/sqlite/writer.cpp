#include "store/sqlite/writer.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "common/instants.h"
#include "common/log.h"
#include "common/sha256.h"

namespace adapter::store::sqlite {

Result<std::unique_ptr<Writer>> Writer::create(DbPtr db) {
  auto writer = std::unique_ptr<Writer>(new Writer(std::move(db)));
  sqlite3* d = writer->db_.get();
  // Replaces SQLite's auto-checkpoint (which would run inside COMMIT): see checkpoint_if_due().
  sqlite3_wal_hook(d, &Writer::on_wal_commit, writer.get());
  // Retention's scratch list (per connection, never on disk in the store file).
  if (Result<StmtPtr> t = prepare(d,
                                  "CREATE TEMP TABLE IF NOT EXISTS purge_ids "
                                  "(id INTEGER PRIMARY KEY)");
      !t) {
    return std::move(t).error();
  } else if (Status st = run_statement(d, t->get(), "create purge list"); !st) {
    return st.error();
  }
  struct {
    StmtPtr* stmt;
    std::string_view sql;
  } const statements[] = {
      // IMMEDIATE takes the write lock at BEGIN: a lock conflict shows up there, before any work.
      {&writer->begin_, "BEGIN IMMEDIATE"},
      {&writer->commit_, "COMMIT"},
      {&writer->rollback_, "ROLLBACK"},
      {&writer->savepoint_, "SAVEPOINT append_request"},
      {&writer->release_, "RELEASE append_request"},
      {&writer->rollback_to_, "ROLLBACK TO append_request"},
      // The two literal terms repeat the partial index's WHERE clause so that the planner may
      // use the index (it cannot infer `control_id <> ''` from a bound parameter).
      {&writer->lookup_,
       "SELECT id, content_sha256 FROM messages WHERE sender_application = ? AND "
       "sender_facility = ? AND control_id = ? AND state <> 'rejected' AND control_id <> ''"},
      {&writer->insert_,
       "INSERT INTO messages (received_at_us, listener, peer, sender_application, "
       "sender_facility, control_id, message_type, content_sha256, state, error, ack_code, raw) "
       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
      {&writer->bump_duplicate_,
       "UPDATE messages SET duplicate_count = duplicate_count + 1, last_duplicate_at_us = ? "
       "WHERE id = ?"},
      {&writer->upsert_mapping_,
       "INSERT INTO mappings (message_id, state, template, template_version, template_set, "
       "issues, unmapped, mapped_at_us, bundle) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
       "ON CONFLICT (message_id) DO UPDATE SET state = excluded.state, "
       "template = excluded.template, template_version = excluded.template_version, "
       "template_set = excluded.template_set, issues = excluded.issues, "
       "unmapped = excluded.unmapped, "
       "mapped_at_us = excluded.mapped_at_us, bundle = excluded.bundle, "
       "attempts = attempts + 1"},
      {&writer->requeue_one_,
       "UPDATE mappings SET state = 'pending', pending_since_us = ?1 WHERE message_id = ?2"},
      {&writer->requeue_failed_,
       "UPDATE mappings SET state = 'pending', pending_since_us = ?1 "
       "WHERE state = 'mapping_failed'"},
      // A replayed message is queued again from scratch: the destination deduplicates on the
      // resources' business identifiers (ifNoneExist), so sending it again creates nothing twice.
      {&writer->upsert_delivery_,
       "INSERT INTO deliveries (message_id, destination, order_key, state, queued_at_us, "
       "next_attempt_at_us) VALUES (?1, ?2, ?3, 'pending', ?4, ?4) "
       "ON CONFLICT (message_id, destination) DO UPDATE SET order_key = excluded.order_key, "
       "state = 'pending', attempts = 0, queued_at_us = excluded.queued_at_us, "
       "next_attempt_at_us = excluded.next_attempt_at_us, last_error = '', "
       "discard_reason = ''"},
      // The newest version is the greatest issued time; of two messages with the same one (a
      // resend), the later. Every SET reads the row as it was before the update.
      {&writer->record_report_,
       "INSERT INTO reports (order_key, first_message_id, last_message_id, latest_issued_us, "
       "latest_issued_message_id) VALUES (?1, ?2, ?2, ?3, CASE WHEN ?3 > 0 THEN ?2 ELSE 0 END) "
       "ON CONFLICT (order_key) DO UPDATE SET "
       "first_message_id = min(first_message_id, excluded.first_message_id), "
       "last_message_id = max(last_message_id, excluded.last_message_id), "
       "latest_issued_message_id = CASE WHEN excluded.latest_issued_us > latest_issued_us OR "
       "(excluded.latest_issued_us = latest_issued_us AND excluded.latest_issued_us > 0 AND "
       "excluded.latest_issued_message_id > latest_issued_message_id) "
       "THEN excluded.latest_issued_message_id ELSE latest_issued_message_id END, "
       "latest_issued_us = max(latest_issued_us, excluded.latest_issued_us)"},
      // The version of a report this message carried; a replay replaces it.
      {&writer->record_version_,
       "INSERT INTO report_versions (message_id, order_key, issued_us) VALUES (?1, ?2, ?3) "
       "ON CONFLICT (message_id, order_key) DO UPDATE SET issued_us = excluded.issued_us"},
      // A newer version queued for a destination: the open deliveries there of other messages
      // carrying an older (timed) version of the report would put it back, since deliveries go
      // out in message order (or when an operator retries a dead letter), not in issued order.
      {&writer->discard_superseded_,
       "UPDATE deliveries SET state = 'discarded', discard_reason = ?1 WHERE destination = ?2 "
       "AND state IN ('pending', 'dead_letter') AND message_id IN (SELECT message_id FROM "
       "report_versions WHERE order_key = ?3 AND issued_us > 0 AND issued_us < ?4 AND "
       "message_id <> ?5)"},
      // Guarded by state = 'pending': an operator's discard or retry in between wins.
      {&writer->update_delivery_,
       "UPDATE deliveries SET state = ?1, attempts = attempts + 1, next_attempt_at_us = ?2, "
       "last_attempt_at_us = ?3, last_status = ?4, last_error = ?5, response = ?6, "
       "delivered_at_us = ?7 WHERE message_id = ?8 AND destination = ?9 AND state = 'pending'"},
      {&writer->insert_attempt_,
       "INSERT INTO delivery_attempts (message_id, destination, number, started_at_us, "
       "duration_us, status, outcome, error) VALUES (?1, ?2, (SELECT coalesce(max(number), 0) + 1 "
       "FROM delivery_attempts WHERE message_id = ?1 AND destination = ?2), ?3, ?4, ?5, ?6, ?7)"},
      // Retrying a dead letter maps the message again first (a fixed template takes effect);
      // the delivery waits for that mapping (due_deliveries wants a `mapped` one).
      {&writer->requeue_dead_mapping_one_,
       "UPDATE mappings SET state = 'pending', pending_since_us = ?2 WHERE message_id = ?1 AND "
       "EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = ?1 AND d.state = 'dead_letter')"},
      {&writer->requeue_dead_mapping_all_,
       "UPDATE mappings SET state = 'pending', pending_since_us = ?1 WHERE message_id IN "
       "(SELECT message_id FROM deliveries WHERE state = 'dead_letter')"},
      {&writer->retry_dead_one_,
       "UPDATE deliveries SET state = 'pending', attempts = 0, queued_at_us = ?1, "
       "next_attempt_at_us = ?1 WHERE message_id = ?2 AND state = 'dead_letter'"},
      {&writer->retry_dead_all_,
       "UPDATE deliveries SET state = 'pending', attempts = 0, queued_at_us = ?1, "
       "next_attempt_at_us = ?1 WHERE state = 'dead_letter'"},
      // A replayed or retried message now held back (an older version of its report): its
      // deliveries still open would send the new Bundle; they are discarded with the mapping.
      {&writer->discard_held_back_,
       "UPDATE deliveries SET state = 'discarded', discard_reason = ?1 WHERE message_id = ?2 "
       "AND state IN ('pending', 'dead_letter')"},
      {&writer->discard_dead_,
       "UPDATE deliveries SET state = 'discarded', discard_reason = ?1 WHERE message_id = ?2 "
       "AND state = 'dead_letter'"},
      // Retention: messages received before the cutoff whose work is finished (mapped, and
      // every delivery delivered or discarded), oldest first. Pending, failed, dead-letter and
      // rejected messages are kept whatever their age: they still need a person or a retry.
      // The newest message row is never deleted: SQLite gives a new row max(id) + 1, so deleting
      // it would hand its id (and the ids below it, down to the next row kept) to the next
      // messages, which the mapping worker's watermark has passed and a client's status URL
      // names.
      {&writer->purge_clear_, "DELETE FROM temp.purge_ids"},
      {&writer->purge_choose_,
       "INSERT INTO temp.purge_ids SELECT m.id FROM messages m JOIN mappings p ON p.message_id = "
       "m.id WHERE m.received_at_us < ?1 AND m.state = 'received' AND p.state = 'mapped' AND NOT "
       "EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state NOT IN "
       "('delivered', 'discarded')) AND m.id < (SELECT max(id) FROM messages) ORDER BY m.id "
       "LIMIT ?2"},
      {&writer->purge_choose_payload_,
       "INSERT INTO temp.purge_ids SELECT m.id FROM messages m JOIN mappings p ON p.message_id = "
       "m.id WHERE m.received_at_us < ?1 AND m.state = 'received' AND p.state = 'mapped' AND "
       "length(m.raw) > 0 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id "
       "AND d.state NOT IN ('delivered', 'discarded')) ORDER BY m.id LIMIT ?2"},
      {&writer->purge_attempts_,
       "DELETE FROM delivery_attempts WHERE message_id IN (SELECT id FROM temp.purge_ids)"},
      {&writer->purge_versions_,
       "DELETE FROM report_versions WHERE message_id IN (SELECT id FROM temp.purge_ids)"},
      {&writer->purge_deliveries_,
       "DELETE FROM deliveries WHERE message_id IN (SELECT id FROM temp.purge_ids)"},
      {&writer->purge_mappings_,
       "DELETE FROM mappings WHERE message_id IN (SELECT id FROM temp.purge_ids)"},
      {&writer->purge_messages_,
       "DELETE FROM messages WHERE id IN (SELECT id FROM temp.purge_ids)"},
      {&writer->purge_payload_messages_,
       "UPDATE messages SET raw = x'' WHERE id IN (SELECT id FROM temp.purge_ids)"},
      {&writer->purge_payload_mappings_,
       "UPDATE mappings SET bundle = '', unmapped = '[]', issues = '[]' WHERE message_id IN "
       "(SELECT id FROM temp.purge_ids)"},
      {&writer->purge_payload_deliveries_,
       "UPDATE deliveries SET response = '' WHERE message_id IN (SELECT id FROM temp.purge_ids)"},
  };
  for (const auto& s : statements) {
    Result<StmtPtr> stmt = prepare(d, s.sql);
    if (!stmt) return std::move(stmt).error();
    *s.stmt = std::move(*stmt);
  }
  return writer;
}

std::vector<AppendResult> Writer::run_batch(std::vector<Request>& batch, Counters& counters) {
  std::vector<std::optional<AppendResult>> results(batch.size());
  std::vector<std::size_t> pending(batch.size());
  for (std::size_t i = 0; i < pending.size(); ++i) pending[i] = i;

  // Each pass either commits, fails everything left, or drops one failed request and retries
  // the rest, so there are at most batch.size() passes.
  while (!pending.empty()) {
    counters.batches.fetch_add(1, std::memory_order_relaxed);
    // A previous failure may have left a transaction open if even ROLLBACK failed.
    rollback_if_open();
    if (Status begun = run_statement(db(), begin_.get(), "begin transaction"); !begun) {
      counters.failed_batches.fetch_add(1, std::memory_order_relaxed);
      log::error("store.commit_failed", {{"stage", "begin"}, {"error", begun.error().message}});
      for (std::size_t i : pending) {
        results[i] = make_error(Errc::store_unavailable, begun.error().message);
      }
      break;
    }

    std::optional<std::size_t> lost;  // position in `pending` whose failure ended the txn
    for (std::size_t k = 0; k < pending.size(); ++k) {
      const Request& request = batch[pending[k]];
      AppendResult result = apply_request(request);
      const bool failed = !result.ok();
      if (failed) {
        log::error("store.append_failed",
                   {{"error", result.error().message}, {"messages", request.messages.size()}});
      }
      results[pending[k]] = std::move(result);
      if (failed && (sqlite3_get_autocommit(db()) != 0 || cannot_commit_)) {
        lost = k;
        break;
      }
    }
    if (lost) {
      // SQLite rolled the whole transaction back (some I/O errors and "disk full" do that), or
      // we could not undo a request. The request that hit it keeps its error; the ones before
      // it lost their work and run again in a fresh transaction.
      rollback_if_open();
      if (cannot_commit_) {
        // Not even ROLLBACK worked: nothing more can be trusted in this batch.
        const std::string message = results[pending[*lost]]->error().message;
        for (std::size_t i : pending) {
          if (results[i] && !results[i]->ok()) continue;
          results[i] = make_error(Errc::store_unavailable, message);
        }
        counters.failed_batches.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(*lost));
      continue;
    }

    if (Status committed = run_statement(db(), commit_.get(), "commit"); !committed) {
      rollback_if_open();
      counters.failed_batches.fetch_add(1, std::memory_order_relaxed);
      log::error("store.commit_failed",
                 {{"stage", "commit"}, {"error", committed.error().message}});
      for (std::size_t i : pending) {
        if (results[i]->ok()) {
          results[i] = make_error(Errc::store_unavailable, committed.error().message);
        }
      }
      break;
    }
    counters.commits.fetch_add(1, std::memory_order_relaxed);
    break;
  }

  std::vector<AppendResult> out;
  out.reserve(batch.size());
  for (std::optional<AppendResult>& r : results) out.push_back(std::move(*r));
  return out;
}

AppendResult Writer::apply_request(const Request& request) {
  if (Status s = run_statement(db(), savepoint_.get(), "savepoint"); !s) return s.error();
  if (request.mapping || request.delivery) {
    Result<AppendOutcome> outcome =
        request.mapping ? apply_mapping(*request.mapping) : apply_delivery(*request.delivery);
    if (!outcome) {
      undo_request();
      return std::move(outcome).error();
    }
    if (Status s = run_statement(db(), release_.get(), "release savepoint"); !s) {
      undo_request();
      return s.error();
    }
    return std::vector<AppendOutcome>{*outcome};
  }
  std::vector<AppendOutcome> outcomes;
  outcomes.reserve(request.messages.size());
  for (const InboundMessage& message : request.messages) {
    Result<AppendOutcome> outcome = apply_message(message);
    if (!outcome) {
      undo_request();
      return std::move(outcome).error();
    }
    outcomes.push_back(*outcome);
  }
  if (Status s = run_statement(db(), release_.get(), "release savepoint"); !s) {
    undo_request();
    return s.error();
  }
  return outcomes;
}

void Writer::undo_request() {
  if (sqlite3_get_autocommit(db()) != 0) return;  // SQLite already rolled everything back
  Status s = run_statement(db(), rollback_to_.get(), "rollback to savepoint");
  if (s) s = run_statement(db(), release_.get(), "release savepoint");
  if (!s) {
    log::error("store.rollback_failed", {{"error", s.error().message}});
    rollback_if_open();
    if (sqlite3_get_autocommit(db()) == 0) cannot_commit_ = true;
  }
}

Result<AppendOutcome> Writer::apply_message(const InboundMessage& m) {
  // Without a hash every reuse of a control ID would look like a resend and be dropped as a
  // duplicate; hash the raw bytes rather than risk that.
  std::string computed;
  if (m.content_sha256.empty()) computed = sha256_hex(m.raw);
  const std::string& sha = m.content_sha256.empty() ? computed : m.content_sha256;

  if (m.state == MessageState::received && !m.control_id.empty()) {
    std::optional<std::int64_t> original_id;
    std::string original_sha;
    {
      Call call(lookup_.get());
      call.text(m.sender_application).text(m.sender_facility).text(m.control_id);
      const int rc = call.step();
      if (rc == SQLITE_ROW) {
        original_id = call.column_int64(0);
        original_sha = call.column_bytes(1);
      } else if (rc != SQLITE_DONE) {
        return sqlite_error(db(), rc, "look up control ID");
      }
    }
    if (original_id && original_sha == sha) {
      Call call(bump_duplicate_.get());
      call.integer(m.received_at_us).integer(*original_id);
      const int rc = call.step();
      if (rc != SQLITE_DONE) return sqlite_error(db(), rc, "count duplicate");
      if (sqlite3_changes(db()) != 1) {
        return make_error(Errc::internal,
                          "count duplicate: message " + std::to_string(*original_id) + " vanished");
      }
      return AppendOutcome{Disposition::duplicate, *original_id, *original_id};
    }
    if (original_id) {
      const std::string error = "control ID " + m.control_id + " from " + m.sender_application +
                                "|" + m.sender_facility + " was already accepted as message " +
                                std::to_string(*original_id) + " with different content";
      Result<std::int64_t> id = insert(m, sha, MessageState::rejected, error, "AE");
      if (!id) return std::move(id).error();
      return AppendOutcome{Disposition::conflict, *id, *original_id};
    }
  }
  Result<std::int64_t> id = insert(m, sha, m.state, m.error, m.ack_code);
  if (!id) return std::move(id).error();
  return AppendOutcome{Disposition::stored, *id, 0};
}

Result<std::int64_t> Writer::insert(const InboundMessage& m, std::string_view sha,
                                    MessageState state, std::string_view error,
                                    std::string_view ack_code) {
  Call call(insert_.get());
  call.integer(m.received_at_us)
      .text(m.listener)
      .text(m.peer)
      .text(m.sender_application)
      .text(m.sender_facility)
      .text(m.control_id)
      .text(m.message_type)
      .text(sha)
      .text(to_string(state))
      .text(error)
      .text(ack_code)
      .blob(m.raw);
  const int rc = call.step();
  if (rc != SQLITE_DONE) return sqlite_error(db(), rc, "insert message");
  return static_cast<std::int64_t>(sqlite3_last_insert_rowid(db()));
}

void Writer::rollback_if_open() {
  if (sqlite3_get_autocommit(db()) != 0) {
    cannot_commit_ = false;
    return;
  }
  if (Status s = run_statement(db(), rollback_.get(), "rollback"); !s) {
    log::error("store.rollback_failed", {{"error", s.error().message}});
  }
  cannot_commit_ = sqlite3_get_autocommit(db()) == 0;
}

Status configure_writer(sqlite3* db) {
  // WAL + synchronous=FULL: every COMMIT appends to the WAL and fsyncs it before returning, and a
  // killed process leaves a WAL that the next open replays. Each is read back because SQLite
  // silently keeps the old mode when it cannot switch (e.g. an in-memory database).
  if (Status s = expect_pragma(db, "PRAGMA journal_mode = WAL", "wal"); !s) return s;
  if (Result<std::string> r = pragma(db, "PRAGMA synchronous = FULL"); !r) {
    return std::move(r).error();
  }
  if (Status s = expect_pragma(db, "PRAGMA synchronous", "2"); !s) return s;
  if (Result<std::string> r = pragma(db, "PRAGMA foreign_keys = ON"); !r) {
    return std::move(r).error();
  }
  if (Status s = expect_pragma(db, "PRAGMA foreign_keys", "1"); !s) return s;
  // Should the WAL ever grow large (readers pinning old snapshots), it is cut back to this size
  // after the next checkpoint instead of keeping its high-water mark on disk.
  if (Result<std::string> r = pragma(db, "PRAGMA journal_size_limit = 67108864"); !r) {
    return std::move(r).error();
  }
  return {};
}

int Writer::on_wal_commit(void* self, sqlite3*, const char*, int wal_pages) {
  static_cast<Writer*>(self)->wal_pages_ = wal_pages;
  return SQLITE_OK;
}

void Writer::checkpoint_if_due(Counters& counters) {
  if (wal_pages_ < kCheckpointPages) return;
  int log_pages = 0;
  int copied = 0;
  const int rc =
      sqlite3_wal_checkpoint_v2(db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
    // Not fatal: the WAL keeps the data; the next attempt comes after the next commit.
    log::warn("store.checkpoint_failed", {{"error", describe(db(), rc, "checkpoint")}});
    return;
  }
  wal_pages_ = 0;  // reported again by the next commit
  counters.checkpoints.fetch_add(1, std::memory_order_relaxed);
}

Result<AppendOutcome> Writer::apply_mapping(const MappingWrite& w) {
  if (w.record) {
    const MappingRecord& r = *w.record;
    Call call(upsert_mapping_.get());
    call.integer(r.message_id);
    call.text(to_string(r.state));
    call.text(r.template_name);
    call.text(r.template_version);
    call.text(r.template_set);
    call.text(r.issues_json);
    call.text(r.unmapped_json);
    call.integer(r.mapped_at_us);
    call.text(r.bundle_json);
    if (const int rc = call.step(); rc != SQLITE_DONE) {
      return sqlite_error(db(), rc, "record mapping");
    }
    if (r.state != MappingState::mapped) return AppendOutcome{Disposition::stored, 0, 0};
    Result<std::int64_t> superseded = queue_deliveries(r);
    if (!superseded) return std::move(superseded).error();
    return AppendOutcome{Disposition::stored, *superseded, 0};
  }
  Call call(w.requeue_id ? requeue_one_.get() : requeue_failed_.get());
  call.integer(w.now_us);
  if (w.requeue_id) call.integer(*w.requeue_id);
  if (const int rc = call.step(); rc != SQLITE_DONE) return sqlite_error(db(), rc, "requeue");
  return AppendOutcome{Disposition::stored, sqlite3_changes(db()), 0};
}

Result<std::int64_t> Writer::queue_deliveries(const MappingRecord& r) {
  if (r.held_back) {
    Call call(discard_held_back_.get());
    call.text("held back: an older version of its report than one already sent")
        .integer(r.message_id);
    if (const int rc = call.step(); rc != SQLITE_DONE) {
      return sqlite_error(db(), rc, "discard a held-back message's deliveries");
    }
    return std::int64_t{0};
  }
  for (const std::string& destination : r.deliver_to) {
    Call call(upsert_delivery_.get());
    call.integer(r.message_id).text(destination).text(r.order_key).integer(r.mapped_at_us);
    if (const int rc = call.step(); rc != SQLITE_DONE) {
      return sqlite_error(db(), rc, "queue delivery");
    }
  }
  if (r.deliver_to.empty()) return std::int64_t{0};
  std::int64_t superseded = 0;
  auto record_report = [&](const ReportKey& report) -> Status {
    const std::int64_t issued_us = std::max<std::int64_t>(report.issued_us, 0);
    {
      Call call(record_report_.get());
      call.text(report.key).integer(r.message_id).integer(issued_us);
      if (const int rc = call.step(); rc != SQLITE_DONE) {
        return sqlite_error(db(), rc, "record report history");
      }
    }
    {
      Call call(record_version_.get());
      call.integer(r.message_id).text(report.key).integer(issued_us);
      if (const int rc = call.step(); rc != SQLITE_DONE) {
        return sqlite_error(db(), rc, "record report version");
      }
    }
    // An untimed version is ordered by arrival (the mapping step's rule): it supersedes nothing.
    if (!r.versions_by_issued || issued_us == 0) return {};
    const std::string reason = "superseded: message " + std::to_string(r.message_id) +
                               " sent a newer version of " + report.key + " (issued " +
                               fhir_instant_utc(issued_us) + ")";
    for (const std::string& destination : r.deliver_to) {
      Call call(discard_superseded_.get());
      call.text(reason).text(destination).text(report.key).integer(issued_us).integer(r.message_id);
      if (const int rc = call.step(); rc != SQLITE_DONE) {
        return sqlite_error(db(), rc, "discard superseded deliveries");
      }
      superseded += sqlite3_changes(db());
    }
    return {};
  };
  if (r.report_keys.empty()) {
    if (Status s = record_report(ReportKey{r.order_key}); !s) return s.error();
  }
  for (const ReportKey& report : r.report_keys) {
    if (Status s = record_report(report); !s) return s.error();
  }
  return superseded;
}

Result<AppendOutcome> Writer::apply_delivery(const DeliveryWrite& w) {
  // Runs a bound statement; returns the rows it changed.
  auto step = [this](Call& call, std::string_view what) -> Result<std::int64_t> {
    const int rc = call.step();
    if (rc != SQLITE_DONE) return sqlite_error(db(), rc, what);
    return static_cast<std::int64_t>(sqlite3_changes(db()));
  };
  switch (w.kind) {
    case DeliveryWrite::Kind::update: {
      const DeliveryUpdate& u = *w.update;
      const DeliveryAttempt& a = u.attempt;
      Result<std::int64_t> changed = 0;
      {
        Call call(update_delivery_.get());
        call.text(to_string(u.state))
            .integer(u.next_attempt_at_us)
            .integer(a.started_at_us)
            .integer(a.status)
            .text(a.error)
            .text(u.response)
            .integer(u.state == DeliveryState::delivered ? a.started_at_us + a.duration_us : 0)
            .integer(a.message_id)
            .text(a.destination);
        changed = step(call, "record delivery");
      }
      if (!changed) return std::move(changed).error();
      Call call(insert_attempt_.get());
      call.integer(a.message_id)
          .text(a.destination)
          .integer(a.started_at_us)
          .integer(a.duration_us)
          .integer(a.status)
          .text(a.outcome)
          .text(a.error);
      if (Result<std::int64_t> r = step(call, "record attempt"); !r) {
        return std::move(r).error();
      }
      return AppendOutcome{Disposition::stored, *changed, 0};
    }
    case DeliveryWrite::Kind::retry_dead_letters: {
      {
        Call call(w.message_id ? requeue_dead_mapping_one_.get() : requeue_dead_mapping_all_.get());
        if (w.message_id) call.integer(*w.message_id);
        call.integer(w.now_us);
        Result<std::int64_t> r = step(call, "requeue mapping of dead letter");
        if (!r) return std::move(r).error();
      }
      Call call(w.message_id ? retry_dead_one_.get() : retry_dead_all_.get());
      call.integer(w.now_us);
      if (w.message_id) call.integer(*w.message_id);
      Result<std::int64_t> changed = step(call, "retry dead letter");
      if (!changed) return std::move(changed).error();
      return AppendOutcome{Disposition::stored, *changed, 0};
    }
    case DeliveryWrite::Kind::discard_dead_letters: {
      Call call(discard_dead_.get());
      call.text(w.reason).integer(w.message_id.value_or(0));
      Result<std::int64_t> changed = step(call, "discard dead letter");
      if (!changed) return std::move(changed).error();
      return AppendOutcome{Disposition::stored, *changed, 0};
    }
    case DeliveryWrite::Kind::purge: {
      {
        Call call(purge_clear_.get());
        if (Result<std::int64_t> r = step(call, "purge: clear"); !r) return std::move(r).error();
      }
      Result<std::int64_t> chosen = 0;
      {
        Call call(w.payload_only ? purge_choose_payload_.get() : purge_choose_.get());
        call.integer(w.now_us).integer(w.limit);
        chosen = step(call, "purge: choose");
        if (!chosen) return std::move(chosen).error();
      }
      if (*chosen == 0) return AppendOutcome{Disposition::stored, 0, 0};
      const std::vector<sqlite3_stmt*> steps =
          w.payload_only ? std::vector<sqlite3_stmt*>{purge_payload_deliveries_.get(),
                                                      purge_payload_mappings_.get(),
                                                      purge_payload_messages_.get()}
                         : std::vector<sqlite3_stmt*>{
                               purge_attempts_.get(), purge_deliveries_.get(),
                               purge_versions_.get(), purge_mappings_.get(), purge_messages_.get()};
      for (sqlite3_stmt* stmt : steps) {
        Call call(stmt);
        if (Result<std::int64_t> r = step(call, "purge"); !r) return std::move(r).error();
      }
      return AppendOutcome{Disposition::stored, *chosen, 0};
    }
  }
  return make_error(Errc::internal, "unknown delivery write");
}

}  // namespace adapter::store::sqlite
