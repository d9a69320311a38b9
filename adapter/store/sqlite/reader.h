// The store's read side: one read-only connection behind a mutex. In WAL mode its statements
// read the last committed snapshot and never wait for the writer. Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "store/inbox_store.h"
#include "store/outbox.h"
#include "store/sqlite/connection.h"

namespace adapter::store::sqlite {

class Reader {
 public:
  static Result<std::unique_ptr<Reader>> create(DbPtr db);

  Result<std::optional<StoredMessage>> get(std::int64_t id);

  Result<std::vector<StoredMessage>> find(const MessageQuery& query);

  Result<std::int64_t> count(std::optional<MessageState> state);

  Result<std::vector<StoredMessage>> to_map(std::int64_t after_id, std::size_t limit);
  Result<std::optional<MappingRecord>> mapping_of(std::int64_t message_id);
  Result<std::optional<ReportHistory>> report_history(std::string_view order_key);
  Result<std::int64_t> mapping_watermark();
  Result<MappingBacklog> mapping_backlog();

  Result<std::vector<DueDelivery>> due_deliveries(std::string_view destination, std::int64_t now_us,
                                                  std::size_t limit);
  Result<std::optional<std::int64_t>> next_due_at(std::string_view destination);
  Result<std::vector<DeliveryRecord>> deliveries_of(std::int64_t message_id);
  Result<std::vector<DeliveryAttempt>> attempts_of(std::int64_t message_id);
  Result<std::vector<DeliveryRecord>> find_deliveries(const DeliveryQuery& query);
  Result<OutboxCounts> outbox_counts(std::string_view destination);

 private:
  explicit Reader(DbPtr db) : db_(std::move(db)) {}

  std::mutex mu_;  // guards the connection and statements below
  DbPtr db_;       // declared before the statements: destroyed after them
  StmtPtr get_, find_[4], count_all_, count_state_;
  StmtPtr to_map_pending_, to_map_new_, mapping_of_, mapping_watermark_, mapping_backlog_;
  StmtPtr report_history_;
  StmtPtr due_, next_due_, deliveries_of_, attempts_of_, find_deliveries_;
  StmtPtr count_deliveries_, oldest_pending_;
};

}  // namespace adapter::store::sqlite
