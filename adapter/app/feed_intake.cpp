#include "app/feed_intake.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "app/json_values.h"
#include "app/mapping_worker.h"
#include "common/instants.h"
#include "common/log.h"
#include "common/secret_compare.h"
#include "common/sha256.h"
#include "mapping/document_id.h"
#include "mapping/json.h"
#include "xml/document.h"

namespace adapter::app {

using mapping::Json;
using mapping::JsonArray;
using mapping::JsonObject;
using store::Disposition;
using store::MessageState;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "Bearer <key>" (the scheme is case-insensitive, RFC 7235): the key, or nothing.
std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      lower(authorization.substr(0, kScheme.size())) != kScheme) {
    return {};
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}

bool holds_credentials(const HttpFeedConfig& feed, std::string_view authorization,
                       std::string_view client_cn) {
  if (!feed.api_key.empty() && same_secret(bearer_token(authorization), feed.api_key)) return true;
  return !feed.client_certificate_cn.empty() && !client_cn.empty() &&
         client_cn == feed.client_certificate_cn;
}

std::string status_url(std::int64_t id) {
  return "/messages/" + std::to_string(id);
}

HttpAnswer accepted(std::int64_t id, bool duplicate, std::string_view document_id) {
  HttpAnswer a;
  a.status = duplicate ? 200 : 202;
  a.location = status_url(id);
  JsonObject body{{"id", Json::number(static_cast<double>(id))},
                  {"status_url", Json::string(a.location)},
                  {"state", Json::string("received")},
                  {"duplicate", Json::boolean(duplicate)}};
  if (!document_id.empty())
    body.emplace_back("document_id", Json::string(std::string(document_id)));
  a.body = Json::object(std::move(body)).dump() + "\n";
  return a;
}

// FHIR issue-type codes for the errors ingress reports.
std::string_view issue_code(Errc code) {
  switch (code) {
    case Errc::not_xml:
    case Errc::not_hl7:
    case Errc::bad_delimiters:
    case Errc::bad_segment:
    case Errc::bad_batch:
    case Errc::truncated:
      return "structure";
    case Errc::xml_refused:
      return "security";
    case Errc::bad_encoding:
    case Errc::unsupported_charset:
      return "invalid";
    case Errc::missing_field:
      return "required";
    case Errc::message_type_refused:
    case Errc::bad_config:
      return "not-supported";
    case Errc::duplicate_conflict:
      return "duplicate";
    case Errc::store_unavailable:
      return "transient";
    default:
      return "exception";
  }
}

// Rapidjson's view of a stored JSON text, or null when it does not parse.
std::unique_ptr<rapidjson::Document> parse_json(const std::string& text) {
  auto doc = std::make_unique<rapidjson::Document>();
  doc->Parse(text.c_str(), text.size());
  if (doc->HasParseError()) return nullptr;
  return doc;
}

const rapidjson::Value* member(const rapidjson::Value& obj, const char* key) {
  return obj.IsObject() && obj.HasMember(key) ? &obj[key] : nullptr;
}

std::string text_of(const rapidjson::Value* v) {
  return v != nullptr && v->IsString() ? std::string(v->GetString(), v->GetStringLength())
                                       : std::string();
}

