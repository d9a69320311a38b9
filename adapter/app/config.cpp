#include "app/config.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <unistd.h>
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "app/json_values.h"
#include "hl7v2/charset.h"
#include "mapping/datetime.h"

namespace adapter::app {
namespace {

using rapidjson::Value;

// The member `key` of an object, or nullptr. (Comparing RapidJSON 1.1 member iterators is
// ambiguous under C++20's reversed operators, so lookups go through HasMember.)
const Value* member(const Value& obj, const char* key) {
  return obj.IsObject() && obj.HasMember(key) ? &obj[key] : nullptr;
}

// Walks the document, collecting every error with its JSON pointer.
class Reader {
 public:
  explicit Reader(std::vector<Error>& errors) : errors_(errors) {}

  void error(const std::string& where, std::string message) {
    errors_.push_back(
        make_error(Errc::bad_config, std::move(message), where.empty() ? "/" : where));
  }

  // Checks that `obj` is an object and has only `known` keys.
  bool object(const Value& obj, const std::string& where,
              std::initializer_list<std::string_view> known) {
    if (!obj.IsObject()) {
      error(where, "must be an object");
      return false;
    }
    for (const auto& m : obj.GetObject()) {
      const std::string_view key(m.name.GetString(), m.name.GetStringLength());
      bool found = false;
      for (std::string_view k : known) found = found || k == key;
      if (!found) error(where + "/" + std::string(key), "unknown key");
    }
    return true;
  }

  // String with ${ENV} substituted.
  void string(const Value& obj, const char* key, const std::string& where, std::string& out) {
    const Value* it = member(obj, key);
    if (it == nullptr) return;
    const std::string at = where + "/" + key;
    if (!it->IsString()) return error(at, "must be a string");
    out = substitute(std::string(it->GetString(), it->GetStringLength()), at);
  }

  // An array of non-empty, distinct names; not empty itself (an empty filter list would read as
  // "none" but mean "all").
  void names(const Value& obj, const char* key, const std::string& where,
             std::vector<std::string>& out) {
    const Value* it = member(obj, key);
    if (it == nullptr) return;
    const std::string at = where + "/" + key;
    if (!it->IsArray() || it->Empty()) {
      error(at, "must be a non-empty array of names (leave it out to take all)");
      return;
    }
    for (rapidjson::SizeType i = 0; i < it->Size(); ++i) {
      const Value& name = (*it)[i];
      if (!name.IsString() || name.GetStringLength() == 0) {
        error(at + "/" + std::to_string(i), "must be a non-empty string");
        continue;
      }
      std::string s(name.GetString(), name.GetStringLength());
      if (std::find(out.begin(), out.end(), s) != out.end()) {
        error(at + "/" + std::to_string(i), "'" + s + "' is listed twice");
        continue;
      }
      out.push_back(std::move(s));
    }
  }
  void boolean(const Value& obj, const char* key, const std::string& where, bool& out) {
    const Value* it = member(obj, key);
    if (it == nullptr) return;
    if (!it->IsBool()) return error(where + "/" + key, "must be true or false");
    out = it->GetBool();
  }

  template <class Int>
  void integer(const Value& obj, const char* key, const std::string& where, Int& out,
               std::int64_t min, std::int64_t max) {
    const Value* it = member(obj, key);
    if (it == nullptr) return;
    const std::string at = where + "/" + key;
    if (!it->IsInt64() || it->GetInt64() < min || it->GetInt64() > max) {
      return error(at, "must be an integer in " + std::to_string(min) + ".." + std::to_string(max));
    }
    out = static_cast<Int>(it->GetInt64());
  }

  void seconds(const Value& obj, const char* key, const std::string& where,
               std::chrono::seconds& out, std::int64_t min, std::int64_t max) {
    std::int64_t s = out.count();
    integer(obj, key, where, s, min, max);
    out = std::chrono::seconds(s);
  }

  void milliseconds(const Value& obj, const char* key, const std::string& where,
                    std::chrono::milliseconds& out, std::int64_t min, std::int64_t max) {
    std::int64_t ms = out.count();
    integer(obj, key, where, ms, min, max);
    out = std::chrono::milliseconds(ms);
  }

