#include "app/mapping_worker.h"

#include <algorithm>
#include <ctime>
#include <optional>
#include <span>

#include "app/intake.h"
#include "common/instants.h"
#include "common/json_text.h"
#include "common/log.h"

namespace adapter::app {

namespace {

std::string issues_json(const std::optional<Error>& input_error,
                        const std::vector<mapping::Issue>& issues) {
  mapping::JsonArray out;
  if (input_error) {
    out.push_back(mapping::Json::object({{"severity", mapping::Json::string("error")},
                                         {"message", mapping::Json::string(input_error->message)},
                                         {"source", mapping::Json::string(input_error->where)}}));
  }
  for (const mapping::Issue& i : issues) {
    mapping::JsonObject o{{"severity", mapping::Json::string(std::string(to_string(i.severity)))},
                          {"message", mapping::Json::string(i.message)}};
    if (!i.template_pos.empty()) o.emplace_back("template", mapping::Json::string(i.template_pos));
    if (!i.source.empty()) o.emplace_back("source", mapping::Json::string(i.source));
    out.push_back(mapping::Json::object(std::move(o)));
  }
  return mapping::Json::array(std::move(out)).dump();
}

// Adds one issue to a record's issues (the JSON array issues_json() made). Its message names a
// report by its key, which is the lab's data: kept on one line as the engine's issues are.
void append_issue(std::string& issues, const mapping::Issue& issue) {
  mapping::JsonObject o{{"severity", mapping::Json::string(std::string(to_string(issue.severity)))},
                        {"message", mapping::Json::string(escape_controls(issue.message))}};
  const std::string item = mapping::Json::object(std::move(o)).dump();
  if (issues.size() < 2 || issues.back() != ']') {
    issues = "[" + item + "]";
  } else if (issues == "[]") {
    issues.insert(1, item);
  } else {
    issues.insert(issues.size() - 1, "," + item);
  }
}

// How far after its message's receipt a report's issued time may lie (a lab clock or time zone
// set wrong) before it is taken for a mistake.
constexpr std::int64_t kIssuedAfterReceiptUs = std::int64_t{24} * 3600 * 1000000;

// A report issued after its message was received is a mistake (a typo in OBR-22: 2204 for
// 2024). Taken at its word it would stay the report's newest version for good, and every real
// version after it would be held back. Its issued time is taken as unknown instead, so that the
// report's versions are ordered by arrival, and the record says so.
void distrust_future_issued(store::MappingRecord& record, std::int64_t received_at_us) {
  for (store::ReportKey& report : record.report_keys) {
    if (report.issued_us <= received_at_us + kIssuedAfterReceiptUs) continue;
    append_issue(record.issues_json,
                 mapping::Issue{mapping::Issue::Severity::warning,
                                "DiagnosticReport.issued " + fhir_instant_utc(report.issued_us) +
                                    " is after the message was received (" +
                                    fhir_instant_utc(received_at_us) + "): versions of " +
                                    report.key + " are ordered by arrival",
                                {},
                                {}});
    report.issued_us = 0;
  }
}

}  // namespace

MappingWorker::MappingWorker(store::InboxStore& store, std::shared_ptr<const Mapper> mapper,
                             std::vector<Route> destinations, std::chrono::milliseconds poll)
    : MappingWorker(store, std::make_shared<MapperHolder>(std::move(mapper)),
                    std::move(destinations), poll) {}

MappingWorker::MappingWorker(store::InboxStore& store, std::shared_ptr<MapperHolder> mappers,
                             std::vector<Route> destinations, std::chrono::milliseconds poll)
    : store_(store),
      mappers_(std::move(mappers)),
      destinations_(std::move(destinations)),
      poll_(poll) {}

std::vector<std::pair<std::string, MappingWorker::TemplateCounts>> MappingWorker::template_counts()
    const {
  std::lock_guard lock(counts_mu_);
  return by_template_;
}

namespace {

// The report key of an entry whose resource is a `type` ("DiagnosticReport?identifier=..."): the
// business identifier the entry is created under (ifNoneExist), or updated under (a conditional
// update's "Type?search"), else the resource's first identifier; empty when it has none or the
// resource is of another type.
std::string entry_key(const mapping::Json& entry, std::string_view type) {
  const mapping::Json* resource = entry.find("resource");
  const mapping::Json* resource_type =
      resource != nullptr ? resource->find("resourceType") : nullptr;
  if (resource_type == nullptr || !resource_type->is_string() ||
      resource_type->as_string() != type) {
    return {};
  }
  const mapping::Json* request = entry.find("request");
  const mapping::Json* condition = request != nullptr ? request->find("ifNoneExist") : nullptr;
  if (condition != nullptr && condition->is_string() && !condition->as_string().empty()) {
    return std::string(type).append("?").append(condition->as_string());
  }
  const mapping::Json* url = request != nullptr ? request->find("url") : nullptr;
  if (url != nullptr && url->is_string() && url->as_string().starts_with(std::string(type) + "?")) {
    return std::string(url->as_string());
  }
  const mapping::Json* identifiers = resource->find("identifier");
  if (identifiers == nullptr || !identifiers->is_array() || identifiers->as_array().empty()) {
    return {};
  }
  const mapping::Json& id = identifiers->as_array().front();
  const mapping::Json* system = id.find("system");
  const mapping::Json* value = id.find("value");
  if (value == nullptr || !value->is_string()) return {};
  std::string key = std::string(type) + "?identifier=";
  if (system != nullptr && system->is_string()) key.append(system->as_string()).append("|");
  return key.append(value->as_string());
}

std::span<const mapping::Json> entries_of(const mapping::Json& bundle) {
  const mapping::Json* entries = bundle.find("entry");
  if (entries == nullptr || !entries->is_array()) return {};
  return entries->as_array();
}

}  // namespace

std::string MappingWorker::order_key_of(const mapping::Json& bundle, std::int64_t message_id) {
  for (const char* type : {"DiagnosticReport", "ServiceRequest"}) {
    for (const mapping::Json& entry : entries_of(bundle)) {
      std::string key = entry_key(entry, type);
      if (!key.empty()) return key;
    }
  }
  return "message|" + std::to_string(message_id);
}

std::vector<store::ReportKey> MappingWorker::report_keys_of(const mapping::Json& bundle,
                                                            std::int64_t message_id) {
  std::vector<store::ReportKey> keys;
  for (const mapping::Json& entry : entries_of(bundle)) {
    std::string key = entry_key(entry, "DiagnosticReport");
    if (key.empty() || std::any_of(keys.begin(), keys.end(),
                                   [&](const store::ReportKey& k) { return k.key == key; })) {
      continue;
    }
    const mapping::Json* issued = entry.find("resource")->find("issued");
    std::optional<std::int64_t> issued_us;
    if (issued != nullptr && issued->is_string() &&
        issued->as_string().find('T') != std::string_view::npos) {
      issued_us = parse_instant_us(issued->as_string());
    }
    keys.push_back({std::move(key), issued_us.value_or(0)});
  }
  if (keys.empty()) keys.push_back({order_key_of(bundle, message_id)});
  return keys;
}

MappingWorker::~MappingWorker() {
  stop();
}

void MappingWorker::start() {
  thread_ = std::thread([this] { run(); });
}

void MappingWorker::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool MappingWorker::wait_for(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this] { return stopping_ || notified_; });
  notified_ = false;
  return !stopping_;
}

