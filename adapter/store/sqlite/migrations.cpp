#include "store/sqlite/migrations.h"

#include <sqlite3.h>

#include <memory>
#include <string>

namespace adapter::store {
namespace {

// Append-only: a released migration is never edited, a change is a new number. Column order puts
// `raw` last so that reading or updating the small columns of a large message does not walk the
// blob's overflow pages. STRICT makes SQLite refuse a value of the wrong type (text in `raw`).
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  received_at_us INTEGER NOT NULL,
  listener TEXT NOT NULL,
  peer TEXT NOT NULL,
  sender_application TEXT NOT NULL,
  sender_facility TEXT NOT NULL,
  control_id TEXT NOT NULL,
  message_type TEXT NOT NULL,
  content_sha256 TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('received', 'rejected')),
  error TEXT NOT NULL DEFAULT '',
  ack_code TEXT NOT NULL DEFAULT '',
  duplicate_count INTEGER NOT NULL DEFAULT 0,
  last_duplicate_at_us INTEGER,
  raw BLOB NOT NULL
) STRICT;

-- At most one accepted message per (MSH-3, MSH-4, MSH-10). The writer looks the key up before
-- inserting, so this index is both its lookup path and a backstop against a dedup bug.
CREATE UNIQUE INDEX messages_accepted_key
  ON messages (sender_application, sender_facility, control_id)
  WHERE state <> 'rejected' AND control_id <> '';

CREATE INDEX messages_state_id ON messages (state, id);
)sql"},
    // The mapping of each received message, done after its ACK. A table of its own rather than
    // more states in `messages`: SQLite cannot alter a CHECK constraint without copying every raw
    // message, and intake never has to touch it. Replay sets the state back to 'pending'.
    {2, R"sql(
CREATE TABLE mappings (
  message_id INTEGER PRIMARY KEY REFERENCES messages (id),
  state TEXT NOT NULL CHECK (state IN ('pending', 'mapped', 'mapping_failed')),
  template TEXT NOT NULL,
  template_version TEXT NOT NULL,
  template_set TEXT NOT NULL,
  issues TEXT NOT NULL,
  unmapped TEXT NOT NULL DEFAULT '[]',
  mapped_at_us INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 1,
  bundle TEXT NOT NULL
) STRICT;

CREATE INDEX mappings_state ON mappings (state, message_id);
)sql"},
    // The outbox: one row per (message, destination), written in the transaction that records
    // the mapping. The Bundle itself stays in `mappings` (one copy however many destinations).
    // Every attempt is kept in `delivery_attempts` for inspection; retention (issue 6) purges
    // both with the message.
    {3, R"sql(
CREATE TABLE deliveries (
  message_id INTEGER NOT NULL REFERENCES messages (id),
  destination TEXT NOT NULL,
  order_key TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead_letter', 'discarded')),
  attempts INTEGER NOT NULL DEFAULT 0,
  queued_at_us INTEGER NOT NULL,
  next_attempt_at_us INTEGER NOT NULL,
  last_attempt_at_us INTEGER NOT NULL DEFAULT 0,
  last_status INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  response TEXT NOT NULL DEFAULT '',
  delivered_at_us INTEGER NOT NULL DEFAULT 0,
  discard_reason TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (message_id, destination)
) STRICT;

-- The worker's two questions: what is due for a destination, and is an earlier delivery of the
-- same report still open. Partial indexes keep both small however many rows were delivered.
CREATE INDEX deliveries_due ON deliveries (destination, next_attempt_at_us)
  WHERE state = 'pending';
CREATE INDEX deliveries_open_by_order ON deliveries (destination, order_key, message_id)
  WHERE state IN ('pending', 'dead_letter');
CREATE INDEX deliveries_state ON deliveries (state, message_id);

CREATE TABLE delivery_attempts (
  message_id INTEGER NOT NULL,
  destination TEXT NOT NULL,
  number INTEGER NOT NULL,
  started_at_us INTEGER NOT NULL,
  duration_us INTEGER NOT NULL,
  status INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  error TEXT NOT NULL,
  PRIMARY KEY (message_id, destination, number),
  FOREIGN KEY (message_id, destination) REFERENCES deliveries (message_id, destination)
) STRICT;
)sql"},
    // Since when a replayed mapping waits (set with state 'pending' by a replay or a dead-letter
    // retry), for the mapping backlog's age: its message's receipt may be weeks earlier. 0 for
    // a mapping never replayed, or replayed before this column existed (then receipt counts).
    {4, R"sql(
ALTER TABLE mappings ADD COLUMN pending_since_us INTEGER NOT NULL DEFAULT 0;
)sql"},
    // The first and last message queued about each report (InboxStore::report_history), kept
    // when retention purges the deliveries: the mapping step's question for each message it
    // maps. Filled from the deliveries a version 4 store holds.
    {5, R"sql(
CREATE TABLE reports (
  order_key TEXT PRIMARY KEY,
  first_message_id INTEGER NOT NULL,
  last_message_id INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO reports (order_key, first_message_id, last_message_id)
  SELECT order_key, min(message_id), max(message_id) FROM deliveries GROUP BY order_key;
)sql"},
    // The newest version of each report queued (DiagnosticReport.issued, and its message), so
    // that an older version arriving later is held back instead of replacing it. Unknown (0) for
    // the reports a version 5 store holds: the next message about one sets it.
    {6, R"sql(
ALTER TABLE reports ADD COLUMN latest_issued_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE reports ADD COLUMN latest_issued_message_id INTEGER NOT NULL DEFAULT 0;
)sql"},
    // Which version of which report each queued message carried, so that queuing a newer version
    // discards the open deliveries of the older ones: deliveries go out in message order, not
    // issued order, and a dead letter retried later would put an older version back. Purged with
    // the message. A version 6 store knows only each report's newest version (from `reports`);
    // the older ones it queued are not known and so not discarded.
    {7, R"sql(
CREATE TABLE report_versions (
  message_id INTEGER NOT NULL REFERENCES messages (id),
  order_key TEXT NOT NULL,
  issued_us INTEGER NOT NULL,
  PRIMARY KEY (message_id, order_key)
) STRICT, WITHOUT ROWID;
CREATE INDEX report_versions_by_report ON report_versions (order_key, issued_us);
INSERT INTO report_versions (message_id, order_key, issued_us)
  SELECT latest_issued_message_id, order_key, latest_issued_us FROM reports
  WHERE latest_issued_us > 0 AND latest_issued_message_id IN (SELECT id FROM messages);
)sql"},
};