// The resources a Bundle holds, with where the destination stored each: the transaction
// response's entries are in the Bundle's order (FHIR R4 §3.1.0.11.2).
Json resources_of(const std::string& bundle_json, const std::string& delivered_response) {
  const auto bundle = parse_json(bundle_json);
  if (!bundle) return Json();
  const auto response = delivered_response.empty() ? nullptr : parse_json(delivered_response);
  const rapidjson::Value* entries = member(*bundle, "entry");
  if (entries == nullptr || !entries->IsArray()) return Json();
  const bool zip = response && response->IsArray() && response->Size() == entries->Size();
  JsonArray out;
  rapidjson::SizeType i = 0;
  for (const auto& entry : entries->GetArray()) {
    JsonObject r;
    const rapidjson::Value* resource = member(entry, "resource");
    if (resource != nullptr) {
      r.emplace_back("resourceType", Json::string(text_of(member(*resource, "resourceType"))));
      const rapidjson::Value* ids = member(*resource, "identifier");
      if (ids != nullptr && ids->IsArray() && !ids->Empty()) {
        const std::string system = text_of(member((*ids)[0], "system"));
        const std::string value = text_of(member((*ids)[0], "value"));
        if (!value.empty()) {
          std::string token = system;
          token += '|';
          token += value;
          r.emplace_back("identifier", Json::string(token));
        }
      }
    }
    const std::string full_url = text_of(member(entry, "fullUrl"));
    if (!full_url.empty()) r.emplace_back("fullUrl", Json::string(full_url));
    if (zip) {
      const rapidjson::Value& answered = (*response)[i];
      const std::string location = text_of(member(answered, "location"));
      if (!location.empty()) r.emplace_back("location", Json::string(location));
      const std::string status = text_of(member(answered, "status"));
      if (!status.empty()) r.emplace_back("status", Json::string(status));
    }
    out.push_back(Json::object(std::move(r)));
    ++i;
  }
  return Json::array(std::move(out));
}

}  // namespace

BodyKind body_kind(std::string_view content_type) {
  const std::string type = lower(content_type.substr(0, content_type.find(';')));
  std::string_view t = type;
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  if (t == "application/xml" || t == "text/xml" ||
      (t.rfind("application/", 0) == 0 && t.size() > 4 && t.substr(t.size() - 4) == "+xml")) {
    return BodyKind::xml;
  }
  if (t == "x-application/hl7-v2+er7" || t == "application/hl7-v2+er7" ||
      t == "application/hl7-v2") {
    return BodyKind::hl7v2;
  }
  return BodyKind::unsupported;
}

HttpAnswer operation_outcome(unsigned status, std::string_view code, std::string_view text,
                             std::string_view where) {
  HttpAnswer a;
  a.status = status;
  a.content_type = "application/fhir+json";
  JsonObject issue{{"severity", Json::string(status >= 500 ? "fatal" : "error")},
                   {"code", Json::string(std::string(code))},
                   {"diagnostics", Json::string(std::string(text))}};
  if (!where.empty()) {
    issue.emplace_back("expression", Json::array({Json::string(std::string(where))}));
  }
  a.body = Json::object({{"resourceType", Json::string("OperationOutcome")},
                         {"issue", Json::array({Json::object(std::move(issue))})}})
               .dump() +
           "\n";
  return a;
}

std::string message_state(const store::StoredMessage& message,
                          const std::optional<store::MappingRecord>& mapping,
                          const std::vector<store::DeliveryRecord>& deliveries) {
  if (message.message.state == MessageState::rejected) return "rejected";
  if (!mapping || mapping->state == store::MappingState::pending) return "received";
  if (mapping->state == store::MappingState::mapping_failed) return "mapping-failed";
  if (deliveries.empty()) return "mapped";
  bool all_delivered = true;
  bool any_discarded = false;
  for (const auto& d : deliveries) {
    if (d.state == store::DeliveryState::dead_letter) return "dead-letter";
    any_discarded = any_discarded || d.state == store::DeliveryState::discarded;
    all_delivered = all_delivered && d.state == store::DeliveryState::delivered;
  }
  if (all_delivered) return "delivered";
  return any_discarded ? "discarded" : "mapped";
}

FeedIntake::FeedIntake(const HttpListenerConfig& config, std::string instance,
                       store::InboxStore& inbox, store::Outbox& outbox,
                       std::shared_ptr<MapperHolder> mappers, HttpStats& stats)
    : config_(config),
      instance_(std::move(instance)),
      inbox_(inbox),
      outbox_(outbox),
      mappers_(std::move(mappers)),
      stats_(stats) {
  for (const HttpFeedConfig& f : config_.feeds) {
    Hl7Feed h;
    h.name = f.name;
    h.stats = std::make_unique<MllpStats>();
    h.intake = std::make_unique<Intake>(ListenerPolicy{f.name, {}, hl7v2::Charset::utf8, instance_},
                                        inbox_, *h.stats);
    hl7_.push_back(std::move(h));
  }
}

