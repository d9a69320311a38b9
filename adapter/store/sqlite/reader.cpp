#include "store/sqlite/reader.h"

#include <algorithm>
#include <limits>
#include <string>

namespace adapter::store::sqlite {
namespace {

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

}  // namespace

Result<std::unique_ptr<Reader>> Reader::create(DbPtr db) {
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

Result<std::optional<StoredMessage>> Reader::get(std::int64_t id) {
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

Result<std::vector<StoredMessage>> Reader::find(const MessageQuery& query) {
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

Result<std::int64_t> Reader::count(std::optional<MessageState> state) {
  std::lock_guard lock(mu_);
  Call call(state ? count_state_.get() : count_all_.get());
  if (state) call.text(to_string(*state));
  const int rc = call.step();
  if (rc != SQLITE_ROW) return sqlite_error(db_.get(), rc, "count messages");
  return call.column_int64(0);
}

}  // namespace adapter::store::sqlite