constexpr bool versions_are_contiguous() {
  int expected = 1;
  for (const Migration& m : kMigrations) {
    if (m.version != expected++) return false;
  }
  return true;
}
static_assert(versions_are_contiguous(), "kMigrations must be numbered 1, 2, 3, ... in order");

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

Error sqlite_failure(sqlite3* db, std::string_view what) {
  return make_error(Errc::store_unavailable, std::string(what) + ": " + sqlite3_errmsg(db));
}

// Runs one statement that yields a single integer (a PRAGMA or a count).
Result<int> query_int(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) {
    StmtPtr guard(raw);
    return sqlite_failure(db, sql);
  }
  StmtPtr stmt(raw);
  if (sqlite3_step(stmt.get()) != SQLITE_ROW) return sqlite_failure(db, sql);
  return sqlite3_column_int(stmt.get(), 0);
}

Status exec(sqlite3* db, const std::string& sql, std::string_view what) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) == SQLITE_OK) return {};
  // sqlite3_exec reports through `message` (errmsg may already describe a later statement).
  std::string text = message != nullptr ? message : sqlite3_errmsg(db);
  sqlite3_free(message);
  return make_error(Errc::store_unavailable, std::string(what) + ": " + text);
}

// Leaves no transaction behind after a failed step; its own failure changes nothing for the
// caller, who reports the original error.
void rollback_if_open(sqlite3* db) {
  if (sqlite3_get_autocommit(db) == 0) {
    (void)sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

Status apply(sqlite3* db, const Migration& migration) {
  const std::string what = "schema migration " + std::to_string(migration.version);
  // IMMEDIATE takes the write lock now, so the version read below cannot go stale before COMMIT.
  if (Status s = exec(db, "BEGIN IMMEDIATE", what); !s) return s;
  Result<int> current = query_int(db, "PRAGMA user_version");
  if (!current) {
    rollback_if_open(db);
    return std::move(current).error();
  }
  if (*current >= migration.version) {  // another process applied it first
    return exec(db, "COMMIT", what);
  }
  Status s = exec(db, std::string(migration.sql), what);
  if (s) {
    s = exec(db,
             "PRAGMA application_id = " + std::to_string(kApplicationId) +
                 "; PRAGMA user_version = " + std::to_string(migration.version),
             what);
  }
  if (s) s = exec(db, "COMMIT", what);
  if (!s) rollback_if_open(db);
  return s;
}

}  // namespace

std::span<const Migration> schema_migrations() {
  return kMigrations;
}

int latest_schema_version() {
  return kMigrations[std::size(kMigrations) - 1].version;
}

Result<int> read_schema_version(sqlite3* db) {
  return query_int(db, "PRAGMA user_version");
}

Status migrate(sqlite3* db, std::span<const Migration> migrations) {
  const int known = migrations.empty() ? 0 : migrations.back().version;
  Result<int> app_id = query_int(db, "PRAGMA application_id");
  if (!app_id) return std::move(app_id).error();
  if (*app_id != 0 && *app_id != kApplicationId) {
    return make_error(Errc::bad_config, "the database is not an adapterd inbox (application_id " +
                                            std::to_string(*app_id) + ")");
  }
  Result<int> version = read_schema_version(db);
  if (!version) return std::move(version).error();
  if (*version > known) {
    return make_error(Errc::bad_config, "database schema version " + std::to_string(*version) +
                                            " is newer than this adapterd supports (" +
                                            std::to_string(known) + ")");
  }
  if (*version == 0 && *app_id == 0) {
    // Version 0 is a new, empty file. Tables without a version are someone else's database.
    Result<int> objects = query_int(db, "SELECT count(*) FROM sqlite_master");
    if (!objects) return std::move(objects).error();
    if (*objects != 0) {
      return make_error(Errc::bad_config,
                        "the database already holds tables but no adapterd schema version");
    }
  }
  for (const Migration& migration : migrations) {
    if (migration.version <= *version) continue;
    if (Status s = apply(db, migration); !s) return s;
  }
  return {};
}

}  // namespace adapter::store
