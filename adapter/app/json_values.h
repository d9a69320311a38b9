// RapidJSON values as the mapping engine's Json: the configuration's "feed" settings, and the
// JSON texts the store keeps (issues, Bundles, server responses) when an answer embeds them.
#pragma once

#include <rapidjson/document.h>

#include <string>

#include "mapping/json.h"

namespace adapter::app {

mapping::Json json_from_rapidjson(const rapidjson::Value& v);

// A stored JSON text as Json; empty text is null, and text that does not parse is kept as a
// string (shown as found rather than dropped).
mapping::Json parse_stored_json(const std::string& text);

}  // namespace adapter::app
