#include "store/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <limits>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "common/log.h"
#include "common/sha256.h"
#include "store/sqlite/migrations.h"

namespace adapter::store {
namespace {

namespace fs = std::filesystem;

using AppendResult = Result<std::vector<AppendOutcome>>;

// ---------------------------------------------------------------------------------------------
// SQLite handles and errors

struct DbCloser {
  // close_v2 never fails on a valid handle: with statements still alive it closes once they are
  // finalized, and the handles below always finalize theirs first.
  void operator()(sqlite3* db) const { (void)sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  // finalize only repeats the last step's error, which the caller has already handled.
  void operator()(sqlite3_stmt* stmt) const { (void)sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Our SQL or our data being wrong is a bug (retrying will not help); anything else is the
// environment (disk full, I/O error, a lock held elsewhere, no memory) and may pass.
Errc errc_for(int rc) {
  switch (rc & 0xff) {
    case SQLITE_ERROR:
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_MISUSE:
    case SQLITE_TOOBIG:
      return Errc::internal;
    default:
      return Errc::store_unavailable;
  }
}

// SQLite's error text names tables, columns and constraints, never bound values, so it is safe to
// log. Read it right after the failing call: the next call on `db` replaces it.
std::string describe(sqlite3* db, int rc, std::string_view what) {
  std::string text(what);
  text += ": ";
  text += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  text += " (SQLite code ";
  text += std::to_string(rc);
  text += ")";
  return text;
}

Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  return make_error(errc_for(rc), describe(db, rc, what));
}

Result<StmtPtr> prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  // PERSISTENT: these statements live as long as the connection, so SQLite allocates them outside
  // its lookaside memory.
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, &tail);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, "prepare");
  if (stmt == nullptr || tail != sql.data() + sql.size()) {
    return make_error(Errc::internal, "prepare: expected exactly one SQL statement");
  }
  return stmt;
}

// One use of a prepared statement: binds parameters left to right, steps, reads columns. The
// destructor resets the statement and drops its bindings whatever happened: a statement left
// mid-step would pin a WAL read snapshot (holding back checkpoints), and the bindings point into
// the caller's strings (SQLITE_STATIC, so that large messages are not copied).
class Call {
 public:
  explicit Call(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Call() {
    // reset repeats the last step's error (already handled); clear_bindings cannot fail.
    (void)sqlite3_reset(stmt_);
    (void)sqlite3_clear_bindings(stmt_);
  }
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  Call& integer(std::int64_t value) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(stmt_, ++index_, value);
    return *this;
  }
  Call& text(std::string_view value) {
    // A null pointer would bind SQL NULL; an empty string must stay an empty string.
    if (rc_ == SQLITE_OK) {
      rc_ = sqlite3_bind_text64(stmt_, ++index_, data_of(value), value.size(), SQLITE_STATIC,
                                SQLITE_UTF8);
    }
    return *this;
  }
  Call& blob(std::string_view value) {
    if (rc_ == SQLITE_OK) {
      rc_ = sqlite3_bind_blob64(stmt_, ++index_, data_of(value), value.size(), SQLITE_STATIC);
    }
    return *this;
  }

  // SQLITE_ROW, SQLITE_DONE, or the error (of the step, or of the first failed binding).
  int step() {
    if (rc_ != SQLITE_OK) return rc_;
    return sqlite3_step(stmt_);
  }

  std::int64_t column_int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool column_is_null(int column) const {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
  }
  // The exact bytes of a TEXT or BLOB column (embedded NULs included).
  std::string column_bytes(int column) const {
    const void* data = sqlite3_column_blob(stmt_, column);  // no conversion for TEXT either
    const int size = sqlite3_column_bytes(stmt_, column);
    if (data == nullptr || size <= 0) return {};
    return std::string(static_cast<const char*>(data), static_cast<std::size_t>(size));
  }

 private:
  static const char* data_of(std::string_view value) {
    return value.data() != nullptr ? value.data() : "";
  }

