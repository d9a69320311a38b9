// The administration API without the transport: what the admin HTTP endpoint serves (behind its
// loopback bind and bearer token) and what `adapterd messages ...` prints.
//
//   GET  /messages?state=&control_id=&source=&sender=&from=&until=&after=&limit=
//                                        find messages (from/until: an instant such as
//                                        2026-11-27T03:00:00Z, or microseconds since the epoch)
//   GET  /messages/{id}/detail           one message: raw bytes, state, mapping (issues,
//                                        unmapped report, Bundle), deliveries and every attempt
//   POST /messages/{id}/replay           map it again with the current templates (then deliver)
//   GET  /messages/{id}/replay-preview   what that replay would change, without replaying
//                                        (app/replay_preview.h): the Bundle's differences, issues
//                                        and unmapped values added or gone, the state
//   GET  /replay-preview?<the filters of GET /messages>
//                                        the same for each message found (received ones only),
//                                        with how many would change and how many would fail
//   POST /replay?<the filters of GET /messages>
//                                        replays every message found (received ones; at least
//                                        one filter; paged by limit and after like /messages)
//   GET  /messages?...&mapping=          also filters by mapping state: pending, mapped,
//                                        mapping_failed
//   GET  /dead-letters                   every dead letter with its reason
//   POST /dead-letters/{id}/retry        map again and deliver again ("all" for every one)
//   POST /dead-letters/{id}/discard?reason=TEXT
//
// Answers are JSON. The raw message is in the answer as sent (as "raw", or "raw_base64" when it
// is not UTF-8): this API is for the people who run the integration, like the store itself.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "app/translate.h"
#include "store/inbox_store.h"
#include "store/outbox.h"

namespace adapter::app {

struct AdminResponse {
  unsigned status = 200;
  std::string body;  // JSON
};

class AdminApi {
 public:
  // `mappers`: the mappings in use now (the daemon's MapperHolder), for the replay previews;
  // without it, or while it gives none, they answer 409.
  using CurrentMapper = std::function<std::shared_ptr<const Mapper>()>;
  AdminApi(store::InboxStore& inbox, store::Outbox& outbox, CurrentMapper mappers = {})
      : inbox_(inbox), outbox_(outbox), mappers_(std::move(mappers)) {}

  // Nothing when `target` is not one of the API's paths.
  std::optional<AdminResponse> handle(std::string_view method, std::string_view target);

 private:
  AdminResponse find(std::string_view query);
  AdminResponse detail(std::int64_t id);
  AdminResponse replay(std::int64_t id);
  AdminResponse preview_one(std::int64_t id);
  AdminResponse preview(std::string_view query);
  AdminResponse replay_found(std::string_view query);
  std::shared_ptr<const Mapper> current_mapper() const;
  AdminResponse dead_letters();
  AdminResponse retry(std::optional<std::int64_t> id);
  AdminResponse discard(std::int64_t id, std::string_view query);

  store::InboxStore& inbox_;
  store::Outbox& outbox_;
  CurrentMapper mappers_;
};

}  // namespace adapter::app
