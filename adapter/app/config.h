// Typed configuration, loaded once at startup from one JSON file (comments allowed) or from the
// default compiled into the binary (config/adapterd.json). Loading is strict: unknown keys,
// wrong types, out-of-range values, missing files and conflicting listeners are all reported,
// each with its JSON pointer, before anything opens.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "common/result.h"
#include "delivery/circuit_breaker.h"
#include "delivery/retry_policy.h"
#include "hl7v2/types.h"
#include "mapping/json.h"

namespace adapter::app {

struct TlsConfig {
  std::string certificate_file;            // PEM chain, server certificate first
  std::string private_key_file;            // PEM
  std::string client_ca_file;              // empty: no client certificates asked for
  bool require_client_certificate = true;  // only meaningful with client_ca_file
  std::chrono::seconds handshake_timeout{10};
};

struct MllpListenerConfig {
  std::string name = "mllp";
  std::string bind = "127.0.0.1";
  std::uint16_t port = 2575;
  std::size_t max_frame_bytes = 16 * 1024 * 1024;
  std::chrono::seconds idle_timeout{300};
  std::size_t max_connections = 256;
  std::vector<std::string> accept_message_types;  // "ORU^R01"; empty accepts all
  hl7v2::Charset default_charset = hl7v2::Charset::utf8;
  std::optional<TlsConfig> tls;
};

// One source that posts documents to the HTTP listener: POST /feeds/{name}. A feed authenticates
// with a bearer API key, with a client certificate (mutual TLS), or with either.
struct HttpFeedConfig {
  std::string name;     // unique among all sources (MLLP listeners and feeds); recorded per message
  std::string api_key;  // the resolved secret; empty: no key accepted
  // Mutual TLS: the subject common name (CN) of the client certificate that stands for this feed
  // (the listener's tls.client_ca_file verifies the chain). Empty: certificates do not identify it.
  std::string client_certificate_cn;
  // Members merged over mapping.feed for this feed's messages ($feed in templates).
  mapping::Json settings = mapping::Json::object({});
};

struct HttpListenerConfig {
  std::string name = "http";
  std::string bind = "127.0.0.1";
  std::uint16_t port = 8080;
  // Larger bodies get 413; the listener stops reading at the limit and closes the connection.
  std::size_t max_body_bytes = 32 * 1024 * 1024;
  // A request's headers and body must arrive within this; a kept-alive connection idle for
  // idle_timeout is closed.
  std::chrono::seconds read_timeout{60};
  std::chrono::seconds idle_timeout{30};
  std::size_t max_connections = 256;
  std::optional<TlsConfig> tls;
  std::vector<HttpFeedConfig> feeds;
};

// A folder that labs or file-transfer jobs drop reports into (HL7 v2 or XML, sniffed from the
// content). Each file is claimed (moved to processing/), stored durably, then moved to done/ or
// to error/ with a sidecar "<file>.error.json" saying why. Writers should write under a dot-name
// or a ".part"/".tmp" suffix and rename when complete; such files are never taken.
struct DropFolderConfig {
  std::string name;  // unique among all sources; recorded with each message
  std::string path;
  std::chrono::milliseconds poll_interval{1000};
  // A file whose last change is younger than this is left for the next poll (still being written).
  std::chrono::milliseconds settle_time{1000};
  std::size_t max_file_bytes = 32 * 1024 * 1024;
  mapping::Json settings = mapping::Json::object({});  // over mapping.feed ($feed)
};

struct StoreConfig {
  std::string kind = "sqlite";
  std::string path = "./var/adapterd.db";
  std::size_t max_batch = 512;
};

// Retention: finished messages (mapped, every delivery delivered or discarded) older than
// purge_after are removed, or with payload_only only their contents; see
// InboxStore::purge_finished.
struct RetentionConfig {
  std::chrono::seconds purge_after{30LL * 24 * 3600};  // 0: keep everything forever
  bool payload_only = false;
  std::chrono::seconds interval{300};
  std::size_t batch = 1000;  // messages per transaction (short write locks)
};

struct AdminConfig {
  bool enabled = true;
  std::string bind = "127.0.0.1";
  std::uint16_t port = 9575;
  std::string token;  // the resolved secret; required when bind is not a loopback address
};

struct LogConfig {
  log::Level level = log::Level::info;
  bool include_phi = false;
};

struct MappingConfig {
  std::string directory = "./mappings";  // routes.json, templates, partials/, tables/
  std::string default_timezone = "UTC";  // for times without a zone: "UTC" or "+HH:MM"
  std::optional<int> default_offset_minutes = 0;
  // $feed in templates; a configured "feed" object is merged over these defaults (the same as
  // config/adapterd.json documents).
  mapping::Json feed = mapping::Json::object(
      {{"patient_mode", mapping::Json::string("conditional-create")},
       {"identifier_system", mapping::Json::string("urn:adapterd:identifier")},
       {"genome_build", mapping::Json::string("")},
       {"result_updates", mapping::Json::string("corrections")},
       {"older_versions", mapping::Json::string("hold")}});
  // Per source (an HTTP feed's name): its settings already merged over `feed`.
  std::vector<std::pair<std::string, mapping::Json>> feed_by_source;

