#include "app/replay_preview.h"

#include <algorithm>
#include <string>
#include <vector>

#include "app/json_values.h"
#include "app/mapping_worker.h"

namespace adapter::app {

using mapping::Json;
using mapping::JsonArray;
using mapping::JsonObject;

namespace {

Json outcome(const store::MappingRecord& r) {
  return Json::object({{"state", Json::string(std::string(store::to_string(r.state)))},
                       {"template", Json::string(r.template_name)},
                       {"version", Json::string(r.template_version)},
                       {"template_set", Json::string(r.template_set)}});
}

// The recorded Bundle's text with the recorded template set's hash replaced by the current
// one's: the Provenance's policy names the set, and a reference that changes with every change
// of mappings is not what a replay would change in the data. (A hash is 16 hex digits: it
// occurs nowhere else in a Bundle but by design.)
std::string with_current_set(std::string text, const std::string& recorded,
                             const std::string& current) {
  if (recorded.empty() || recorded == current) return text;
  for (std::size_t at = text.find(recorded); at != std::string::npos;
       at = text.find(recorded, at + current.size())) {
    text.replace(at, recorded.size(), current);
  }
  return text;
}

std::vector<std::string> bundle_diff(const std::string& recorded, const std::string& replayed) {
  if (recorded.empty() && replayed.empty()) return {};
  if (recorded.empty()) return {"bundle: none was recorded; the replay makes one"};
  if (replayed.empty()) return {"bundle: one was recorded; the replay makes none"};
  return mapping::json_diff(parse_stored_json(recorded), parse_stored_json(replayed));
}

// An issue as what it says about the data: severity, message and source path, without the
// template position (moved by any edit above it).
std::string issue_key(const Json& issue) {
  std::string key;
  for (const char* member : {"severity", "message", "source"}) {
    const Json* v = issue.find(member);
    key += v != nullptr && v->is_string() ? v->as_string() : std::string_view();
    key += '\n';
  }
  return key;
}

// Items of `after` that `before` lacks, and items of `before` that `after` lacks, compared by
// `key` (each item counted: two equal issues recorded and one replayed is one gone).
template <class Key>
Json added_and_gone(const Json& before, const Json& after, Key key) {
  auto items = [](const Json& list) {
    return list.is_array() ? list.as_array() : std::span<const Json>();
  };
  auto missing_from = [&](std::span<const Json> from, std::span<const Json> in) {
    std::vector<std::string> keys;
    for (const Json& x : in) keys.push_back(key(x));
    JsonArray out;
    for (const Json& x : from) {
      const auto at = std::find(keys.begin(), keys.end(), key(x));
      if (at != keys.end()) {
        keys.erase(at);
      } else {
        out.push_back(x);
      }
    }
    return out;
  };
  JsonArray added = missing_from(items(after), items(before));
  JsonArray gone = missing_from(items(before), items(after));
  return Json::object(
      {{"added", Json::array(std::move(added))}, {"gone", Json::array(std::move(gone))}});
}

bool any_of_lists(const Json& added_gone) {
  for (const char* member : {"added", "gone"}) {
    const Json* list = added_gone.find(member);
    if (list != nullptr && list->is_array() && !list->as_array().empty()) return true;
  }
  return false;
}

}  // namespace

Result<ReplayPreview> preview_replay(const Mapper& mapper, store::InboxStore& store,
                                     const store::StoredMessage& message,
                                     const std::optional<store::MappingRecord>& recorded,
                                     std::int64_t now_us) {
  auto mapped = MappingWorker::map_stored(mapper, store, message, now_us);
  if (!mapped) return std::move(mapped).error();
  const store::MappingRecord& replayed = *mapped;
  const store::MappingRecord none;
  const store::MappingRecord& before = recorded ? *recorded : none;

  const std::vector<std::string> diff =
      bundle_diff(with_current_set(before.bundle_json, before.template_set, replayed.template_set),
                  replayed.bundle_json);
  JsonArray bundle;
  for (const std::string& line : diff) bundle.push_back(Json::string(line));
  const Json issues = added_and_gone(parse_stored_json(before.issues_json),
                                     parse_stored_json(replayed.issues_json), issue_key);
  const Json unmapped = added_and_gone(
      recorded ? parse_stored_json(before.unmapped_json) : Json::array({}),
      parse_stored_json(replayed.unmapped_json),
      [](const Json& line) { return std::string(line.is_string() ? line.as_string() : ""); });
  // A pending record (replayed or retried, not yet mapped again) still holds its last outcome:
  // that it waits is not a change.
  const bool state_changed =
      before.state != store::MappingState::pending && before.state != replayed.state;
  const bool changed =
      !recorded || state_changed || !diff.empty() || any_of_lists(issues) || any_of_lists(unmapped);
  ReplayPreview p;
  p.changed = changed;
  p.held_back = replayed.held_back;
  p.replayed_state = replayed.state;
  JsonObject answer{{"id", Json::number(static_cast<double>(message.id))},
                    {"changed", Json::boolean(changed)},
                    {"recorded", recorded ? outcome(*recorded) : Json()},
                    {"replayed", outcome(replayed)},
                    {"bundle", Json::array(std::move(bundle))},
                    {"issues", issues},
                    {"unmapped", unmapped}};
  // Only when it is: a replay that would send nothing must not pass for one that changes nothing.
  if (replayed.held_back) answer.emplace_back("held_back", Json::boolean(true));
  p.answer = Json::object(std::move(answer));
  return p;
}

}  // namespace adapter::app
