#include "app/reload.h"

#include <rapidjson/document.h>

#include <fstream>
#include <set>
#include <sstream>

#include "common/log.h"
#include "mapping/json.h"

namespace adapter::app {

namespace {

constexpr unsigned kFlags = rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag |
                            rapidjson::kParseStopWhenDoneFlag;

}  // namespace

std::vector<std::string> changed_sections(std::string_view before, std::string_view after) {
  rapidjson::Document a;
  rapidjson::Document b;
  a.Parse<kFlags>(before.data(), before.size());
  b.Parse<kFlags>(after.data(), after.size());
  if (a.HasParseError() || b.HasParseError() || !a.IsObject() || !b.IsObject()) return {"/"};
  // Const views: clang 14 in C++20 finds comparing non-const RapidJSON iterators ambiguous.
  const rapidjson::Value& before_root = a;
  const rapidjson::Value& after_root = b;
  std::set<std::string> keys;
  for (const auto& m : before_root.GetObject())
    keys.emplace(m.name.GetString(), m.name.GetStringLength());
  for (const auto& m : after_root.GetObject())
    keys.emplace(m.name.GetString(), m.name.GetStringLength());
  std::vector<std::string> out;
  for (const std::string& k : keys) {
    const bool in_a = before_root.HasMember(k.c_str());
    const bool in_b = after_root.HasMember(k.c_str());
    if (in_a != in_b || (in_a && !(before_root[k.c_str()] == after_root[k.c_str()])))
      out.push_back(k);
  }
  return out;
}

ReloadOutcome Reloader::reload() {
  std::lock_guard lock(mu_);
  ReloadOutcome out;
  const std::shared_ptr<const Mapper> running = mappers_.current();
  out.previous_set = running ? running->templates().version : std::string();
  out.current_set = out.previous_set;

  std::string text;
  if (config_path_) {
    std::ifstream in(*config_path_, std::ios::binary);
    if (!in) {
      out.errors.push_back(
          make_error(Errc::bad_config, "cannot read the configuration file", *config_path_));
      return out;
    }
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
  } else {
    text = std::string(embedded_default_config());
  }
  auto config = parse_config(text, config_path_.value_or("<embedded default>"));
  if (!config) {
    out.errors = config.error().errors;
    return out;
  }
  auto set = load_mappings(config->mapping);
  if (!set) {
    out.errors = std::move(set).error();
    return out;
  }
  // Mappings without a template a running destination filters on would stop its deliveries
  // silently (the destinations themselves change only with a restart).
  if (auto filters = check_destination_filters(destinations_, **set); !filters.empty()) {
    out.errors = std::move(filters);
    return out;
  }
  for (std::string& section : changed_sections(running_text_, text)) {
    if (section != "mapping") out.restart_needed.push_back(std::move(section));
  }
  mappers_.replace(std::make_shared<const Mapper>(*set, config->mapping));
  out.applied = true;
  out.current_set = (*set)->version;
  return out;
}

std::string ReloadOutcome::to_json() const {
  using mapping::Json;
  mapping::JsonArray errs;
  for (const Error& e : errors) {
    errs.push_back(
        Json::object({{"where", Json::string(e.where)}, {"message", Json::string(e.message)}}));
  }
  mapping::JsonArray restart;
  for (const std::string& s : restart_needed) restart.push_back(Json::string(s));
  return Json::object({{"applied", Json::boolean(applied)},
                       {"previous_template_set", Json::string(previous_set)},
                       {"template_set", Json::string(current_set)},
                       {"errors", Json::array(std::move(errs))},
                       {"restart_needed", Json::array(std::move(restart))}})
             .dump() +
         "\n";
}

}  // namespace adapter::app
