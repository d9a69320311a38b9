#include "store/sqlite/connection.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <vector>

namespace adapter::store::sqlite {

namespace fs = std::filesystem;

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

Status run_statement(sqlite3* db, sqlite3_stmt* stmt, std::string_view what) {
  Call call(stmt);
  const int rc = call.step();
  if (rc != SQLITE_DONE) return sqlite_error(db, rc, what);
  return {};
}

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

}  // namespace adapter::store::sqlite