  // A secret: `key` as "${ENV_VAR}", or `file_key` naming a file that holds it (one trailing
  // newline dropped). A literal value would end up in backups and tickets with the config file.
  void secret(const Value& obj, const char* key, const char* file_key, const std::string& where,
              std::string& out, bool required) {
    const Value* inline_value = member(obj, key);
    const Value* file = member(obj, file_key);
    if (inline_value != nullptr && file != nullptr) {
      return error(where + "/" + key, std::string("give either ") + key + " or " + file_key);
    }
    if (inline_value != nullptr) {
      const std::string at = where + "/" + key;
      if (!inline_value->IsString()) return error(at, "must be a string");
      const std::string_view raw(inline_value->GetString(), inline_value->GetStringLength());
      if (raw.size() < 4 || raw.substr(0, 2) != "${" || raw.back() != '}' ||
          raw.find('}') != raw.size() - 1) {
        return error(at, std::string("must be \"${ENV_VAR}\" (or use ") + file_key +
                             "): secrets are not written into the configuration");
      }
      string(obj, key, where, out);
      if (out.empty()) error(at, "the environment variable is empty");
      return;
    }
    if (file != nullptr) {
      std::string path;
      string(obj, file_key, where, path);
      const std::string at = where + "/" + file_key;
      std::ifstream in(path, std::ios::binary);
      if (!in) return error(at, "cannot read file '" + path + "'");
      std::ostringstream text;
      text << in.rdbuf();
      out = text.str();
      if (!out.empty() && out.back() == '\n') out.pop_back();
      if (!out.empty() && out.back() == '\r') out.pop_back();
      if (out.empty()) error(at, "the file '" + path + "' is empty");
      return;
    }
    if (required) error(where + "/" + key, std::string("is required (or ") + file_key + ")");
  }

  // A file that must exist and be readable now, so a typo fails at startup, not at first use.
  void readable_file(const std::string& path, const std::string& where) {
    if (path.empty()) return error(where, "must name a file");
    if (::access(path.c_str(), R_OK) != 0) error(where, "cannot read file '" + path + "'");
  }

 private:
  std::string substitute(const std::string& text, const std::string& where) {
    std::string out;
    std::size_t pos = 0;
    while (pos < text.size()) {
      const std::size_t open = text.find("${", pos);
      if (open == std::string::npos) break;
      const std::size_t close = text.find('}', open + 2);
      if (close == std::string::npos) break;
      out.append(text, pos, open - pos);
      const std::string var = text.substr(open + 2, close - open - 2);
      const char* value = std::getenv(var.c_str());
      if (value == nullptr) {
        error(where, "environment variable " + var + " is not set");
      } else {
        out += value;
      }
      pos = close + 1;
    }
    out.append(text, pos, std::string::npos);
    return out;
  }