void MappingWorker::notify() {
  {
    std::lock_guard lock(mu_);
    notified_ = true;
  }
  cv_.notify_all();
}

store::MappingRecord MappingWorker::map_one(const Mapper& mapper,
                                            const store::StoredMessage& message,
                                            std::int64_t now_us, bool supersedes) {
  Arrival arrival;
  arrival.received_at = fhir_instant_utc(message.message.received_at_us);
  arrival.listener = message.message.listener;
  arrival.message_id = message.id;
  arrival.supersedes = supersedes;
  std::vector<MappedMessage> results =
      mapper.map(message.message.raw, "message " + std::to_string(message.id), arrival, false);

  store::MappingRecord record;
  record.message_id = message.id;
  record.mapped_at_us = now_us;
  record.template_set = mapper.templates().version;
  if (results.size() != 1) {
    // Intake stores each message of a batch as its own row, so this is a stored batch that
    // intake could not split: kept, and said so.
    record.state = store::MappingState::mapping_failed;
    record.issues_json = issues_json(
        make_error(Errc::bad_batch, "the stored input holds " + std::to_string(results.size()) +
                                        " messages; one was expected"),
        {});
    return record;
  }
  const MappedMessage& m = results.front();
  record.template_name = m.result.template_name;
  record.template_version = m.result.template_version;
  record.issues_json = issues_json(m.input_error, m.result.issues);
  // Kept with the message (not logged: it quotes the message's content).
  mapping::JsonArray unmapped;
  unmapped.reserve(m.result.unmapped.size());
  for (const std::string& u : m.result.unmapped) unmapped.push_back(mapping::Json::string(u));
  record.unmapped_json = mapping::Json::array(std::move(unmapped)).dump();
  if (!m.input_error) record.bundle_json = m.result.output.dump();
  record.state = m.ok() ? store::MappingState::mapped : store::MappingState::mapping_failed;
  if (m.ok()) {
    record.order_key = order_key_of(m.result.output, message.id);
    record.report_keys = report_keys_of(m.result.output, message.id);
  }
  return record;
}

