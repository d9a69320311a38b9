#include "store/sqlite/reader.h"

#include <algorithm>
#include <limits>
#include <string>
#include <type_traits>

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
// The same columns, qualified, for queries that join `mappings` (which has a `state` too).
constexpr std::string_view kSelectColumnsOfM =
    "SELECT m.id, m.received_at_us, m.listener, m.peer, m.sender_application, "
    "m.sender_facility, m.control_id, m.message_type, m.content_sha256, m.state, m.error, "
    "m.ack_code, m.duplicate_count, m.raw FROM messages m";

std::optional<MappingState> parse_mapping_state(std::string_view text) {
  for (MappingState s :
       {MappingState::pending, MappingState::mapped, MappingState::mapping_failed}) {
    if (text == to_string(s)) return s;
  }
  return std::nullopt;
}

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

// Steps `call` to its end, appending each row to `rows`.
// Steps `call` to its end, appending read(call) for each row to `rows`; `read` returns the row,
// or a Result of it when a row can be malformed (an unknown state).
template <class Row, class Read>
Status read_all(sqlite3* db, Call& call, std::vector<Row>& rows, std::string_view what, Read read) {
  for (;;) {
    const int rc = call.step();
    if (rc == SQLITE_DONE) return {};
    if (rc != SQLITE_ROW) return sqlite_error(db, rc, what);
    auto row = read(call);
    if constexpr (std::is_same_v<decltype(row), Row>) {
      rows.push_back(std::move(row));
    } else {
      if (!row) return std::move(row).error();
      rows.push_back(std::move(*row));
    }
  }
}

Status read_rows(sqlite3* db, Call& call, std::vector<StoredMessage>& rows, std::string_view what) {
  return read_all(db, call, rows, what, read_row);
}

constexpr std::string_view kDeliveryColumns =
    "SELECT message_id, destination, order_key, state, attempts, queued_at_us, "
    "next_attempt_at_us, last_attempt_at_us, last_status, last_error, response, delivered_at_us, "
    "discard_reason FROM deliveries";

Result<DeliveryRecord> read_delivery(const Call& call) {
  DeliveryRecord d;
  d.message_id = call.column_int64(0);
  d.destination = call.column_bytes(1);
  d.order_key = call.column_bytes(2);
  const std::string state = call.column_bytes(3);
  const std::optional<DeliveryState> parsed = parse_delivery_state(state);
  if (!parsed) {
    return make_error(Errc::internal, "delivery of message " + std::to_string(d.message_id) +
                                          " has unknown state '" + state + "'");
  }
  d.state = *parsed;
  d.attempts = call.column_int64(4);
  d.queued_at_us = call.column_int64(5);
  d.next_attempt_at_us = call.column_int64(6);
  d.last_attempt_at_us = call.column_int64(7);
  d.last_status = static_cast<int>(call.column_int64(8));
  d.last_error = call.column_bytes(9);
  d.response = call.column_bytes(10);
  d.delivered_at_us = call.column_int64(11);
  d.discard_reason = call.column_bytes(12);
  return d;
}

Status read_deliveries(sqlite3* db, Call& call, std::vector<DeliveryRecord>& rows,
                       std::string_view what) {
  return read_all(db, call, rows, what, read_delivery);
}

