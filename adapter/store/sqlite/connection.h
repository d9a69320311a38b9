// SQLite plumbing shared by the store's writer, reader and checkpointer: RAII handles, errors
// as values, one-use prepared-statement calls, and the directory handling a durable file needs.
// Nothing here is thread-safe by itself: each connection is used by one thread at a time.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace adapter::store::sqlite {

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
  Call& null() {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_null(stmt_, ++index_);
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

// Our SQL or our data being wrong is a bug (retrying will not help); anything else is the
// environment (disk full, I/O error, a lock held elsewhere, no memory) and may pass.
Errc errc_for(int rc);

// SQLite's error text names tables, columns and constraints, never bound values, so it is safe to
// log. Read it right after the failing call: the next call on `db` replaces it.
std::string describe(sqlite3* db, int rc, std::string_view what);

Error sqlite_error(sqlite3* db, int rc, std::string_view what);

Result<StmtPtr> prepare(sqlite3* db, std::string_view sql);

// Runs a statement that returns no rows (BEGIN, COMMIT, SAVEPOINT ...).
Status run_statement(sqlite3* db, sqlite3_stmt* stmt, std::string_view what);

// For one-off PRAGMAs at open: the first column of the first row as text ("" without a row).
Result<std::string> pragma(sqlite3* db, const char* sql);

Status expect_pragma(sqlite3* db, const char* sql, std::string_view expected);

Result<DbPtr> open_connection(const std::string& path, int flags,
                              std::chrono::milliseconds busy_timeout);

Status sync_directory(const std::filesystem::path& dir);

std::filesystem::path directory_of(const std::string& path);

// Creates the missing directories above the database and makes their entries durable: SQLite
// syncs the directory of its own files, but not the directories we create above them.
Status prepare_directory(const std::string& path);

}  // namespace adapter::store::sqlite