void FeedIntake::set_on_stored(const std::function<void()>& hook) {
  on_stored_ = hook;
  for (auto& h : hl7_) h.intake->set_on_stored(hook);
}

const HttpFeedConfig* FeedIntake::authenticate(std::string_view feed,
                                               std::string_view authorization,
                                               std::string_view client_cn) const {
  for (const HttpFeedConfig& f : config_.feeds) {
    if (f.name == feed) return holds_credentials(f, authorization, client_cn) ? &f : nullptr;
  }
  return nullptr;
}

const HttpFeedConfig* FeedIntake::authenticate_any(std::string_view authorization,
                                                   std::string_view client_cn) const {
  for (const HttpFeedConfig& f : config_.feeds) {
    if (holds_credentials(f, authorization, client_cn)) return &f;
  }
  return nullptr;
}

void FeedIntake::submit(FeedRequest request, std::function<void(HttpAnswer)> done) {
  switch (body_kind(request.content_type)) {
    case BodyKind::xml:
      return submit_xml(std::move(request), std::move(done));
    case BodyKind::hl7v2:
      return submit_hl7(std::move(request), std::move(done));
    case BodyKind::unsupported:
      break;
  }
  // Kept, like every other body that is refused: the sender may have mislabelled a good report.
  const std::string why = "unsupported Content-Type '" + request.content_type +
                          "': send XML as application/xml and HL7 v2 as x-application/hl7-v2+er7";
  store::InboundMessage r;
  r.content_sha256 = sha256_hex(request.body);
  r.raw = std::move(request.body);
  r.received_at_us = request.received_at_us;
  r.listener = request.feed->name;
  r.peer = std::move(request.peer);
  r.sender_application = request.feed->name;
  r.state = MessageState::rejected;
  r.error = "unsupported_media_type: " + why;
  r.ack_code = "415";
  store_and_answer(std::move(r), operation_outcome(415, "not-supported", why), std::move(done));
}

void FeedIntake::submit_xml(FeedRequest request, std::function<void(HttpAnswer)> done) {
  store::InboundMessage r;
  r.content_sha256 = sha256_hex(request.body);
  r.received_at_us = request.received_at_us;
  r.listener = request.feed->name;
  r.peer = std::move(request.peer);
  r.sender_application = request.feed->name;

  std::optional<HttpAnswer> rejection;
  auto reject = [&](const Error& e, std::string_view where) {
    r.state = MessageState::rejected;
    r.error = std::string(name(e.code)) + (where.empty() ? "" : " at " + std::string(where)) +
              ": " + e.message;
    // Errors of the adapter's own making (500 in errc.def) are still the document's fault here:
    // a route or identifier it lacks.
    const int http = info(e.code).http_status;
    const unsigned status = http == 500 ? 400U : static_cast<unsigned>(http);
    r.ack_code = std::to_string(status);
    rejection = operation_outcome(status, issue_code(e.code), e.message, where);
  };

  xml::Limits limits;
  limits.max_bytes = config_.max_body_bytes;
  auto doc = xml::parse(request.body, limits);
  if (!doc) {
    reject(doc.error(), doc.error().where);
  } else {
    r.message_type = "XML " + doc->root_name();
    const std::shared_ptr<const Mapper> mapper = mappers_ ? mappers_->current() : nullptr;
    if (!mapper) {
      // No mappings loaded: kept as received and identified by its hash; mapped once a
      // mappings folder is configured (the mapping worker picks up every unmapped message).
      r.control_id = "sha256:" + r.content_sha256;
    } else if (auto route = mapping::route_xml(mapper->templates(), *doc); !route) {
      reject(make_error(Errc::bad_config, route.error().message), "");
    } else if (auto id = mapping::document_identifier(**route, *doc); !id) {
      reject(id.error(), "");
    } else {
      r.control_id = id->empty() ? "sha256:" + r.content_sha256 : *id;
    }
  }
  if (!rejection) r.ack_code = "202";
  r.raw = std::move(request.body);
  store_and_answer(std::move(r), std::move(rejection), std::move(done));
}

