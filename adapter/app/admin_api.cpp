#include "app/admin_api.h"

#include <charconv>
#include <ctime>
#include <variant>
#include <vector>

#include "app/intake.h"
#include "app/json_values.h"
#include "app/mapping_worker.h"
#include "app/replay_preview.h"
#include "common/instants.h"
#include "common/utf8.h"
#include "mapping/json.h"

namespace adapter::app {

using mapping::Json;
using mapping::JsonArray;
using mapping::JsonObject;

namespace {

AdminResponse json_answer(unsigned status, const Json& body) {
  return AdminResponse{status, body.dump(true) + "\n"};
}

AdminResponse error_answer(unsigned status, std::string_view message) {
  return json_answer(status, Json::object({{"error", Json::string(message)}}));
}

Json number(std::int64_t n) {
  return Json::number(std::to_string(n));
}

std::optional<std::int64_t> parse_id(std::string_view text) {
  std::int64_t id = 0;
  const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (err != std::errc() || end != text.data() + text.size() || id <= 0) return std::nullopt;
  return id;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      const auto [end, err] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (err == std::errc() && end == s.data() + i + 3) {
        out += static_cast<char>(v);
        i += 2;
      } else {
        out += s[i];
      }
    } else {
      out += s[i];
    }
  }
  return out;
}

// "a=1&b=x%20y" -> value of `key`, decoded.
std::optional<std::string> query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const auto n = static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16 |
                   static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                   static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 2]));
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> shift) & 63];
  }
  if (i < bytes.size()) {
    unsigned n = static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16;
    if (i + 1 < bytes.size())
      n |= static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Json summary(const store::StoredMessage& m) {
  const auto& r = m.message;
  return Json::object({{"id", number(m.id)},
                       {"received_at", Json::string(fhir_instant_utc(r.received_at_us))},
                       {"source", Json::string(r.listener)},
                       {"sender_application", Json::string(r.sender_application)},
                       {"sender_facility", Json::string(r.sender_facility)},
                       {"control_id", Json::string(r.control_id)},
                       {"type", Json::string(r.message_type)},
                       {"state", Json::string(std::string(store::to_string(r.state)))},
                       {"ack", Json::string(r.ack_code)},
                       {"error", Json::string(r.error)},
                       {"resends", number(m.duplicate_count)}});
}

Json delivery_json(const store::DeliveryRecord& d) {
  return Json::object(
      {{"message_id", number(d.message_id)},
       {"destination", Json::string(d.destination)},
       {"state", Json::string(std::string(store::to_string(d.state)))},
       {"attempts", number(d.attempts)},
       {"last_status", number(d.last_status)},
       {"last_error", Json::string(d.last_error)},
       {"order_key", Json::string(d.order_key)},
       {"delivered_at",
        d.delivered_at_us != 0 ? Json::string(fhir_instant_utc(d.delivered_at_us)) : Json()},
       {"discard_reason", Json::string(d.discard_reason)},
       {"response", parse_stored_json(d.response)}});
}

}  // namespace

std::optional<AdminResponse> AdminApi::handle(std::string_view method, std::string_view target) {
  const auto qmark = target.find('?');
  const std::string_view path = target.substr(0, qmark);
  const std::string_view query =
      qmark == std::string_view::npos ? std::string_view() : target.substr(qmark + 1);
  const bool get = method == "GET";
  const bool post = method == "POST";
  if (path == "/messages") {
    if (!get) return error_answer(405, "GET /messages");
    return find(query);
  }
  if (path == "/dead-letters") {
    if (!get) return error_answer(405, "GET /dead-letters");
    return dead_letters();
  }
  if (path == "/replay-preview") {
    if (!get) return error_answer(405, "GET /replay-preview");
    return preview(query);
  }
  if (path == "/replay") {
    if (!post) return error_answer(405, "POST /replay");
    return replay_found(query);
  }
  for (std::string_view prefix :
       {std::string_view("/messages/"), std::string_view("/dead-letters/")}) {
    if (path.substr(0, prefix.size()) != prefix) continue;
    std::string_view rest = path.substr(prefix.size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) continue;
    const std::string_view id_text = rest.substr(0, slash);
    const std::string_view action = rest.substr(slash + 1);
    const bool messages = prefix == "/messages/";
    if (!messages && id_text == "all" && action == "retry") {
      return post ? retry(std::nullopt) : error_answer(405, "POST");
    }
    const std::optional<std::int64_t> id = parse_id(id_text);
    if (!id) return error_answer(404, "no message '" + std::string(id_text) + "'");
    if (messages && action == "detail") return get ? detail(*id) : error_answer(405, "GET");
    if (messages && action == "replay") return post ? replay(*id) : error_answer(405, "POST");
    if (messages && action == "replay-preview") {
      return get ? preview_one(*id) : error_answer(405, "GET");
    }
    if (!messages && action == "retry") return post ? retry(*id) : error_answer(405, "POST");
    if (!messages && action == "discard") {
      return post ? discard(*id, query) : error_answer(405, "POST");
    }
  }
  return std::nullopt;
}