  sqlite3_stmt* stmt_;
  int index_ = 0;
  int rc_ = SQLITE_OK;
};

// Runs a statement that returns no rows (BEGIN, COMMIT, SAVEPOINT ...).
Status run_statement(sqlite3* db, sqlite3_stmt* stmt, std::string_view what) {
  Call call(stmt);
  const int rc = call.step();
  if (rc != SQLITE_DONE) return sqlite_error(db, rc, what);
  return {};
}

// For one-off PRAGMAs at open: the first column of the first row as text ("" without a row).
Result<std::string> pragma(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, sql);
  Call call(stmt.get());
  const int step = call.step();
  if (step == SQLITE_DONE) return std::string();
  if (step != SQLITE_ROW) return sqlite_error(db, step, sql);
  return call.column_bytes(0);
}

Status expect_pragma(sqlite3* db, const char* sql, std::string_view expected) {
  Result<std::string> value = pragma(db, sql);
  if (!value) return std::move(value).error();
  if (*value != expected) {
    return make_error(Errc::store_unavailable, std::string(sql) + " returned '" + *value +
                                                   "', expected '" + std::string(expected) + "'");
  }
  return {};
}

Result<DbPtr> open_connection(const std::string& path, int flags,
                              std::chrono::milliseconds busy_timeout) {
  sqlite3* raw = nullptr;
  // NOMUTEX: each connection is used by one thread at a time (the writer thread, or a reader
  // under Reader::mu_), so SQLite's per-connection mutex would only cost time.
  const int rc = sqlite3_open_v2(path.c_str(), &raw,
                                 flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
  DbPtr db(raw);  // open_v2 may allocate a handle even when it fails
  if (rc != SQLITE_OK) {
    return make_error(Errc::store_unavailable, describe(db.get(), rc, "cannot open " + path));
  }
  const auto ms = std::clamp<std::chrono::milliseconds::rep>(busy_timeout.count(), 0,
                                                             std::numeric_limits<int>::max());
  if (const int busy_rc = sqlite3_busy_timeout(db.get(), static_cast<int>(ms));
      busy_rc != SQLITE_OK) {
    return sqlite_error(db.get(), busy_rc, "busy_timeout");
  }
  return db;
}

// ---------------------------------------------------------------------------------------------
// Files and directories

Status sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(Errc::io_error,
                      "cannot open directory " + dir.string() + ": " + std::strerror(errno));
  }
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) {
    return make_error(Errc::io_error,
                      "cannot fsync directory " + dir.string() + ": " + std::strerror(saved));
  }
  return {};
}

fs::path directory_of(const std::string& path) {
  fs::path dir = fs::path(path).parent_path();
  return dir.empty() ? fs::path(".") : dir;
}

