#include "store/inbox_store.h"

#include <utility>

namespace adapter::store {

std::string_view to_string(MessageState state) {
  switch (state) {
    case MessageState::received:
      return "received";
    case MessageState::rejected:
      return "rejected";
  }
  return "unknown";
}

std::string_view to_string(MappingState state) {
  switch (state) {
    case MappingState::pending:
      return "pending";
    case MappingState::mapped:
      return "mapped";
    case MappingState::mapping_failed:
      return "mapping_failed";
  }
  return "unknown";
}

std::string_view to_string(Disposition disposition) {
  switch (disposition) {
    case Disposition::stored:
      return "stored";
    case Disposition::duplicate:
      return "duplicate";
    case Disposition::conflict:
      return "conflict";
  }
  return "unknown";
}

Result<std::vector<AppendOutcome>> append_and_wait(InboxStore& store,
                                                   std::vector<InboundMessage> messages) {
  return call_and_wait<Result<std::vector<AppendOutcome>>>(
      [&](InboxStore::AppendCallback done) { store.append(std::move(messages), std::move(done)); });
}

Result<RecordOutcome> record_mapping_and_wait(InboxStore& store, MappingRecord record) {
  return call_and_wait<Result<RecordOutcome>>([&](InboxStore::RecordCallback done) {
    store.record_mapping(std::move(record), std::move(done));
  });
}

}  // namespace adapter::store