Result<store::MappingRecord> MappingWorker::map_stored(const Mapper& mapper,
                                                       store::InboxStore& store,
                                                       const store::StoredMessage& message,
                                                       std::int64_t now_us) {
  store::MappingRecord record = map_one(mapper, message, now_us);
  if (record.state != store::MappingState::mapped) return record;
  distrust_future_issued(record, message.message.received_at_us);
  // The reports come from the Bundle, so the message is mapped before the question can be
  // asked; a second mapping is the price of a follow-up message (a final result after a
  // preliminary one, an amended report), not of every message. A message replayed after a
  // later one about the same report was queued is not a follow-up: updating would put the
  // older results back.
  //
  // Versions are told apart by the report's issued time where both this message and the history
  // have one (a lab may send them out of order, or an old one again), else by arrival. An older
  // version than the newest one queued is held back: sending it would put superseded results
  // (a preliminary after the final) back in the EHR, and creating would add rows the newer
  // version dropped.
  // $feed.older_versions "send" turns the issued-time rule off: arrival alone decides.
  const mapping::Json* older = mapper.feed_for(message.message.listener).find("older_versions");
  const bool by_issued = older == nullptr || !older->is_string() || older->as_string() != "send";
  // The store applies the same rule to what is queued already: the open deliveries of older
  // versions are discarded with this record (or kept, in "send" mode).
  record.versions_by_issued = by_issued;
  bool earlier = false;
  bool later = false;
  for (const store::ReportKey& report : record.report_keys) {
    auto history = store.report_history(report.key);
    if (!history) return std::move(history).error();
    if (!*history) continue;
    const store::ReportHistory& h = **history;
    const bool versions_known = by_issued && report.issued_us > 0 && h.latest_issued_us > 0;
    // Each older report gets its warning, and the message goes nowhere, with any newer report it
    // also carries: its Bundle is one transaction, which would put the older ones back.
    if (versions_known && report.issued_us < h.latest_issued_us) {
      record.held_back = true;
      append_issue(
          record.issues_json,
          mapping::Issue{mapping::Issue::Severity::warning,
                         "not sent: message " + std::to_string(h.latest_issued_message_id) +
                             " sent a newer version of " + report.key + " (issued " +
                             fhir_instant_utc(h.latest_issued_us) + "); this one was issued " +
                             fhir_instant_utc(report.issued_us),
                         {},
                         {}});
      continue;
    }
    if (versions_known && report.issued_us > h.latest_issued_us) {
      earlier = true;  // a newer version, whatever the order the messages came in
      continue;
    }
    earlier = earlier || h.first_message_id < message.id;
    later = later || h.last_message_id > message.id;
  }
  if (record.held_back || !earlier || later) return record;
  store::MappingRecord follow_up = map_one(mapper, message, now_us, true);
  if (follow_up.state == store::MappingState::mapped) {
    distrust_future_issued(follow_up, message.message.received_at_us);
  }
  follow_up.versions_by_issued = by_issued;
  return follow_up;
}

