#include "store/outbox.h"

#include <utility>

#include "store/inbox_store.h"  // call_and_wait

namespace adapter::store {

std::string_view to_string(DeliveryState state) {
  switch (state) {
    case DeliveryState::pending:
      return "pending";
    case DeliveryState::delivered:
      return "delivered";
    case DeliveryState::dead_letter:
      return "dead_letter";
    case DeliveryState::discarded:
      return "discarded";
  }
  return "unknown";
}

std::optional<DeliveryState> parse_delivery_state(std::string_view text) {
  for (DeliveryState s : {DeliveryState::pending, DeliveryState::delivered,
                          DeliveryState::dead_letter, DeliveryState::discarded}) {
    if (text == to_string(s)) return s;
  }
  return std::nullopt;
}

Status record_delivery_and_wait(Outbox& outbox, DeliveryUpdate update) {
  return call_and_wait<Status>([&](Outbox::StatusCallback done) {
    outbox.record_delivery(std::move(update), std::move(done));
  });
}

}  // namespace adapter::store
