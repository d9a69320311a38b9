#include "store/inbox_store.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
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
  // The state is shared with the callback rather than living on this stack frame: a store may
  // still hold (and destroy) its copy of the callback after we have returned.
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Result<std::vector<AppendOutcome>>> result;
  };
  auto waiter = std::make_shared<Waiter>();
  store.append(std::move(messages), [waiter](Result<std::vector<AppendOutcome>> result) {
    std::lock_guard lock(waiter->mu);
    waiter->result.emplace(std::move(result));
    waiter->cv.notify_one();
  });
  std::unique_lock lock(waiter->mu);
  waiter->cv.wait(lock, [&] { return waiter->result.has_value(); });
  return std::move(*waiter->result);
}

Status record_mapping_and_wait(InboxStore& store, MappingRecord record) {
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Status> result;
  };
  auto waiter = std::make_shared<Waiter>();
  store.record_mapping(std::move(record), [waiter](Status result) {
    std::lock_guard lock(waiter->mu);
    waiter->result.emplace(std::move(result));
    waiter->cv.notify_one();
  });
  std::unique_lock lock(waiter->mu);
  waiter->cv.wait(lock, [&] { return waiter->result.has_value(); });
  return std::move(*waiter->result);
}

}  // namespace adapter::store