  // $feed for a message from `source`.
  const mapping::Json& feed_for(std::string_view source) const {
    for (const auto& [name, settings] : feed_by_source) {
      if (name == source) return settings;
    }
    return feed;
  }
};

// How the adapter authenticates to a destination. Secrets are read at startup from a file
// (`*_file`) or given as "${ENV_VAR}"; a literal secret in the configuration is refused.
struct AuthConfig {
  enum class Kind { none, basic, bearer, client_credentials, smart_backend };
  Kind kind = Kind::none;
  std::string username;  // basic
  std::string password;  // basic (the resolved secret)
  std::string token;     // bearer (the resolved secret)
  // client_credentials and smart_backend
  std::string token_url;
  std::string client_id;
  std::string client_secret;        // client_credentials (the resolved secret)
  bool client_secret_post = false;  // client_credentials: in the form, not Basic
  std::string scope;                // optional
  std::string private_key_file;     // smart_backend: PEM, RSA or EC P-384
  std::string algorithm = "RS384";  // smart_backend: RS384 or ES384
  std::string key_id;               // smart_backend: the JWT header's kid
};
std::string_view to_string(AuthConfig::Kind kind);

// Which mapped messages a destination takes: those from one of `sources` (listener, feed or
// folder names) and mapped by one of `templates` ($template names, e.g. "oru-r01"). An empty
// list does not filter, so a destination without a filter takes every mapped message.
struct DestinationFilter {
  std::vector<std::string> sources;
  std::vector<std::string> templates;

  bool accepts(std::string_view source, std::string_view template_name) const {
    auto listed = [](const std::vector<std::string>& names, std::string_view name) {
      return names.empty() || std::find(names.begin(), names.end(), name) != names.end();
    };
    return listed(sources, source) && listed(templates, template_name);
  }
};

// A FHIR server that receives the mapped messages its filter takes.
struct DestinationConfig {
  std::string name = "ehr";
  DestinationFilter filter;
  std::string base_url;  // http(s)://host[:port]/path of the FHIR base
  // "resources" mode: for servers without transactions, each entry is POSTed on its own as a
  // conditional create, in dependency order, references rewritten (delivery/resource_plan.h).
  bool resource_by_resource = false;
  std::size_t max_in_flight = 4;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};
  delivery::RetryPolicy retry;
  delivery::CircuitBreakerPolicy circuit_breaker;
  std::string ca_file;  // empty: the system's CAs
  std::string client_certificate_file;
  std::string client_key_file;
  AuthConfig auth;
};

struct Config {
  std::string instance = "adapterd";
  int io_threads = 2;
  // SIGTERM: listeners stop at once; requests already sent to a destination get this long to be
  // answered and recorded (later answers are not waited for: those deliveries stay pending and
  // are sent again after the restart, which the conditional creates make harmless).
  std::chrono::seconds shutdown_timeout{10};
  StoreConfig store;
  RetentionConfig retention;
  std::vector<MllpListenerConfig> mllp;
  std::optional<HttpListenerConfig> http;
  std::vector<DropFolderConfig> folders;
  AdminConfig admin;
  LogConfig log;
  MappingConfig mapping;
  std::vector<DestinationConfig> destinations;
};

// Every problem found, each with its location (JSON pointer, or line:column for syntax).
struct ConfigErrors {
  std::vector<Error> errors;
  std::string to_string() const;  // one line per error: "<source>: <where>: <message>"
  std::string source;
};

// `source` names the text in messages (a file path, or "<embedded default>").
Result<Config, ConfigErrors> parse_config(std::string_view json, std::string_view source);
Result<Config, ConfigErrors> load_config_file(const std::string& path);

// The text of config/adapterd.json as compiled into this binary.
std::string_view embedded_default_config();

}  // namespace adapter::app