// Creates the missing directories above the database and makes their entries durable: SQLite
// syncs the directory of its own files, but not the directories we create above them.
Status prepare_directory(const std::string& path) {
  std::vector<fs::path> missing;
  std::error_code ec;
  for (fs::path dir = fs::path(path).parent_path(); !dir.empty(); dir = dir.parent_path()) {
    if (fs::exists(fs::symlink_status(dir, ec))) break;
    missing.push_back(dir);
    if (dir == dir.parent_path()) break;
  }
  if (missing.empty()) return {};
  fs::create_directories(missing.front(), ec);
  if (ec) {
    return make_error(Errc::io_error,
                      "cannot create directory " + missing.front().string() + ": " + ec.message());
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    fs::path parent = it->parent_path();
    if (parent.empty()) parent = ".";
    if (Status s = sync_directory(parent); !s) return s;
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Row conversions

std::optional<MessageState> parse_state(std::string_view text) {
  if (text == to_string(MessageState::received)) return MessageState::received;
  if (text == to_string(MessageState::rejected)) return MessageState::rejected;
  return std::nullopt;
}

// Reads the columns of kSelectColumns.
constexpr std::string_view kSelectColumns =
    "SELECT id, received_at_us, listener, peer, sender_application, sender_facility, control_id, "
    "message_type, content_sha256, state, error, ack_code, duplicate_count, raw FROM messages";

Result<StoredMessage> read_row(const Call& call) {
  StoredMessage row;
  row.id = call.column_int64(0);
  InboundMessage& m = row.message;
  m.received_at_us = call.column_int64(1);
  m.listener = call.column_bytes(2);
  m.peer = call.column_bytes(3);
  m.sender_application = call.column_bytes(4);
  m.sender_facility = call.column_bytes(5);
  m.control_id = call.column_bytes(6);
  m.message_type = call.column_bytes(7);
  m.content_sha256 = call.column_bytes(8);
  const std::string state = call.column_bytes(9);
  const std::optional<MessageState> parsed = parse_state(state);
  if (!parsed) {
    return make_error(Errc::internal,
                      "message " + std::to_string(row.id) + " has unknown state '" + state + "'");
  }
  m.state = *parsed;
  m.error = call.column_bytes(10);
  m.ack_code = call.column_bytes(11);
  row.duplicate_count = call.column_int64(12);
  m.raw = call.column_bytes(13);
  return row;
}

// ---------------------------------------------------------------------------------------------
// The write side: owns the write connection; used by the writer thread only (after open()).

struct Request {
  std::vector<InboundMessage> messages;
  InboxStore::AppendCallback done;
};

struct Counters {
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> commits{0};
  std::atomic<std::uint64_t> failed_batches{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> messages{0};
  std::atomic<std::uint64_t> failed_requests{0};
};

class Writer {
 public:
  static Result<std::unique_ptr<Writer>> create(DbPtr db) {
    auto writer = std::unique_ptr<Writer>(new Writer(std::move(db)));
    sqlite3* d = writer->db_.get();
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
    };
    for (const auto& s : statements) {
      Result<StmtPtr> stmt = prepare(d, s.sql);
      if (!stmt) return std::move(stmt).error();
      *s.stmt = std::move(*stmt);
    }
    return writer;
  }

  // Runs one batch in one transaction and returns one result per request, in order. Successes
  // are returned only once COMMIT has returned SQLITE_OK.
  std::vector<AppendResult> run_batch(std::vector<Request>& batch, Counters& counters) {
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

  // Abandons whatever is in progress (after an unexpected exception).
  void abandon() { rollback_if_open(); }

 private:
  explicit Writer(DbPtr db) : db_(std::move(db)) {}

  sqlite3* db() const { return db_.get(); }

  void rollback_if_open() {
    if (sqlite3_get_autocommit(db()) != 0) {
      cannot_commit_ = false;
      return;
    }
    if (Status s = run_statement(db(), rollback_.get(), "rollback"); !s) {
      log::error("store.rollback_failed", {{"error", s.error().message}});
    }
    cannot_commit_ = sqlite3_get_autocommit(db()) == 0;
  }

  // One append() inside its own savepoint: all of its messages or none.
  AppendResult apply_request(const Request& request) {
    if (Status s = run_statement(db(), savepoint_.get(), "savepoint"); !s) return s.error();
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

  // Rolls back the current request only. If that fails, the request's partial work must not
  // reach COMMIT, so the whole transaction goes.
  void undo_request() {
    if (sqlite3_get_autocommit(db()) != 0) return;  // SQLite already rolled everything back
    Status s = run_statement(db(), rollback_to_.get(), "rollback to savepoint");
    if (s) s = run_statement(db(), release_.get(), "release savepoint");
    if (!s) {
      log::error("store.rollback_failed", {{"error", s.error().message}});
      rollback_if_open();
      if (sqlite3_get_autocommit(db()) == 0) cannot_commit_ = true;
    }
  }

  Result<AppendOutcome> apply_message(const InboundMessage& m) {
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
          return make_error(Errc::internal, "count duplicate: message " +
                                                std::to_string(*original_id) + " vanished");
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

  Result<std::int64_t> insert(const InboundMessage& m, std::string_view sha, MessageState state,
                              std::string_view error, std::string_view ack_code) {
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

  DbPtr db_;  // declared first: destroyed after the statements
  StmtPtr begin_, commit_, rollback_, savepoint_, release_, rollback_to_;
  StmtPtr lookup_, insert_, bump_duplicate_;
  bool cannot_commit_ = false;  // a request could not be undone and ROLLBACK failed too
};

// ---------------------------------------------------------------------------------------------
// The read side: one read-only connection behind a mutex. In WAL mode its statements read the
// last committed snapshot and never wait for the writer.

class Reader {
 public:
  static Result<std::unique_ptr<Reader>> create(DbPtr db) {
    auto reader = std::unique_ptr<Reader>(new Reader(std::move(db)));
    sqlite3* d = reader->db_.get();
    const std::string select(kSelectColumns);
    const std::string by_id = select + " WHERE id = ?";
    // find() variants, indexed by (has state) * 2 + (has control_id); prepared once each rather
    // than one statement with "? IS NULL OR" terms, which would hide the indexes from the planner.
    const std::string find_sql[4] = {
        select + " WHERE id > ? ORDER BY id LIMIT ?",
        select + " WHERE id > ? AND control_id = ? ORDER BY id LIMIT ?",
        select + " WHERE id > ? AND state = ? ORDER BY id LIMIT ?",
        select + " WHERE id > ? AND state = ? AND control_id = ? ORDER BY id LIMIT ?",
    };
    struct {
      StmtPtr* stmt;
      std::string_view sql;
    } const statements[] = {
        {&reader->get_, by_id},
        {&reader->find_[0], find_sql[0]},
        {&reader->find_[1], find_sql[1]},
        {&reader->find_[2], find_sql[2]},
        {&reader->find_[3], find_sql[3]},
        {&reader->count_all_, "SELECT count(*) FROM messages"},
        {&reader->count_state_, "SELECT count(*) FROM messages WHERE state = ?"},
    };
    for (const auto& s : statements) {
      Result<StmtPtr> stmt = prepare(d, s.sql);
      if (!stmt) return std::move(stmt).error();
      *s.stmt = std::move(*stmt);
    }
    return reader;
  }

  Result<std::optional<StoredMessage>> get(std::int64_t id) {
    std::lock_guard lock(mu_);
    Call call(get_.get());
    call.integer(id);
    const int rc = call.step();
    if (rc == SQLITE_DONE) return std::optional<StoredMessage>();
    if (rc != SQLITE_ROW) return sqlite_error(db_.get(), rc, "get message");
    Result<StoredMessage> row = read_row(call);
    if (!row) return std::move(row).error();
    return std::optional<StoredMessage>(std::move(*row));
  }

  Result<std::vector<StoredMessage>> find(const MessageQuery& query) {
    std::lock_guard lock(mu_);
    const int variant = (query.state ? 2 : 0) + (query.control_id ? 1 : 0);
    Call call(find_[variant].get());
    call.integer(query.after_id);
    if (query.state) call.text(to_string(*query.state));
    if (query.control_id) call.text(*query.control_id);
    constexpr auto kMaxLimit = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    call.integer(static_cast<std::int64_t>(std::min(query.limit, kMaxLimit)));
    std::vector<StoredMessage> rows;
    for (;;) {
      const int rc = call.step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return sqlite_error(db_.get(), rc, "find messages");
      Result<StoredMessage> row = read_row(call);
      if (!row) return std::move(row).error();
      rows.push_back(std::move(*row));
    }
    return rows;
  }

  Result<std::int64_t> count(std::optional<MessageState> state) {
    std::lock_guard lock(mu_);
    Call call(state ? count_state_.get() : count_all_.get());
    if (state) call.text(to_string(*state));
    const int rc = call.step();
    if (rc != SQLITE_ROW) return sqlite_error(db_.get(), rc, "count messages");
    return call.column_int64(0);
  }

 private:
  explicit Reader(DbPtr db) : db_(std::move(db)) {}

  std::mutex mu_;  // guards the connection and statements below
  DbPtr db_;       // declared before the statements: destroyed after them
  StmtPtr get_, find_[4], count_all_, count_state_;
};

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
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// SqliteStore

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
  Impl& s = *impl_;
  {
    std::unique_lock lock(s.mu);
    if (s.accepting) {
      s.queue.push_back(Request{std::move(messages), std::move(done)});
      lock.unlock();
      s.wake.notify_one();
      return;
    }
  }
  s.counters.failed_requests.fetch_add(1, std::memory_order_relaxed);
  if (done) done(make_error(Errc::store_unavailable, "the message store is closed"));
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
