// Schema migrations of the SQLite store: numbered SQL scripts compiled into the binary, applied in
// order, one transaction each, with the applied version kept in PRAGMA user_version (which SQLite
// updates inside the same transaction, so a crash leaves either the old or the new schema).
//
// A database written by a newer adapterd (user_version above what this binary knows) is refused
// rather than used: an older binary cannot know what the newer schema means.
//
// Thread safety: stateless functions; the connection passed in must not be used concurrently.
#pragma once

#include <span>
#include <string_view>

#include "common/result.h"

struct sqlite3;

namespace adapter::store {

struct Migration {
  int version;           // 1, 2, 3, ...: contiguous, never renumbered once released
  std::string_view sql;  // one or more statements; must not contain BEGIN/COMMIT
};

// Marks the file as an adapterd inbox (PRAGMA application_id), so that pointing the daemon at some
// other SQLite file fails loudly instead of adding tables to it.
inline constexpr int kApplicationId = 0x41444150;  // "ADAP"

// The migrations this binary ships, ascending.
std::span<const Migration> schema_migrations();

// The version a fully migrated database has.
int latest_schema_version();

// PRAGMA user_version of `db`.
Result<int> read_schema_version(sqlite3* db);

// Brings `db` up to the last of `migrations`. Each pending migration runs in its own
// BEGIN IMMEDIATE transaction together with its user_version bump; the version is re-read inside
// that transaction, so two processes migrating the same file at once do not apply a step twice.
// Errors: bad_config when the database is newer than `migrations` or belongs to another
// application (or the file already holds tables but no schema version); store_unavailable when
// SQLite fails (the failing migration is rolled back and later ones are not attempted).
Status migrate(sqlite3* db, std::span<const Migration> migrations = schema_migrations());

}  // namespace adapter::store
