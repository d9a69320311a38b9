#include "app/json_values.h"

namespace adapter::app {

mapping::Json json_from_rapidjson(const rapidjson::Value& v) {
  if (v.IsNull()) return {};
  if (v.IsBool()) return mapping::Json::boolean(v.GetBool());
  if (v.IsInt64()) return mapping::Json::number(std::to_string(v.GetInt64()));
  if (v.IsNumber()) return mapping::Json::number(v.GetDouble());
  if (v.IsString()) return mapping::Json::string(std::string(v.GetString(), v.GetStringLength()));
  if (v.IsArray()) {
    mapping::JsonArray a;
    for (const auto& i : v.GetArray()) a.push_back(json_from_rapidjson(i));
    return mapping::Json::array(std::move(a));
  }
  mapping::JsonObject o;
  for (const auto& m : v.GetObject()) {
    o.emplace_back(std::string(m.name.GetString(), m.name.GetStringLength()),
                   json_from_rapidjson(m.value));
  }
  return mapping::Json::object(std::move(o));
}

mapping::Json parse_stored_json(const std::string& text) {
  if (text.empty()) return {};
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  if (doc.HasParseError()) return mapping::Json::string(text);
  return json_from_rapidjson(doc);
}

}  // namespace adapter::app