namespace {

// The filters of GET /messages, shared by GET /replay-preview and POST /replay: the query, or
// the 400 answer.
std::variant<store::MessageQuery, AdminResponse> message_query(std::string_view query) {
  store::MessageQuery q;
  if (auto s = query_value(query, "state")) {
    if (*s == "received") {
      q.state = store::MessageState::received;
    } else if (*s == "rejected") {
      q.state = store::MessageState::rejected;
    } else {
      return error_answer(400, "state must be received or rejected");
    }
  }
  if (auto m = query_value(query, "mapping")) {
    if (*m == "pending") {
      q.mapping_state = store::MappingState::pending;
    } else if (*m == "mapped") {
      q.mapping_state = store::MappingState::mapped;
    } else if (*m == "mapping_failed") {
      q.mapping_state = store::MappingState::mapping_failed;
    } else {
      return error_answer(400, "mapping must be pending, mapped or mapping_failed");
    }
  }
  if (auto v = query_value(query, "control_id")) q.control_id = *v;
  if (auto v = query_value(query, "source")) q.source = *v;
  if (auto v = query_value(query, "sender")) q.sender_application = *v;
  for (const char* key : {"from", "until"}) {
    if (auto v = query_value(query, key)) {
      const auto us = parse_instant_us(*v);
      if (!us)
        return error_answer(400,
                            std::string(key) + " must be an instant such as 2026-11-27T03:00:00Z");
      (std::string_view(key) == "from" ? q.received_from_us : q.received_until_us) = *us;
    }
  }
  if (auto v = query_value(query, "after")) {
    const auto id = parse_id(*v);
    if (!id) return error_answer(400, "after must be a message id");
    q.after_id = *id;
  }
  q.limit = 100;
  if (auto v = query_value(query, "limit")) {
    const auto n = parse_id(*v);
    if (!n || *n > 1000) return error_answer(400, "limit must be 1..1000");
    q.limit = static_cast<std::size_t>(*n);
  }
  return q;
}

}  // namespace

AdminResponse AdminApi::find(std::string_view query) {
  auto parsed = message_query(query);
  if (auto* bad = std::get_if<AdminResponse>(&parsed)) return std::move(*bad);
  const store::MessageQuery& q = std::get<store::MessageQuery>(parsed);
  auto rows = inbox_.find(q);
  if (!rows) return error_answer(503, "the store could not be read: " + rows.error().message);
  JsonArray out;
  for (const auto& m : *rows) out.push_back(summary(m));
  JsonObject body{{"messages", Json::array(std::move(out))}};
  if (rows->size() == q.limit && !rows->empty())
    body.emplace_back("next_after", number(rows->back().id));
  return json_answer(200, Json::object(std::move(body)));
}