void FeedIntake::store_and_answer(store::InboundMessage record, std::optional<HttpAnswer> rejection,
                                  std::function<void(HttpAnswer)> done) {
  const std::string feed = record.listener;
  const std::string document_id = record.control_id;
  std::vector<store::InboundMessage> records;
  records.push_back(std::move(record));
  inbox_.append(std::move(records), [this, feed, document_id, rejection = std::move(rejection),
                                     done = std::move(done)](
                                        Result<std::vector<store::AppendOutcome>> result) mutable {
    if (!result) {
      bump(stats_.store_failures);
      log::error("http.store_failed", {{"feed", feed}, {"error", result.error().message}});
      HttpAnswer a = operation_outcome(503, "transient",
                                       "the document could not be stored; send it again later");
      a.retry_after_seconds = 5;
      return done(std::move(a));
    }
    const store::AppendOutcome& outcome = result->front();
    if (rejection) {
      if (rejection->status != 413) bump(stats_.documents_rejected);  // 413 counts on its own
      log::info("http.rejected",
                {{"feed", feed}, {"message_id", outcome.id}, {"status", rejection->status}});
      rejection->location = status_url(outcome.id);
      return done(std::move(*rejection));
    }
    if (outcome.disposition == Disposition::conflict) {
      bump(stats_.documents_rejected);
      HttpAnswer a = operation_outcome(
          409, "duplicate",
          "document '" + document_id + "' was already accepted (message " +
              std::to_string(outcome.original_id) +
              ") with different content; a corrected report needs its own identifier (version)");
      a.location = status_url(outcome.id);
      return done(std::move(a));
    }
    const bool duplicate = outcome.disposition == Disposition::duplicate;
    bump(duplicate ? stats_.documents_duplicate : stats_.documents_accepted);
    if (!duplicate && on_stored_) on_stored_();
    log::debug("http.stored", {{"feed", feed},
                               {"message_id", outcome.id},
                               {"disposition", store::to_string(outcome.disposition)}});
    done(accepted(duplicate ? outcome.original_id : outcome.id, duplicate,
                  document_id.rfind("sha256:", 0) == 0 ? std::string_view() : document_id));
  });
}

void FeedIntake::submit_hl7(FeedRequest request, std::function<void(HttpAnswer)> done) {
  Intake* intake = nullptr;
  for (auto& h : hl7_) {
    if (h.name == request.feed->name) intake = h.intake.get();
  }
  Inbound in;
  in.payload = std::move(request.body);
  in.peer = std::move(request.peer);
  in.received_at_us = request.received_at_us;
  intake->submit(std::move(in), [this, done = std::move(done)](Receipt receipt) {
    if (receipt.positive) {
      bump(receipt.duplicate ? stats_.documents_duplicate : stats_.documents_accepted);
      HttpAnswer a = accepted(receipt.message_ids.empty() ? 0 : receipt.message_ids.front(),
                              receipt.duplicate, {});
      if (receipt.message_ids.size() > 1) {  // a batch: every message's id
        JsonArray ids;
        for (std::int64_t id : receipt.message_ids)
          ids.push_back(Json::number(static_cast<double>(id)));
        a.body = Json::object({{"ids", Json::array(std::move(ids))},
                               {"status_url", Json::string(a.location)},
                               {"state", Json::string("received")}})
                     .dump() +
                 "\n";
      }
      return done(std::move(a));
    }
    if (receipt.outcome == Errc::store_unavailable)
      bump(stats_.store_failures);
    else
      bump(stats_.documents_rejected);
    const ErrcInfo& i = info(receipt.outcome);
    // "<code> at <where>: <text>": the where goes to expression, as for XML.
    std::string where;
    std::string text = receipt.error;
    if (const auto at = text.find(" at "); at != std::string::npos) {
      const auto colon = text.find(": ", at);
      if (colon != std::string::npos) {
        where = text.substr(at + 4, colon - at - 4);
        text = text.substr(colon + 2);
      }
    }
    HttpAnswer a =
        operation_outcome(i.http_status == 500 ? 400 : static_cast<unsigned>(i.http_status),
                          issue_code(receipt.outcome), text, where);
    if (!receipt.message_ids.empty()) a.location = status_url(receipt.message_ids.front());
    if (receipt.outcome == Errc::store_unavailable) a.retry_after_seconds = 5;
    done(std::move(a));
  });
}