  std::vector<Error>& errors_;
};

void read_tls(Reader& r, const Value& v, const std::string& where, TlsConfig& tls) {
  if (!r.object(v, where,
                {"certificate_file", "private_key_file", "client_ca_file",
                 "require_client_certificate", "handshake_timeout_seconds"})) {
    return;
  }
  r.string(v, "certificate_file", where, tls.certificate_file);
  r.string(v, "private_key_file", where, tls.private_key_file);
  r.string(v, "client_ca_file", where, tls.client_ca_file);
  r.boolean(v, "require_client_certificate", where, tls.require_client_certificate);
  r.seconds(v, "handshake_timeout_seconds", where, tls.handshake_timeout, 1, 600);
  r.readable_file(tls.certificate_file, where + "/certificate_file");
  r.readable_file(tls.private_key_file, where + "/private_key_file");
  if (!tls.client_ca_file.empty()) r.readable_file(tls.client_ca_file, where + "/client_ca_file");
}

void read_mllp(Reader& r, const Value& v, const std::string& where, MllpListenerConfig& l) {
  if (!r.object(v, where,
                {"name", "bind", "port", "max_frame_bytes", "idle_timeout_seconds",
                 "max_connections", "accept_message_types", "default_charset", "tls"})) {
    return;
  }
  r.string(v, "name", where, l.name);
  if (l.name.empty()) r.error(where + "/name", "must not be empty");
  r.string(v, "bind", where, l.bind);
  r.integer(v, "port", where, l.port, 0, 65535);
  r.integer(v, "max_frame_bytes", where, l.max_frame_bytes, 1024, 1024LL * 1024 * 1024);
  r.seconds(v, "idle_timeout_seconds", where, l.idle_timeout, 1, 86400);
  r.integer(v, "max_connections", where, l.max_connections, 1, 100000);
  if (const Value* it = member(v, "accept_message_types"); it != nullptr) {
    const std::string at = where + "/accept_message_types";
    if (!it->IsArray()) {
      r.error(at, "must be an array of \"CODE^TRIGGER\" strings");
    } else {
      for (rapidjson::SizeType i = 0; i < it->Size(); ++i) {
        const Value& t = (*it)[i];
        const std::string s = t.IsString() ? t.GetString() : "";
        const auto caret = s.find('^');
        if (caret == std::string::npos || caret == 0 || caret + 1 == s.size()) {
          r.error(at + "/" + std::to_string(i), "must look like \"ORU^R01\"");
        } else {
          l.accept_message_types.push_back(s);
        }
      }
    }
  }
  std::string charset;
  r.string(v, "default_charset", where, charset);
  if (!charset.empty()) {
    if (auto cs = hl7v2::charset_from_name(charset)) {
      l.default_charset = *cs;
    } else {
      r.error(where + "/default_charset", "unknown character set '" + charset +
                                              "' (use \"UNICODE UTF-8\", \"ASCII\" or \"8859/1\")");
    }
  }
  if (const Value* it = member(v, "tls"); it != nullptr && !it->IsNull()) {
    read_tls(r, *it, where + "/tls", l.tls.emplace());
  }
}

void read_auth(Reader& r, const Value& v, const std::string& where, AuthConfig& a) {
  if (!r.object(v, where,
                {"type", "username", "password", "password_file", "token", "token_file",
                 "token_url", "client_id", "client_secret", "client_secret_file", "method", "scope",
                 "private_key_file", "algorithm", "key_id"})) {
    return;
  }
  std::string type = "none";
  r.string(v, "type", where, type);
  if (type == "none") {
    a.kind = AuthConfig::Kind::none;
  } else if (type == "basic") {
    a.kind = AuthConfig::Kind::basic;
    r.string(v, "username", where, a.username);
    if (a.username.empty()) r.error(where + "/username", "is required for basic");
    r.secret(v, "password", "password_file", where, a.password, true);
  } else if (type == "bearer") {
    a.kind = AuthConfig::Kind::bearer;
    r.secret(v, "token", "token_file", where, a.token, true);
  } else if (type == "client_credentials" || type == "smart_backend") {
    a.kind = type == "smart_backend" ? AuthConfig::Kind::smart_backend
                                     : AuthConfig::Kind::client_credentials;
    r.string(v, "token_url", where, a.token_url);
    if (a.token_url.rfind("http://", 0) != 0 && a.token_url.rfind("https://", 0) != 0) {
      r.error(where + "/token_url", "must be an http:// or https:// URL");
    }
    r.string(v, "client_id", where, a.client_id);
    if (a.client_id.empty()) r.error(where + "/client_id", "is required");
    r.string(v, "scope", where, a.scope);
    if (a.kind == AuthConfig::Kind::client_credentials) {
      r.secret(v, "client_secret", "client_secret_file", where, a.client_secret, true);
      std::string method = "client_secret_basic";
      r.string(v, "method", where, method);
      if (method != "client_secret_basic" && method != "client_secret_post") {
        r.error(where + "/method", "must be \"client_secret_basic\" or \"client_secret_post\"");
      }
      a.client_secret_post = method == "client_secret_post";
    } else {
      r.string(v, "private_key_file", where, a.private_key_file);
      r.readable_file(a.private_key_file, where + "/private_key_file");
      r.string(v, "algorithm", where, a.algorithm);
      if (a.algorithm != "RS384" && a.algorithm != "ES384") {
        r.error(where + "/algorithm", "must be \"RS384\" or \"ES384\"");
      }
      r.string(v, "key_id", where, a.key_id);
      if (a.key_id.empty()) r.error(where + "/key_id", "is required (the JWT header's kid)");
    }
  } else {
    r.error(where + "/type",
            "must be \"none\", \"basic\", \"bearer\", \"client_credentials\" or "
            "\"smart_backend\"");
  }
}

void read_destination(Reader& r, const Value& v, const std::string& where, DestinationConfig& d) {
  if (!r.object(v, where,
                {"name", "base_url", "mode", "max_in_flight", "connect_timeout_ms",
                 "request_timeout_ms", "retry", "circuit_breaker", "tls", "auth", "filter"})) {
    return;
  }
  if (const Value* it = member(v, "filter"); it != nullptr) {
    const std::string at = where + "/filter";
    if (r.object(*it, at, {"sources", "templates"})) {
      r.names(*it, "sources", at, d.filter.sources);
      r.names(*it, "templates", at, d.filter.templates);
    }
  }
  r.string(v, "name", where, d.name);
  if (d.name.empty()) r.error(where + "/name", "must not be empty");
  r.string(v, "base_url", where, d.base_url);
  if (d.base_url.rfind("http://", 0) != 0 && d.base_url.rfind("https://", 0) != 0) {
    r.error(where + "/base_url", "must be an http:// or https:// URL");
  }
  std::string mode = "transaction";
  r.string(v, "mode", where, mode);
  if (mode != "transaction" && mode != "resources") {
    r.error(where + "/mode", "must be \"transaction\" or \"resources\"");
  }
  d.resource_by_resource = mode == "resources";
  r.integer(v, "max_in_flight", where, d.max_in_flight, 1, 64);
  r.milliseconds(v, "connect_timeout_ms", where, d.connect_timeout, 100, 600'000);
  r.milliseconds(v, "request_timeout_ms", where, d.request_timeout, 100, 3'600'000);
  if (const Value* it = member(v, "retry"); it != nullptr) {
    const std::string at = where + "/retry";
    if (r.object(*it, at,
                 {"max_attempts", "max_age_seconds", "initial_delay_ms", "max_delay_ms"})) {
      r.integer(*it, "max_attempts", at, d.retry.max_attempts, 1, 1000);
      r.seconds(*it, "max_age_seconds", at, d.retry.max_age, 1, 90LL * 86400);
      r.milliseconds(*it, "initial_delay_ms", at, d.retry.initial_delay, 1, 3'600'000);
      r.milliseconds(*it, "max_delay_ms", at, d.retry.max_delay, 1, 86'400'000);
      if (d.retry.max_delay < d.retry.initial_delay) {
        r.error(at + "/max_delay_ms", "must not be less than initial_delay_ms");
      }
    }
  }
  if (const Value* it = member(v, "circuit_breaker"); it != nullptr) {
    const std::string at = where + "/circuit_breaker";
    if (r.object(*it, at, {"failure_threshold", "open_ms", "max_open_ms"})) {
      r.integer(*it, "failure_threshold", at, d.circuit_breaker.failure_threshold, 1, 10000);
      r.milliseconds(*it, "open_ms", at, d.circuit_breaker.open_for, 1, 3'600'000);
      r.milliseconds(*it, "max_open_ms", at, d.circuit_breaker.max_open_for, 1, 86'400'000);
      if (d.circuit_breaker.max_open_for < d.circuit_breaker.open_for) {
        r.error(at + "/max_open_ms", "must not be less than open_ms");
      }
    }
  }
  if (const Value* it = member(v, "tls"); it != nullptr && !it->IsNull()) {
    const std::string at = where + "/tls";
    if (r.object(*it, at, {"ca_file", "client_certificate_file", "client_key_file"})) {
      r.string(*it, "ca_file", at, d.ca_file);
      if (!d.ca_file.empty()) r.readable_file(d.ca_file, at + "/ca_file");
      r.string(*it, "client_certificate_file", at, d.client_certificate_file);
      r.string(*it, "client_key_file", at, d.client_key_file);
      if (d.client_certificate_file.empty() != d.client_key_file.empty()) {
        r.error(at, "client_certificate_file and client_key_file go together");
      } else if (!d.client_certificate_file.empty()) {
        r.readable_file(d.client_certificate_file, at + "/client_certificate_file");
        r.readable_file(d.client_key_file, at + "/client_key_file");
      }
    }
  }
  if (const Value* it = member(v, "auth"); it != nullptr)
    read_auth(r, *it, where + "/auth", d.auth);
}

// `overrides`' members set over `base`'s, member by member (a source that sets one feed option
// keeps the others).
mapping::Json merged_feed(const mapping::Json& base, const mapping::Json& overrides) {
  mapping::JsonObject merged = base.object_members();
  if (overrides.is_object()) {
    for (const auto& m : overrides.as_object()) mapping::set_member(merged, m.name(), m.value);
  }
  return mapping::Json::object(std::move(merged));
}

// The $feed settings whose values the shipped templates choose between: a misspelt value would
// otherwise quietly select their default branch. Other members are the templates' own business.
void check_feed_settings(Reader& r, const Value& settings, const std::string& where) {
  // (Vectors, not initializer_lists: a list's array would not outlive the statement.)
  static const std::vector<std::pair<const char*, std::vector<std::string_view>>> kChoices = {
      {"patient_mode", {"conditional-create", "reference-only"}},
      {"result_updates", {"corrections", "always", "never"}},
      {"older_versions", {"hold", "send"}},
  };
  for (const auto& [key, allowed] : kChoices) {
    const Value* v = member(settings, key);
    if (v == nullptr) continue;
    const std::string at = where + "/" + key;
    const std::string_view value =
        v->IsString() ? std::string_view(v->GetString(), v->GetStringLength()) : "";
    if (!v->IsString() || std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      std::string list;
      for (const std::string_view a : allowed)
        list += (list.empty() ? "\"" : ", \"") + std::string(a) + "\"";
      r.error(at, "must be one of " + list);
    }
  }
}

void read_http_feed(Reader& r, const Value& v, const std::string& where, HttpFeedConfig& f,
                    bool listener_verifies_clients) {
  if (!r.object(v, where,
                {"name", "api_key", "api_key_file", "client_certificate_cn", "settings"})) {
    return;
  }
  r.string(v, "name", where, f.name);
  if (f.name.empty()) {
    r.error(where + "/name", "must not be empty");
  } else if (f.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.") !=
             std::string::npos) {
    r.error(where + "/name",
            "must be lower-case letters, digits, '-', '_' or '.' (it is a URL path)");
  }
  r.secret(v, "api_key", "api_key_file", where, f.api_key, false);
  r.string(v, "client_certificate_cn", where, f.client_certificate_cn);
  if (!f.client_certificate_cn.empty() && !listener_verifies_clients) {
    r.error(where + "/client_certificate_cn",
            "needs the listener's tls.client_ca_file (nothing verifies client certificates)");
  }
  if (f.api_key.empty() && f.client_certificate_cn.empty() && member(v, "api_key") == nullptr &&
      member(v, "api_key_file") == nullptr) {
    r.error(where,
            "a feed needs api_key (or api_key_file) or client_certificate_cn: feeds are "
            "never open to anyone");
  }
  if (const Value* settings = member(v, "settings"); settings != nullptr) {
    if (!settings->IsObject()) {
      r.error(where + "/settings", "must be an object (merged over mapping.feed for this feed)");
    } else {
      check_feed_settings(r, *settings, where + "/settings");
      f.settings = json_from_rapidjson(*settings);
    }
  }
}

void read_folder(Reader& r, const Value& v, const std::string& where, DropFolderConfig& f) {
  if (!r.object(
          v, where,
          {"name", "path", "poll_interval_ms", "settle_time_ms", "max_file_bytes", "settings"})) {
    return;
  }
  r.string(v, "name", where, f.name);
  if (f.name.empty()) r.error(where + "/name", "must not be empty");
  r.string(v, "path", where, f.path);
  if (f.path.empty()) r.error(where + "/path", "must name a folder");
  r.milliseconds(v, "poll_interval_ms", where, f.poll_interval, 50, 3600 * 1000);
  r.milliseconds(v, "settle_time_ms", where, f.settle_time, 0, 3600 * 1000);
  r.integer(v, "max_file_bytes", where, f.max_file_bytes, 1024, 1024LL * 1024 * 1024);
  if (const Value* settings = member(v, "settings"); settings != nullptr) {
    if (!settings->IsObject()) {
      r.error(where + "/settings", "must be an object (merged over mapping.feed for this folder)");
    } else {
      check_feed_settings(r, *settings, where + "/settings");
      f.settings = json_from_rapidjson(*settings);
    }
  }
}

void read_http(Reader& r, const Value& v, const std::string& where, HttpListenerConfig& l) {
  if (!r.object(v, where,
                {"name", "bind", "port", "max_body_bytes", "read_timeout_seconds",
                 "idle_timeout_seconds", "max_connections", "tls", "feeds"})) {
    return;
  }
  r.string(v, "name", where, l.name);
  if (l.name.empty()) r.error(where + "/name", "must not be empty");
  r.string(v, "bind", where, l.bind);
  r.integer(v, "port", where, l.port, 0, 65535);
  r.integer(v, "max_body_bytes", where, l.max_body_bytes, 1024, 1024LL * 1024 * 1024);
  r.seconds(v, "read_timeout_seconds", where, l.read_timeout, 1, 3600);
  r.seconds(v, "idle_timeout_seconds", where, l.idle_timeout, 1, 86400);
  r.integer(v, "max_connections", where, l.max_connections, 1, 100000);
  if (const Value* it = member(v, "tls"); it != nullptr && !it->IsNull()) {
    read_tls(r, *it, where + "/tls", l.tls.emplace());
  }
  const bool verifies_clients = l.tls && !l.tls->client_ca_file.empty();
  const Value* feeds = member(v, "feeds");
  if (feeds == nullptr || !feeds->IsArray() || feeds->Empty()) {
    r.error(where + "/feeds", "must be a non-empty array of feeds (POST /feeds/{name})");
    return;
  }
  for (rapidjson::SizeType i = 0; i < feeds->Size(); ++i) {
    read_http_feed(r, (*feeds)[i], where + "/feeds/" + std::to_string(i), l.feeds.emplace_back(),
                   verifies_clients);
  }
}

std::string line_and_column(std::string_view text, std::size_t offset) {
  std::size_t line = 1;
  std::size_t col = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

}  // namespace

std::string_view to_string(AuthConfig::Kind kind) {
  switch (kind) {
    case AuthConfig::Kind::none:
      return "none";
    case AuthConfig::Kind::basic:
      return "basic";
    case AuthConfig::Kind::bearer:
      return "bearer";
    case AuthConfig::Kind::client_credentials:
      return "client_credentials";
    case AuthConfig::Kind::smart_backend:
      return "smart_backend";
  }
  return "unknown";
}

std::string ConfigErrors::to_string() const {
  std::string out;
  for (const Error& e : errors) out += source + ": " + e.where + ": " + e.message + "\n";
  return out;
}

Result<Config, ConfigErrors> parse_config(std::string_view json, std::string_view source) {
  ConfigErrors errs;
  errs.source = std::string(source);
  rapidjson::Document doc;
  constexpr unsigned kFlags = rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag |
                              rapidjson::kParseStopWhenDoneFlag;
  doc.Parse<kFlags>(json.data(), json.size());
  if (doc.HasParseError()) {
    errs.errors.push_back(make_error(Errc::bad_config,
                                     rapidjson::GetParseError_En(doc.GetParseError()),
                                     line_and_column(json, doc.GetErrorOffset())));
    return errs;
  }
  Config c;
  Reader r(errs.errors);
  if (r.object(doc, "",
               {"instance", "io_threads", "shutdown_timeout_seconds", "store", "retention",
                "listeners", "admin", "log", "mapping", "destinations"})) {
    r.string(doc, "instance", "", c.instance);
    r.seconds(doc, "shutdown_timeout_seconds", "", c.shutdown_timeout, 1, 3600);
    r.integer(doc, "io_threads", "", c.io_threads, 1, 64);
    if (const Value* it = member(doc, "store"); it != nullptr) {
      if (r.object(*it, "/store", {"kind", "path", "max_batch"})) {
        r.string(*it, "kind", "/store", c.store.kind);
        if (c.store.kind != "sqlite") r.error("/store/kind", "must be \"sqlite\"");
        r.string(*it, "path", "/store", c.store.path);
        if (c.store.path.empty()) r.error("/store/path", "must not be empty");
        r.integer(*it, "max_batch", "/store", c.store.max_batch, 1, 100000);
      }
    }
    if (const Value* it = member(doc, "retention"); it != nullptr) {
      if (r.object(*it, "/retention",
                   {"purge_after_seconds", "payload_only", "interval_seconds", "batch"})) {
        r.seconds(*it, "purge_after_seconds", "/retention", c.retention.purge_after, 0,
                  100LL * 365 * 24 * 3600);
        r.boolean(*it, "payload_only", "/retention", c.retention.payload_only);
        r.seconds(*it, "interval_seconds", "/retention", c.retention.interval, 1, 86400);
        r.integer(*it, "batch", "/retention", c.retention.batch, 1, 100000);
      }
    }
    if (const Value* it = member(doc, "listeners"); it != nullptr) {
      if (r.object(*it, "/listeners", {"mllp", "http", "folders"})) {
        if (const Value* f = member(*it, "folders"); f != nullptr) {
          if (!f->IsArray()) {
            r.error("/listeners/folders", "must be an array of drop folders");
          } else {
            for (rapidjson::SizeType i = 0; i < f->Size(); ++i) {
              read_folder(r, (*f)[i], "/listeners/folders/" + std::to_string(i),
                          c.folders.emplace_back());
            }
          }
        }
        if (const Value* h = member(*it, "http"); h != nullptr && !h->IsNull()) {
          read_http(r, *h, "/listeners/http", c.http.emplace());
        }
        if (const Value* m = member(*it, "mllp"); m != nullptr) {
          if (!m->IsArray()) {
            r.error("/listeners/mllp", "must be an array of listeners");
          } else {
            for (rapidjson::SizeType i = 0; i < m->Size(); ++i) {
              read_mllp(r, (*m)[i], "/listeners/mllp/" + std::to_string(i), c.mllp.emplace_back());
            }
          }
        }
      }
    }
    if (const Value* it = member(doc, "admin"); it != nullptr) {
      if (r.object(*it, "/admin", {"enabled", "bind", "port", "token", "token_file"})) {
        r.boolean(*it, "enabled", "/admin", c.admin.enabled);
        r.string(*it, "bind", "/admin", c.admin.bind);
        r.integer(*it, "port", "/admin", c.admin.port, 0, 65535);
        r.secret(*it, "token", "token_file", "/admin", c.admin.token, false);
        const bool loopback = c.admin.bind == "127.0.0.1" || c.admin.bind == "::1" ||
                              c.admin.bind == "localhost" || c.admin.bind.rfind("127.", 0) == 0;
        if (c.admin.enabled && !loopback && c.admin.token.empty()) {
          r.error("/admin/token",
                  "is required when admin.bind is not a loopback address: the "
                  "admin endpoints can reload mappings and read messages");
        }
      }
    }
    if (const Value* it = member(doc, "mapping"); it != nullptr) {
      if (r.object(*it, "/mapping", {"directory", "default_timezone", "feed"})) {
        r.string(*it, "directory", "/mapping", c.mapping.directory);
        r.string(*it, "default_timezone", "/mapping", c.mapping.default_timezone);
        c.mapping.default_offset_minutes = mapping::parse_utc_offset(c.mapping.default_timezone);
        if (!c.mapping.default_offset_minutes) {
          r.error("/mapping/default_timezone", "must be \"UTC\" or an offset such as \"+01:00\"");
        }
        if (const Value* feed = member(*it, "feed"); feed != nullptr) {
          if (!feed->IsObject()) {
            r.error("/mapping/feed",
                    "must be an object (its members are $feed.<name> in templates)");
          } else {
            // Over the defaults, member by member: a config that sets one feed option keeps
            // the others (an identifier system left out would make identifiers unusable).
            check_feed_settings(r, *feed, "/mapping/feed");
            c.mapping.feed = merged_feed(c.mapping.feed, json_from_rapidjson(*feed));
          }
        }
      }
    }
    if (const Value* it = member(doc, "destinations"); it != nullptr) {
      if (!it->IsArray()) {
        r.error("/destinations", "must be an array of destinations");
      } else {
        std::set<std::string> destination_names;
        for (rapidjson::SizeType i = 0; i < it->Size(); ++i) {
          const std::string at = "/destinations/" + std::to_string(i);
          DestinationConfig& d = c.destinations.emplace_back();
          read_destination(r, (*it)[i], at, d);
          if (!destination_names.insert(d.name).second) {
            r.error(at + "/name", "duplicate destination name '" + d.name + "'");
          }
        }
      }
    }
    if (const Value* it = member(doc, "log"); it != nullptr) {
      if (r.object(*it, "/log", {"level", "include_phi"})) {
        std::string level;
        r.string(*it, "level", "/log", level);
        if (!level.empty() && !log::parse_level(level, c.log.level)) {
          r.error("/log/level", "must be \"debug\", \"info\", \"warn\" or \"error\"");
        }
        r.boolean(*it, "include_phi", "/log", c.log.include_phi);
      }
    }
  }

  // Conflicts between listeners.
  std::set<std::string> names;
  std::set<std::pair<std::string, int>> ports;
  for (std::size_t i = 0; i < c.mllp.size(); ++i) {
    const auto& l = c.mllp[i];
    const std::string at = "/listeners/mllp/" + std::to_string(i);
    if (!names.insert(l.name).second)
      r.error(at + "/name", "duplicate listener name '" + l.name + "'");
    if (l.port != 0 && !ports.insert({l.bind, l.port}).second) {
      r.error(at + "/port",
              "port " + std::to_string(l.port) + " is already used by another listener");
    }
  }
  if (c.http) {
    if (!names.insert(c.http->name).second) {
      r.error("/listeners/http/name", "duplicate listener name '" + c.http->name + "'");
    }
    if (c.http->port != 0 && !ports.insert({c.http->bind, c.http->port}).second) {
      r.error("/listeners/http/port",
              "port " + std::to_string(c.http->port) + " is already used by another listener");
    }
    for (std::size_t i = 0; i < c.http->feeds.size(); ++i) {
      const HttpFeedConfig& f = c.http->feeds[i];
      if (f.name.empty()) continue;
      // Feeds are sources like listeners: the store records the name, templates see it.
      if (!names.insert(f.name).second) {
        r.error("/listeners/http/feeds/" + std::to_string(i) + "/name",
                "duplicate source name '" + f.name + "' (listener and feed names are shared)");
      }
      c.mapping.feed_by_source.emplace_back(f.name, merged_feed(c.mapping.feed, f.settings));
    }
  }
  std::set<std::string> folder_paths;
  for (std::size_t i = 0; i < c.folders.size(); ++i) {
    const DropFolderConfig& f = c.folders[i];
    const std::string at = "/listeners/folders/" + std::to_string(i);
    if (!f.name.empty() && !names.insert(f.name).second) {
      r.error(at + "/name", "duplicate source name '" + f.name +
                                "' (listener, feed and folder "
                                "names are shared)");
    }
    if (!f.path.empty() && !folder_paths.insert(f.path).second) {
      r.error(at + "/path", "folder '" + f.path + "' is already watched by another drop folder");
    }
    c.mapping.feed_by_source.emplace_back(f.name, merged_feed(c.mapping.feed, f.settings));
  }
  // A destination filter naming a source that does not exist would silently take nothing. The
  // sources messages are recorded under: MLLP listeners, HTTP feeds (not the HTTP listener) and
  // drop folders.
  std::set<std::string> sources_known;
  for (const auto& l : c.mllp) sources_known.insert(l.name);
  if (c.http) {
    for (const auto& f : c.http->feeds) sources_known.insert(f.name);
  }
  for (const auto& f : c.folders) sources_known.insert(f.name);
  for (std::size_t i = 0; i < c.destinations.size(); ++i) {
    const std::vector<std::string>& sources = c.destinations[i].filter.sources;
    for (std::size_t j = 0; j < sources.size(); ++j) {
      if (sources_known.count(sources[j]) == 0) {
        r.error("/destinations/" + std::to_string(i) + "/filter/sources/" + std::to_string(j),
                "no listener, feed or folder is named '" + sources[j] + "'");
      }
    }
  }
  if (c.admin.enabled && c.admin.port != 0 && ports.count({c.admin.bind, c.admin.port}) > 0) {
    r.error("/admin/port",
            "port " + std::to_string(c.admin.port) + " is already used by a listener");
  }
  if (!errs.errors.empty()) return errs;
  return c;
}

Result<Config, ConfigErrors> load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ConfigErrors errs;
    errs.source = path;
    errs.errors.push_back(make_error(Errc::bad_config, "cannot open the configuration file", "/"));
    return errs;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace adapter::app