void MappingWorker::run() {
  // New messages come above the watermark; replayed ones at any id.
  std::int64_t watermark = 0;
  for (;;) {
    auto resume = store_.mapping_watermark();
    if (resume) {
      watermark = *resume;
      break;
    }
    log::error("mapping.store_read_failed", {{"error", resume.error().message}});
    if (!wait_for(std::chrono::seconds(1))) return;
  }
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    auto batch = store_.to_map(watermark, 64);
    if (!batch) {
      counters_.store_errors.fetch_add(1, std::memory_order_relaxed);
      log::error("mapping.store_read_failed", {{"error", batch.error().message}});
      if (!wait_for(std::chrono::seconds(1))) return;
      continue;
    }
    if (batch->empty()) {
      if (!wait_for(poll_)) return;
      continue;
    }
    // A store that fails to answer or to record leaves the message unmapped (the watermark does
    // not pass it); it is tried again after a pause, not in a loop as fast as the store fails.
    bool store_failed = false;
    auto fail = [&](const char* event, std::int64_t message_id, const std::string& why) {
      counters_.store_errors.fetch_add(1, std::memory_order_relaxed);
      log::error(event, {{"message_id", message_id}, {"error", why}});
      store_failed = true;
    };
    for (const store::StoredMessage& message : *batch) {
      // The set current now, held for this message even if a reload replaces it meanwhile.
      const std::shared_ptr<const Mapper> mapper = mappers_->current();
      auto mapped = map_stored(*mapper, store_, message, now_us());
      if (!mapped) {
        fail("mapping.store_read_failed", message.id, mapped.error().message);
        break;
      }
      store::MappingRecord record = std::move(*mapped);
      const bool ok = record.state == store::MappingState::mapped;
      const bool held_back = record.held_back;
      if (ok && !held_back) {
        for (const Route& r : destinations_) {
          if (r.filter.accepts(message.message.listener, record.template_name)) {
            record.deliver_to.push_back(r.destination);
          }
        }
      }
      const std::string template_name = record.template_name;
      auto written = store::record_mapping_and_wait(store_, std::move(record));
      if (!written) {
        fail("mapping.record_failed", message.id, written.error().message);
        break;
      }
      const std::int64_t superseded = written->superseded;
      watermark = std::max(watermark, message.id);
      {
        std::lock_guard lock(counts_mu_);
        auto it = std::find_if(by_template_.begin(), by_template_.end(),
                               [&](const auto& e) { return e.first == template_name; });
        if (it == by_template_.end()) it = by_template_.insert(it, {template_name, {}});
        ++(ok ? it->second.mapped : it->second.failed);
        if (held_back) ++it->second.held_back;
        it->second.superseded += static_cast<std::uint64_t>(superseded);
      }
      // Counts and places only: issue texts quote the message, so they stay in the store.
      if (ok) {
        if (on_mapped_) on_mapped_();
        counters_.mapped.fetch_add(1, std::memory_order_relaxed);
        log::info(held_back ? "mapping.held_back" : "mapping.mapped",
                  {{"message_id", message.id}, {"template", template_name}});
        // How many, not which reports: a report's key is the lab's identifier for it.
        if (superseded > 0) {
          log::info("mapping.superseded_deliveries_discarded",
                    {{"message_id", message.id}, {"deliveries", superseded}});
        }
      } else {
        counters_.failed.fetch_add(1, std::memory_order_relaxed);
        log::warn("mapping.failed", {{"message_id", message.id}, {"template", template_name}});
      }
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
      }
    }
    if (store_failed && !wait_for(std::chrono::seconds(1))) return;
  }
}

}  // namespace adapter::app