void FeedIntake::submit_too_large(const HttpFeedConfig& feed, std::string peer,
                                  std::uint64_t declared_bytes, std::int64_t received_at_us,
                                  std::function<void(HttpAnswer)> done) {
  bump(stats_.bodies_too_large);
  const std::string why =
      (declared_bytes > 0 ? "the body (" + std::to_string(declared_bytes) + " bytes) is"
                          : "the body is") +
      std::string(" larger than this listener accepts (max_body_bytes ") +
      std::to_string(config_.max_body_bytes) + "); it was not read";
  store::InboundMessage r;
  r.received_at_us = received_at_us;
  r.listener = feed.name;
  r.peer = std::move(peer);
  r.sender_application = feed.name;
  r.content_sha256 = sha256_hex("");
  r.state = MessageState::rejected;
  r.error = "frame_too_large: " + why;
  r.ack_code = "413";
  store_and_answer(std::move(r), operation_outcome(413, "too-long", why), std::move(done));
}

namespace {

// What a message kept as rejected before a stop answers when its file is taken again.
HttpAnswer kept_answer(const store::StoredMessage& m) {
  // XML rejections keep their HTTP status as the ACK code; HL7 v2 ones keep AR or AE.
  unsigned status = 400;
  const std::string& ack = m.message.ack_code;
  unsigned code = 0;
  const auto [end, err] = std::from_chars(ack.data(), ack.data() + ack.size(), code);
  if (err == std::errc() && end == ack.data() + ack.size() && code >= 400 && code < 600) {
    status = code;
  }
  HttpAnswer a = operation_outcome(status, "invalid",
                                   "kept as rejected message " + std::to_string(m.id) +
                                       " before a stop (not kept again): " + m.message.error);
  a.location = status_url(m.id);
  return a;
}

}  // namespace

std::optional<HttpAnswer> FeedIntake::kept_rejection(const HttpFeedConfig& feed,
                                                     std::string_view bytes) {
  store::MessageQuery q;
  q.state = MessageState::rejected;
  q.source = feed.name;
  q.content_sha256 = sha256_hex(bytes);
  q.limit = 1;
  auto found = inbox_.find(q);
  if (!found) return operation_outcome(503, "transient", "the store could not be read");
  if (found->empty()) return std::nullopt;
  return kept_answer(found->front());
}

std::optional<HttpAnswer> FeedIntake::kept_too_large(const HttpFeedConfig& feed,
                                                     const std::string& peer,
                                                     std::uint64_t declared_bytes,
                                                     std::int64_t not_before_us) {
  store::MessageQuery q;
  q.state = MessageState::rejected;
  q.source = feed.name;
  q.peer = peer;
  q.content_sha256 = sha256_hex("");
  q.received_from_us = not_before_us;
  auto found = inbox_.find(q);
  if (!found) return operation_outcome(503, "transient", "the store could not be read");
  const std::string size = "(" + std::to_string(declared_bytes) + " bytes)";
  for (auto m = found->rbegin(); m != found->rend(); ++m) {
    if (m->message.ack_code == "413" && m->message.error.find(size) != std::string::npos) {
      return kept_answer(*m);
    }
  }
  return std::nullopt;
}