AdminResponse AdminApi::detail(std::int64_t id) {
  auto m = inbox_.get(id);
  auto mapping = inbox_.mapping_of(id);
  auto deliveries = outbox_.deliveries_of(id);
  auto attempts = outbox_.attempts_of(id);
  if (!m || !mapping || !deliveries || !attempts)
    return error_answer(503, "the store could not be read");
  if (!*m) return error_answer(404, "no message " + std::to_string(id));
  JsonObject out = summary(**m).object_members();
  out.emplace_back("peer", Json::string((*m)->message.peer));
  out.emplace_back("sha256", Json::string((*m)->message.content_sha256));
  const std::string& raw = (*m)->message.raw;
  if (find_invalid_utf8(raw) == std::string::npos) {
    out.emplace_back("raw", Json::string(raw));
  } else {
    out.emplace_back("raw_base64", Json::string(base64(raw)));
  }
  if (*mapping) {
    const store::MappingRecord& r = **mapping;
    out.emplace_back("mapping",
                     Json::object({{"state", Json::string(std::string(store::to_string(r.state)))},
                                   {"template", Json::string(r.template_name)},
                                   {"version", Json::string(r.template_version)},
                                   {"template_set", Json::string(r.template_set)},
                                   {"mapped_at", Json::string(fhir_instant_utc(r.mapped_at_us))},
                                   {"attempts", number(r.attempts)},
                                   {"issues", parse_stored_json(r.issues_json)},
                                   {"unmapped", parse_stored_json(r.unmapped_json)},
                                   {"bundle", parse_stored_json(r.bundle_json)}}));
  }
  JsonArray ds;
  for (const auto& d : *deliveries) ds.push_back(delivery_json(d));
  out.emplace_back("deliveries", Json::array(std::move(ds)));
  JsonArray as;
  for (const auto& a : *attempts) {
    as.push_back(
        Json::object({{"destination", Json::string(a.destination)},
                      {"number", number(a.number)},
                      {"started_at", Json::string(fhir_instant_utc(a.started_at_us))},
                      {"duration_ms", Json::number(static_cast<double>(a.duration_us) / 1000)},
                      {"status", number(a.status)},
                      {"outcome", Json::string(a.outcome)},
                      {"error", Json::string(a.error)}}));
  }
  out.emplace_back("attempts", Json::array(std::move(as)));
  return json_answer(200, Json::object(std::move(out)));
}

AdminResponse AdminApi::replay(std::int64_t id) {
  auto n = inbox_.requeue_mappings(id);
  if (!n) return error_answer(503, "the store could not be written: " + n.error().message);
  if (*n == 0)
    return error_answer(404, "message " + std::to_string(id) + " has no mapping to replay");
  return json_answer(200, Json::object({{"replayed", number(*n)}}));
}

std::shared_ptr<const Mapper> AdminApi::current_mapper() const {
  return mappers_ ? mappers_() : nullptr;
}

AdminResponse AdminApi::preview_one(std::int64_t id) {
  const std::shared_ptr<const Mapper> mapper = current_mapper();
  if (!mapper) return error_answer(409, "no mappings are loaded: nothing to map with");
  auto m = inbox_.get(id);
  auto recorded = inbox_.mapping_of(id);
  if (!m || !recorded) return error_answer(503, "the store could not be read");
  if (!*m) return error_answer(404, "no message " + std::to_string(id));
  if ((*m)->message.state == store::MessageState::rejected) {
    return error_answer(409, "message " + std::to_string(id) +
                                 " was rejected at intake: it is never mapped, nor replayed");
  }
  auto preview = preview_replay(*mapper, inbox_, **m, *recorded, now_us());
  if (!preview) return error_answer(503, "the store could not be read: " + preview.error().message);
  return json_answer(200, preview->answer);
}

