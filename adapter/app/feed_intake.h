// HTTP ingress without the transport: what POST /feeds/{feed} and GET /messages/{id} do, given a
// request already read. net/http_ingress.cpp reads and writes HTTP; this decides.
//
// A body is stored durably before it is answered, whatever it holds: a document is stored as
// received and answered 202 with its id and status URL; a body that is not well-formed, has no
// route or an unsupported media type is stored as rejected and answered 4xx with an
// OperationOutcome that says what and where. A document seen before (same feed and document
// identifier, which is the SHA-256 when its template declares none) gets the original's id, 200,
// and is not processed again. HL7 v2 bodies go through the same Intake as MLLP.
//
// Thread-safe. submit()'s callback runs on the store's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "app/config.h"
#include "app/intake.h"
#include "app/mapper_holder.h"
#include "app/stats.h"
#include "app/translate.h"
#include "store/inbox_store.h"
#include "store/outbox.h"

namespace adapter::app {

struct FeedRequest {
  const HttpFeedConfig* feed = nullptr;  // authenticated already (FeedIntake::authenticate)
  std::string content_type;              // as sent, parameters included
  std::string body;
  std::string peer;  // "address:port"
  std::int64_t received_at_us = 0;
};

struct HttpAnswer {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string location;  // a status URL ("/messages/12") for 200/202 and stored rejections
  int retry_after_seconds = 0;
};

// What a body's Content-Type makes of it.
enum class BodyKind { xml, hl7v2, unsupported };
BodyKind body_kind(std::string_view content_type);

// An OperationOutcome with one issue: {"resourceType": "OperationOutcome", "issue": [{"severity":
// "error", "code": <code>, "diagnostics": <text>, "expression": [<where>]}]}. `code` is a FHIR
// issue-type code ("structure", "security", "too-long", "not-supported", "duplicate"...).
HttpAnswer operation_outcome(unsigned status, std::string_view code, std::string_view text,
                             std::string_view where = {});

// The state a client sees (GET /messages/{id}): received, rejected, mapped, mapping-failed,
// delivered, dead-letter, discarded.
std::string message_state(const store::StoredMessage& message,
                          const std::optional<store::MappingRecord>& mapping,
                          const std::vector<store::DeliveryRecord>& deliveries);

class FeedIntake {
 public:
  // `mappers` may be null (no mappings folder): XML is then stored unrouted, identified by its
  // SHA-256. XML is routed with the set current when it arrives. Everything passed must outlive
  // the FeedIntake.
  FeedIntake(const HttpListenerConfig& config, std::string instance, store::InboxStore& inbox,
             store::Outbox& outbox, std::shared_ptr<MapperHolder> mappers, HttpStats& stats);

  // The feed named `feed` if the credentials are its own: the bearer API key in `authorization`
  // (the whole header value), or a verified client certificate whose CN is the feed's. nullptr
  // otherwise (unknown feeds included, so that names cannot be probed).
  const HttpFeedConfig* authenticate(std::string_view feed, std::string_view authorization,
                                     std::string_view client_cn) const;
  // The feed whose credentials these are, for GET /messages/{id}.
  const HttpFeedConfig* authenticate_any(std::string_view authorization,
                                         std::string_view client_cn) const;

  void submit(FeedRequest request, std::function<void(HttpAnswer)> done);

  // A body over max_body_bytes: its reading was stopped; the event is stored as a rejected
  // message (without the body) so that it is counted and can be looked up, then answered 413.
  void submit_too_large(const HttpFeedConfig& feed, std::string peer, std::uint64_t declared_bytes,
                        std::int64_t received_at_us, std::function<void(HttpAnswer)> done);

  // For a file a drop folder takes again after a stop (found in processing/): when `feed`
  // already kept these exact bytes as a rejected message (stored, then stopped before the file
  // was moved), the answer it got then, so that the file is finished without a second rejected
  // row. Nothing otherwise (then submit() it: an accepted message is recognised by the store
  // itself). A store that cannot be read answers 503 (try again later). Reads the store
  // (blocking; rejected rows only, by index).
  std::optional<HttpAnswer> kept_rejection(const HttpFeedConfig& feed, std::string_view bytes);
  // The same for a file too large to read (submit_too_large()): its rejection is recognised by
  // the file's name (`peer`, "folder:<name>"), its size and a receipt no earlier than
  // `not_before_us` (the file's last write), since no bytes of it were kept.
  std::optional<HttpAnswer> kept_too_large(const HttpFeedConfig& feed, const std::string& peer,
                                           std::uint64_t declared_bytes,
                                           std::int64_t not_before_us);

  // GET /messages/{id}: 404 unless the message came from `asker`. Reads the store (blocking:
  // a few indexed SQLite reads).
  HttpAnswer status(std::int64_t id, const HttpFeedConfig& asker);

  const HttpListenerConfig& config() const { return config_; }

  // Wakes the mapping worker after each stored body. Set before submit().
  void set_on_stored(const std::function<void()>& hook);

  // The per-feed HL7 v2 counters, for /metrics (labelled with the feed's name).
  template <class Fn>
  void for_each_hl7_stats(Fn&& fn) const {
    for (const auto& f : hl7_) fn(f.name, *f.stats);
  }

 private:
  void submit_xml(FeedRequest request, std::function<void(HttpAnswer)> done);
  void submit_hl7(FeedRequest request, std::function<void(HttpAnswer)> done);
  // Stores `record` and answers from the store's outcome (202, 200 duplicate, 409, 503), or with
  // `rejection` once a rejected record is durable.
  void store_and_answer(store::InboundMessage record, std::optional<HttpAnswer> rejection,
                        std::function<void(HttpAnswer)> done);

  const HttpListenerConfig& config_;
  std::string instance_;
  store::InboxStore& inbox_;
  store::Outbox& outbox_;
  std::shared_ptr<MapperHolder> mappers_;
  HttpStats& stats_;
  // HL7 v2 bodies: the MLLP intake, one per feed (its name is the message's source).
  struct Hl7Feed {
    std::string name;
    std::unique_ptr<MllpStats> stats;
    std::unique_ptr<Intake> intake;
  };
  std::vector<Hl7Feed> hl7_;
  std::function<void()> on_stored_;
};

}  // namespace adapter::app