HttpAnswer FeedIntake::status(std::int64_t id, const HttpFeedConfig& asker) {
  bump(stats_.status_requests);
  auto stored = inbox_.get(id);
  if (!stored) return operation_outcome(503, "transient", "the store could not be read");
  // Another feed's message is "not found", so that ids cannot be probed across feeds.
  if (!*stored || (*stored)->message.listener != asker.name) {
    return operation_outcome(
        404, "not-found", "no message " + std::to_string(id) + " from feed '" + asker.name + "'");
  }
  const store::StoredMessage& m = **stored;
  auto mapping = inbox_.mapping_of(id);
  auto deliveries = outbox_.deliveries_of(id);
  if (!mapping || !deliveries)
    return operation_outcome(503, "transient", "the store could not be read");

  JsonObject out;
  out.emplace_back("id", Json::number(static_cast<double>(id)));
  out.emplace_back("feed", Json::string(m.message.listener));
  out.emplace_back("state", Json::string(message_state(m, *mapping, *deliveries)));
  out.emplace_back("received_at", Json::string(fhir_instant_utc(m.message.received_at_us)));
  if (!m.message.message_type.empty())
    out.emplace_back("type", Json::string(m.message.message_type));
  if (!m.message.control_id.empty() && m.message.control_id.rfind("sha256:", 0) != 0)
    out.emplace_back("document_id", Json::string(m.message.control_id));
  out.emplace_back("sha256", Json::string(m.message.content_sha256));
  if (m.duplicate_count > 0)
    out.emplace_back("resubmissions", Json::number(static_cast<double>(m.duplicate_count)));
  if (!m.message.error.empty()) out.emplace_back("error", Json::string(m.message.error));
  std::string delivered_response;
  for (const auto& d : *deliveries) {
    if (d.state == store::DeliveryState::delivered && delivered_response.empty())
      delivered_response = d.response;
  }
  if (*mapping) {
    const store::MappingRecord& rec = **mapping;
    JsonObject mo{{"state", Json::string(std::string(store::to_string(rec.state)))},
                  {"template", Json::string(rec.template_name)},
                  {"version", Json::string(rec.template_version)},
                  {"template_set", Json::string(rec.template_set)},
                  {"mapped_at", Json::string(fhir_instant_utc(rec.mapped_at_us))}};
    out.emplace_back("mapping", Json::object(std::move(mo)));
    if (auto issues = parse_json(rec.issues_json); issues && issues->IsArray())
      out.emplace_back("issues", json_from_rapidjson(*issues));
    Json resources = resources_of(rec.bundle_json, delivered_response);
    if (!resources.is_null()) out.emplace_back("resources", std::move(resources));
  }
  JsonArray ds;
  for (const auto& d : *deliveries) {
    JsonObject o{{"destination", Json::string(d.destination)},
                 {"state", Json::string(std::string(store::to_string(d.state)))},
                 {"attempts", Json::number(static_cast<double>(d.attempts))}};
    if (d.last_status != 0)
      o.emplace_back("last_status", Json::number(static_cast<double>(d.last_status)));
    if (!d.last_error.empty()) o.emplace_back("last_error", Json::string(d.last_error));
    if (d.delivered_at_us != 0)
      o.emplace_back("delivered_at", Json::string(fhir_instant_utc(d.delivered_at_us)));
    ds.push_back(Json::object(std::move(o)));
  }
  if (!ds.empty()) out.emplace_back("deliveries", Json::array(std::move(ds)));
  HttpAnswer a;
  a.status = 200;
  a.body = Json::object(std::move(out)).dump(true) + "\n";
  return a;
}

}  // namespace adapter::app
