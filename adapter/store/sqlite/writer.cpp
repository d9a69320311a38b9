#include "store/sqlite/writer.h"

#include <optional>
#include <string>

#include "common/log.h"
#include "common/sha256.h"

namespace adapter::store::sqlite {

Result<std::unique_ptr<Writer>> Writer::create(DbPtr db) {
  auto writer = std::unique_ptr<Writer>(new Writer(std::move(db)));
  sqlite3* d = writer->db_.get();
  // Replaces SQLite's auto-checkpoint (which would run inside COMMIT): see checkpoint_if_due().
  sqlite3_wal_hook(d, &Writer::on_wal_commit, writer.get());
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
      {&writer->requeue_one_, "UPDATE mappings SET state = 'pending' WHERE message_id = ?"},
      {&writer->requeue_failed_,
       "UPDATE mappings SET state = 'pending' WHERE state = 'mapping_failed'"},
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
  if (request.mapping) {
    Result<AppendOutcome> outcome = apply_mapping(*request.mapping);
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
    return AppendOutcome{Disposition::stored, sqlite3_changes(db()), 0};
  }
  Call call(w.requeue_id ? requeue_one_.get() : requeue_failed_.get());
  if (w.requeue_id) call.integer(*w.requeue_id);
  if (const int rc = call.step(); rc != SQLITE_DONE) return sqlite_error(db(), rc, "requeue");
  return AppendOutcome{Disposition::stored, sqlite3_changes(db()), 0};
}

}  // namespace adapter::store::sqlite
