// The administration API without the transport: what the admin HTTP endpoint serves (behind its
// loopback bind and bearer token) and what `adapterd messages ...` prints.
//
//   GET  /messages?state=&control_id=&source=&sender=&from=&until=&after=&limit=
//                                        find messages (from/until: an instant such as
//                                        2026-11-27T03:00:00Z, or microseconds since the epoch)
//   GET  /messages/{id}/detail           one message: raw bytes, state, mapping (issues,
//                                        unmapped report, Bundle), deliveries and every attempt
//   POST /messages/{id}/replay           map it again with the current templates (then deliver)
//   GET  /dead-letters                   every dead letter with its reason
//   POST /dead-letters/{id}/retry        map again and deliver again ("all" for every one)
//   POST /dead-letters/{id}/discard?reason=TEXT
//
// Answers are JSON. The raw message is in the answer as sent (as "raw", or "raw_base64" when it
// is not UTF-8): this API is for the people who run the integration, like the store itself.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "store/inbox_store.h"
#include "store/outbox.h"

namespace adapter::app {

struct AdminResponse {
  unsigned status = 200;
  std::string body;  // JSON
};

class AdminApi {
 public:
  AdminApi(store::InboxStore& inbox, store::Outbox& outbox) : inbox_(inbox), outbox_(outbox) {}

  // Nothing when `target` is not one of the API's paths.
  std::optional<AdminResponse> handle(std::string_view method, std::string_view target);

 private:
  AdminResponse find(std::string_view query);
  AdminResponse detail(std::int64_t id);
  AdminResponse replay(std::int64_t id);
  AdminResponse dead_letters();
  AdminResponse retry(std::optional<std::int64_t> id);
  AdminResponse discard(std::int64_t id, std::string_view query);

  store::InboxStore& inbox_;
  store::Outbox& outbox_;
};

// "2026-11-27T03:00:00Z" (optionally with fractions and a +hh:mm offset) or plain microseconds.
std::optional<std::int64_t> parse_instant_us(std::string_view text);

}  // namespace adapter::app