std::int64_t clamp_limit(std::size_t limit) {
  return static_cast<std::int64_t>(std::min<std::size_t>(limit, 1u << 20));
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
  const std::string to_map_pending =
      std::string(kSelectColumnsOfM) +
      " JOIN mappings p ON p.message_id = m.id WHERE p.state = 'pending' AND "
      "m.state = 'received' ORDER BY m.id LIMIT ?";
  const std::string to_map_new =
      std::string(kSelectColumnsOfM) +
      " WHERE m.state = 'received' AND m.id > ? AND NOT EXISTS (SELECT 1 FROM mappings p "
      "WHERE p.message_id = m.id) ORDER BY m.id LIMIT ?";
  const std::string deliveries_of =
      std::string(kDeliveryColumns) + " WHERE message_id = ? ORDER BY destination";
  const std::string find_deliveries =
      std::string(kDeliveryColumns) +
      " WHERE message_id > ?1 AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR "
      "destination = ?3) ORDER BY message_id, destination LIMIT ?4";
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
      // Replayed messages first (any id), through the mappings_state index...
      {&reader->to_map_pending_, to_map_pending},
      // ...then new ones past the caller's watermark, through messages_state_id.
      {&reader->to_map_new_, to_map_new},
      {&reader->mapping_watermark_, "SELECT coalesce(max(message_id), 0) FROM mappings"},
      // What to_map() would return from the watermark, counted: new messages through
      // messages_state_id above max(message_id) (a rowid lookup), replayed ones through
      // mappings_state. The two parts cannot overlap: a message above the watermark has no
      // mapping at all.
      {&reader->mapping_backlog_,
       "SELECT count(*), coalesce(min(received_at_us), 0) FROM ("
       "SELECT received_at_us FROM messages WHERE state = 'received' AND "
       "id > (SELECT coalesce(max(message_id), 0) FROM mappings) "
       "UNION ALL SELECT CASE WHEN p.pending_since_us > 0 THEN p.pending_since_us "
       "ELSE m.received_at_us END FROM mappings p JOIN messages m ON m.id = p.message_id "
       "WHERE p.state = 'pending' AND m.state = 'received')"},
      {&reader->mapping_of_,
       "SELECT message_id, state, template, template_version, template_set, issues, "
       "mapped_at_us, attempts, bundle, unmapped FROM mappings WHERE message_id = ?"},
      {&reader->report_history_,
       "SELECT first_message_id, last_message_id, latest_issued_us, latest_issued_message_id "
       "FROM reports WHERE order_key = ?"},
      // Due now, mapped, and not held back by an earlier open delivery of the same report.
      {&reader->due_,
       "SELECT d.message_id, d.destination, d.order_key, d.attempts, d.queued_at_us, p.bundle, "
       "(SELECT received_at_us FROM messages WHERE id = d.message_id) "
       "FROM deliveries d JOIN mappings p ON p.message_id = d.message_id "
       "WHERE d.destination = ?1 AND d.state = 'pending' AND d.next_attempt_at_us <= ?2 "
       "AND p.state = 'mapped' AND NOT EXISTS (SELECT 1 FROM deliveries e "
       "WHERE e.destination = d.destination AND e.order_key = d.order_key "
       "AND e.message_id < d.message_id AND e.state IN ('pending', 'dead_letter')) "
       "ORDER BY d.message_id LIMIT ?3"},
      {&reader->next_due_,
       "SELECT min(next_attempt_at_us) FROM deliveries WHERE destination = ? AND "
       "state = 'pending'"},
      {&reader->deliveries_of_, deliveries_of},
      {&reader->attempts_of_,
       "SELECT message_id, destination, number, started_at_us, duration_us, status, outcome, "
       "error FROM delivery_attempts WHERE message_id = ? ORDER BY destination, number"},
      // An operator's query, not a hot path: one statement with optional terms.
      {&reader->find_deliveries_, find_deliveries},
      {&reader->count_deliveries_,
       "SELECT state, count(*) FROM deliveries WHERE destination = ? GROUP BY state"},
      {&reader->oldest_pending_,
       "SELECT coalesce(min(queued_at_us), 0) FROM deliveries WHERE destination = ? AND "
       "state = 'pending'"},
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
  if (query.source || query.sender_application || query.received_from_us ||
      query.received_until_us || query.mapping_state || query.content_sha256 || query.peer) {
    // The operator's searches: rare, so the statement is built for the filters given.
    std::string sql(kSelectColumns);
    sql += " WHERE id > ?";
    if (query.state) sql += " AND state = ?";
    if (query.control_id) sql += " AND control_id = ?";
    if (query.source) sql += " AND listener = ?";
    if (query.sender_application) sql += " AND sender_application = ?";
    if (query.received_from_us) sql += " AND received_at_us >= ?";
    if (query.received_until_us) sql += " AND received_at_us < ?";
    if (query.mapping_state) sql += " AND id IN (SELECT message_id FROM mappings WHERE state = ?)";
    if (query.content_sha256) sql += " AND content_sha256 = ?";
    if (query.peer) sql += " AND peer = ?";
    sql += " ORDER BY id LIMIT ?";
    Result<StmtPtr> stmt = prepare(db_.get(), sql);
    if (!stmt) return std::move(stmt).error();
    Call call(stmt->get());
    call.integer(query.after_id);
    if (query.state) call.text(to_string(*query.state));
    if (query.control_id) call.text(*query.control_id);
    if (query.source) call.text(*query.source);
    if (query.sender_application) call.text(*query.sender_application);
    if (query.received_from_us) call.integer(*query.received_from_us);
    if (query.received_until_us) call.integer(*query.received_until_us);
    if (query.mapping_state) call.text(to_string(*query.mapping_state));
    if (query.content_sha256) call.text(*query.content_sha256);
    if (query.peer) call.text(*query.peer);
    call.integer(static_cast<std::int64_t>(std::min<std::size_t>(query.limit, 100000)));
    std::vector<StoredMessage> rows;
    if (Status s = read_rows(db_.get(), call, rows, "find messages"); !s) return s.error();
    return rows;
  }
  const int variant = (query.state ? 2 : 0) + (query.control_id ? 1 : 0);
  Call call(find_[variant].get());
  call.integer(query.after_id);
  if (query.state) call.text(to_string(*query.state));
  if (query.control_id) call.text(*query.control_id);
  constexpr auto kMaxLimit = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  call.integer(static_cast<std::int64_t>(std::min(query.limit, kMaxLimit)));
  std::vector<StoredMessage> rows;
  if (Status s = read_rows(db_.get(), call, rows, "find messages"); !s) return s.error();
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

Result<std::vector<StoredMessage>> Reader::to_map(std::int64_t after_id, std::size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<StoredMessage> rows;
  const auto want = static_cast<std::int64_t>(std::min<std::size_t>(limit, 1u << 20));
  for (sqlite3_stmt* stmt : {to_map_pending_.get(), to_map_new_.get()}) {
    const auto left = want - static_cast<std::int64_t>(rows.size());
    if (left <= 0) break;
    Call call(stmt);
    if (stmt == to_map_new_.get()) call.integer(after_id);
    call.integer(left);
    if (Status s = read_rows(db_.get(), call, rows, "messages to map"); !s) return s.error();
  }
  return rows;
}

Result<std::int64_t> Reader::mapping_watermark() {
  std::lock_guard lock(mu_);
  Call call(mapping_watermark_.get());
  const int rc = call.step();
  if (rc != SQLITE_ROW) return sqlite_error(db_.get(), rc, "mapping watermark");
  return call.column_int64(0);
}

Result<MappingBacklog> Reader::mapping_backlog() {
  std::lock_guard lock(mu_);
  Call call(mapping_backlog_.get());
  const int rc = call.step();
  if (rc != SQLITE_ROW) return sqlite_error(db_.get(), rc, "mapping backlog");
  MappingBacklog backlog;
  backlog.pending = call.column_int64(0);
  backlog.oldest_since_us = call.column_int64(1);
  return backlog;
}

Result<std::optional<ReportHistory>> Reader::report_history(std::string_view order_key) {
  std::lock_guard lock(mu_);
  Call call(report_history_.get());
  call.text(order_key);
  const int rc = call.step();
  if (rc == SQLITE_DONE) return std::optional<ReportHistory>();
  if (rc != SQLITE_ROW) return sqlite_error(db_.get(), rc, "read a report's history");
  return std::optional<ReportHistory>(ReportHistory{call.column_int64(0), call.column_int64(1),
                                                    call.column_int64(2), call.column_int64(3)});
}

Result<std::optional<MappingRecord>> Reader::mapping_of(std::int64_t message_id) {
  std::lock_guard lock(mu_);
  Call call(mapping_of_.get());
  call.integer(message_id);
  const int rc = call.step();
  if (rc == SQLITE_DONE) return std::optional<MappingRecord>();
  if (rc != SQLITE_ROW) return sqlite_error(db_.get(), rc, "read mapping");
  MappingRecord r;
  r.message_id = call.column_int64(0);
  const std::string state = call.column_bytes(1);
  const auto parsed = parse_mapping_state(state);
  if (!parsed) {
    return make_error(Errc::internal, "mapping of message " + std::to_string(r.message_id) +
                                          " has unknown state '" + state + "'");
  }
  r.state = *parsed;
  r.template_name = call.column_bytes(2);
  r.template_version = call.column_bytes(3);
  r.template_set = call.column_bytes(4);
  r.issues_json = call.column_bytes(5);
  r.mapped_at_us = call.column_int64(6);
  r.attempts = call.column_int64(7);
  r.bundle_json = call.column_bytes(8);
  r.unmapped_json = call.column_bytes(9);
  return std::optional<MappingRecord>(std::move(r));
}

Result<std::vector<DueDelivery>> Reader::due_deliveries(std::string_view destination,
                                                        std::int64_t now_us, std::size_t limit) {
  std::lock_guard lock(mu_);
  Call call(due_.get());
  call.text(destination).integer(now_us).integer(clamp_limit(limit));
  std::vector<DueDelivery> rows;
  Status s = read_all(db_.get(), call, rows, "due deliveries", [](const Call& c) {
    DueDelivery d;
    d.message_id = c.column_int64(0);
    d.destination = c.column_bytes(1);
    d.order_key = c.column_bytes(2);
    d.attempts = c.column_int64(3);
    d.queued_at_us = c.column_int64(4);
    d.bundle_json = c.column_bytes(5);
    d.received_at_us = c.column_int64(6);
    return d;
  });
  if (!s) return s.error();
  return rows;
}

Result<std::optional<std::int64_t>> Reader::next_due_at(std::string_view destination) {
  std::lock_guard lock(mu_);
  Call call(next_due_.get());
  call.text(destination);
  const int rc = call.step();
  if (rc != SQLITE_ROW) return sqlite_error(db_.get(), rc, "next due delivery");
  if (call.column_is_null(0)) return std::optional<std::int64_t>();
  return std::optional<std::int64_t>(call.column_int64(0));
}

Result<std::vector<DeliveryRecord>> Reader::deliveries_of(std::int64_t message_id) {
  std::lock_guard lock(mu_);
  Call call(deliveries_of_.get());
  call.integer(message_id);
  std::vector<DeliveryRecord> rows;
  if (Status s = read_deliveries(db_.get(), call, rows, "deliveries of message"); !s) {
    return s.error();
  }
  return rows;
}

Result<std::vector<DeliveryAttempt>> Reader::attempts_of(std::int64_t message_id) {
  std::lock_guard lock(mu_);
  Call call(attempts_of_.get());
  call.integer(message_id);
  std::vector<DeliveryAttempt> rows;
  Status s = read_all(db_.get(), call, rows, "delivery attempts", [](const Call& c) {
    DeliveryAttempt a;
    a.message_id = c.column_int64(0);
    a.destination = c.column_bytes(1);
    a.number = c.column_int64(2);
    a.started_at_us = c.column_int64(3);
    a.duration_us = c.column_int64(4);
    a.status = static_cast<int>(c.column_int64(5));
    a.outcome = c.column_bytes(6);
    a.error = c.column_bytes(7);
    return a;
  });
  if (!s) return s.error();
  return rows;
}

Result<std::vector<DeliveryRecord>> Reader::find_deliveries(const DeliveryQuery& query) {
  std::lock_guard lock(mu_);
  Call call(find_deliveries_.get());
  call.integer(query.after_id);
  if (query.state) {
    call.text(to_string(*query.state));
  } else {
    call.null();
  }
  if (query.destination) {
    call.text(*query.destination);
  } else {
    call.null();
  }
  call.integer(clamp_limit(query.limit));
  std::vector<DeliveryRecord> rows;
  if (Status s = read_deliveries(db_.get(), call, rows, "find deliveries"); !s) return s.error();
  return rows;
}

Result<OutboxCounts> Reader::outbox_counts(std::string_view destination) {
  std::lock_guard lock(mu_);
  OutboxCounts counts;
  {
    Call call(count_deliveries_.get());
    call.text(destination);
    for (;;) {
      const int rc = call.step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return sqlite_error(db_.get(), rc, "count deliveries");
      const std::optional<DeliveryState> state = parse_delivery_state(call.column_bytes(0));
      const std::int64_t n = call.column_int64(1);
      if (!state) continue;
      switch (*state) {
        case DeliveryState::pending:
          counts.pending = n;
          break;
        case DeliveryState::delivered:
          counts.delivered = n;
          break;
        case DeliveryState::dead_letter:
          counts.dead_letter = n;
          break;
        case DeliveryState::discarded:
          counts.discarded = n;
          break;
      }
    }
  }
  Call call(oldest_pending_.get());
  call.text(destination);
  const int rc = call.step();
  if (rc != SQLITE_ROW) return sqlite_error(db_.get(), rc, "oldest pending delivery");
  counts.oldest_pending_queued_at_us = call.column_int64(0);
  return counts;
}

}  // namespace adapter::store::sqlite