AdminResponse AdminApi::preview(std::string_view query) {
  const std::shared_ptr<const Mapper> mapper = current_mapper();
  if (!mapper) return error_answer(409, "no mappings are loaded: nothing to map with");
  auto parsed = message_query(query);
  if (auto* bad = std::get_if<AdminResponse>(&parsed)) return std::move(*bad);
  store::MessageQuery& q = std::get<store::MessageQuery>(parsed);
  q.state = store::MessageState::received;  // rejected messages are never mapped
  auto rows = inbox_.find(q);
  if (!rows) return error_answer(503, "the store could not be read: " + rows.error().message);
  JsonArray out;
  std::int64_t changed = 0;
  std::int64_t failing = 0;
  std::int64_t held_back = 0;
  const std::int64_t now = now_us();
  for (const store::StoredMessage& m : *rows) {
    auto recorded = inbox_.mapping_of(m.id);
    if (!recorded) return error_answer(503, "the store could not be read");
    auto previewed = preview_replay(*mapper, inbox_, m, *recorded, now);
    if (!previewed) {
      return error_answer(503, "the store could not be read: " + previewed.error().message);
    }
    ReplayPreview& one = *previewed;
    if (one.changed) ++changed;
    if (one.replayed_state == store::MappingState::mapping_failed) ++failing;
    if (one.held_back) ++held_back;
    out.push_back(std::move(one.answer));
  }
  JsonObject body{{"template_set", Json::string(mapper->templates().version)},
                  {"compared", number(static_cast<std::int64_t>(rows->size()))},
                  {"changed", number(changed)},
                  {"failing", number(failing)},
                  {"held_back", number(held_back)},
                  {"messages", Json::array(std::move(out))}};
  if (rows->size() == q.limit && !rows->empty())
    body.emplace_back("next_after", number(rows->back().id));
  return json_answer(200, Json::object(std::move(body)));
}

AdminResponse AdminApi::replay_found(std::string_view query) {
  auto parsed = message_query(query);
  if (auto* bad = std::get_if<AdminResponse>(&parsed)) return std::move(*bad);
  store::MessageQuery& q = std::get<store::MessageQuery>(parsed);
  // A bare POST /replay would map again whatever the first page of the store holds: say what.
  if (!q.mapping_state && !q.control_id && !q.source && !q.sender_application &&
      !q.received_from_us && !q.received_until_us) {
    return error_answer(400,
                        "say which messages to replay: mapping=, source=, sender=, control_id=, "
                        "from= or until= (the filters of GET /messages)");
  }
  q.state = store::MessageState::received;  // rejected messages are never mapped
  auto rows = inbox_.find(q);
  if (!rows) return error_answer(503, "the store could not be read: " + rows.error().message);
  std::int64_t replayed = 0;
  for (const store::StoredMessage& m : *rows) {
    auto n = inbox_.requeue_mappings(m.id);
    if (!n) {
      return error_answer(503, "the store could not be written after " + std::to_string(replayed) +
                                   " replayed: " + n.error().message);
    }
    replayed += *n;  // 0 for a message not mapped yet: the worker maps it anyway
  }
  JsonObject body{{"found", number(static_cast<std::int64_t>(rows->size()))},
                  {"replayed", number(replayed)}};
  if (rows->size() == q.limit && !rows->empty())
    body.emplace_back("next_after", number(rows->back().id));
  return json_answer(200, Json::object(std::move(body)));
}

AdminResponse AdminApi::dead_letters() {
  store::DeliveryQuery q;
  q.state = store::DeliveryState::dead_letter;
  q.limit = 1000;
  auto rows = outbox_.find_deliveries(q);
  if (!rows) return error_answer(503, "the store could not be read: " + rows.error().message);
  JsonArray out;
  for (const auto& d : *rows) out.push_back(delivery_json(d));
  return json_answer(200, Json::object({{"dead_letters", Json::array(std::move(out))}}));
}

AdminResponse AdminApi::retry(std::optional<std::int64_t> id) {
  auto n = outbox_.retry_dead_letters(id);
  if (!n) return error_answer(503, "the store could not be written: " + n.error().message);
  if (id && *n == 0)
    return error_answer(404, "message " + std::to_string(*id) + " has no dead letter");
  return json_answer(200, Json::object({{"retried", number(*n)}}));
}

AdminResponse AdminApi::discard(std::int64_t id, std::string_view query) {
  const auto reason = query_value(query, "reason");
  if (!reason || reason->empty()) return error_answer(400, "say why: ?reason=TEXT");
  auto n = outbox_.discard_dead_letters(id, *reason);
  if (!n) return error_answer(503, "the store could not be written: " + n.error().message);
  if (*n == 0) return error_answer(404, "message " + std::to_string(id) + " has no dead letter");
  return json_answer(200, Json::object({{"discarded", number(*n)}}));
}

}  // namespace adapter::app
