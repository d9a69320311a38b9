#include "net/fhir_http_client.h"

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "auth/jwt.h"
#include "auth/token_cache.h"
#include "auth/token_request.h"
#include "common/json_text.h"
#include "delivery/resource_plan.h"
#include "net/http_client.h"
#include "net/url.h"

namespace adapter::net {

struct FhirHttpClient::Impl : std::enable_shared_from_this<Impl> {
  app::DestinationConfig config;
  std::unique_ptr<HttpClient> fhir;
  std::unique_ptr<HttpClient> token_endpoint;  // OAuth only: may be another host
  std::optional<auth::JwtSigner> signer;       // smart_backend only
  std::string static_authorization;            // basic and bearer

  std::mutex mu;  // guards `tokens` (TokenCache is not thread-safe)
  auth::TokenCache tokens{[] { return std::chrono::steady_clock::now(); }};

  std::atomic<std::uint64_t> token_fetches{0};
  std::atomic<std::uint64_t> unauthorized_retries{0};

  bool uses_tokens() const {
    return config.auth.kind == app::AuthConfig::Kind::client_credentials ||
           config.auth.kind == app::AuthConfig::Kind::smart_backend;
  }

  // Sends `request` with the destination's credentials; after a 401 with a token, fetches a new
  // token and sends once more.
  using Request = std::shared_ptr<const HttpRequest>;
  void authorized(const Request& request, Done done, bool after_unauthorized);
  void send(const Request& request, std::string authorization,
            const std::optional<auth::CachedToken>& token, Done done, bool after_unauthorized);
  void fetch_token();
  void finish_fetch(Result<auth::AccessToken> token);

  // Resource by resource (mode "resources"), one entry after the other.
  struct Sequence;
  void send_entry(const std::shared_ptr<Sequence>& seq, std::size_t position);
  void send_update(const std::shared_ptr<Sequence>& seq, std::size_t nth);
  // Sends one request of a sequence: no answer ends the sequence with the error, named after
  // `context`; an answer goes to `next`.
  void step(const std::shared_ptr<Sequence>& seq, HttpRequest request, std::string context,
            std::function<void(delivery::Response)> next);
  static void finish(const std::shared_ptr<Sequence>& seq);
};

// The state of one Bundle sent resource by resource.
struct FhirHttpClient::Impl::Sequence {
  delivery::ResourcePlan plan;
  std::map<std::string, std::string> assigned;  // fullUrl -> "Type/id"
  std::vector<delivery::EntryAnswer> answers;   // by Bundle index
  Done done;
};

namespace {

delivery::Response to_response(HttpResponse r) {
  delivery::Response out;
  out.status = static_cast<int>(r.status);
  out.retry_after = std::string(r.header("Retry-After"));
  out.location = std::string(r.header("Location"));
  out.body = std::move(r.body);
  return out;
}

HttpRequest fhir_post(std::string target, std::string body) {
  HttpRequest request;
  request.method = "POST";
  request.target = std::move(target);
  request.headers = {{"Content-Type", "application/fhir+json"},
                     {"Accept", "application/fhir+json"}};
  request.body = std::move(body);
  return request;
}

// "201 Created" for an entry's summary, as a transaction-response would say it.
std::string status_line(int status) {
  switch (status) {
    case 200:
      return "200 OK";
    case 201:
      return "201 Created";
    default:
      return std::to_string(status);
  }
}

}  // namespace

void FhirHttpClient::Impl::authorized(const Request& request, Done done, bool after_unauthorized) {
  if (!uses_tokens()) {
    send(request, static_authorization, std::nullopt, std::move(done), true);
    return;
  }
  auto self = shared_from_this();
  auto waiter = [self, request, done, after_unauthorized](const Result<auth::CachedToken>& t) {
    if (!t) {
      done(t.error());
      return;
    }
    self->send(request, auth::bearer_authorization(t->value), *t, done, after_unauthorized);
  };
  auth::TokenCache::Acquisition a{auth::TokenCache::Acquire::wait, {}};
  {
    std::lock_guard lock(mu);
    a = tokens.acquire(waiter);
  }
  switch (a.action) {
    case auth::TokenCache::Acquire::use:
      send(request, auth::bearer_authorization(a.token.value), a.token, std::move(done),
           after_unauthorized);
      break;
    case auth::TokenCache::Acquire::fetch:
      fetch_token();
      break;
    case auth::TokenCache::Acquire::wait:
      break;
  }
}

void FhirHttpClient::Impl::send(const Request& request, std::string authorization,
                                const std::optional<auth::CachedToken>& token, Done done,
                                bool after_unauthorized) {
  HttpRequest copy = *request;
  if (!authorization.empty()) copy.headers.push_back({"Authorization", std::move(authorization)});
  auto self = shared_from_this();
  fhir->send(std::move(copy), [self, request, token, done = std::move(done),
                               after_unauthorized](Result<HttpResponse> r) {
    if (!r) {
      done(std::move(r).error());
      return;
    }
    if (r->status == 401 && token && !after_unauthorized) {
      auth::TokenCache::Unauthorized next;
      {
        std::lock_guard lock(self->mu);
        next = self->tokens.on_unauthorized(*token);
      }
      if (next == auth::TokenCache::Unauthorized::retry) {
        self->unauthorized_retries.fetch_add(1, std::memory_order_relaxed);
        self->authorized(request, done, true);
        return;
      }
    }
    done(to_response(std::move(*r)));
  });
}

void FhirHttpClient::Impl::finish(const std::shared_ptr<Sequence>& seq) {
  // Every entry is on the server: answer as a transaction would have.
  delivery::Response ok;
  ok.status = 200;
  ok.body = R"({"resourceType":"Bundle","type":"transaction-response","entry":[)";
  bool first = true;
  for (const delivery::EntryAnswer& a : seq->answers) {
    ok.body += first ? R"({"response":{"status":)" : R"(,{"response":{"status":)";
    first = false;
    append_json_string(ok.body, a.status);
    ok.body += R"(,"location":)";
    append_json_string(ok.body, a.location);
    ok.body += "}}";
  }
  ok.body += "]}";
  seq->done(std::move(ok));
}

// The updates that put back the references a cycle kept out of the creates.
void FhirHttpClient::Impl::send_update(const std::shared_ptr<Sequence>& seq, std::size_t nth) {
  if (nth == seq->plan.updates().size()) {
    finish(seq);
    return;
  }
  const delivery::PlannedEntry& entry = seq->plan.entries()[seq->plan.updates()[nth]];
  const std::string context =
      "update of entry " + std::to_string(entry.index + 1) + " (" + entry.resource_type + ")";
  const std::string& typed_id = seq->assigned[entry.full_url];  // "ServiceRequest/12"
  Result<std::string> resource =
      seq->plan.resolve_update(entry, seq->assigned, typed_id.substr(typed_id.find('/') + 1));
  if (!resource) {
    seq->done(std::move(resource).error());
    return;
  }
  HttpRequest request = fhir_post(typed_id, std::move(*resource));
  request.method = "PUT";
  auto self = shared_from_this();
  step(seq, std::move(request), context, [self, seq, nth, context](delivery::Response r) {
    if (r.status / 100 != 2) {
      r.context = context;
      seq->done(std::move(r));
      return;
    }
    self->send_update(seq, nth + 1);
  });
}

void FhirHttpClient::Impl::step(const std::shared_ptr<Sequence>& seq, HttpRequest request,
                                std::string context, std::function<void(delivery::Response)> next) {
  authorized(
      std::make_shared<const HttpRequest>(std::move(request)),
      [seq, context = std::move(context), next = std::move(next)](Result<delivery::Response> r) {
        if (!r) {
          Error e = std::move(r).error();
          e.message = context + ": " + e.message;
          seq->done(std::move(e));
          return;
        }
        next(std::move(*r));
      },
      false);
}

void FhirHttpClient::Impl::send_entry(const std::shared_ptr<Sequence>& seq, std::size_t position) {
  if (position == seq->plan.size()) {
    send_update(seq, 0);
    return;
  }
  const delivery::PlannedEntry& entry = seq->plan.entries()[position];
  const std::string context =
      "entry " + std::to_string(entry.index + 1) + " (" + entry.resource_type + ")";
  Result<std::string> resource = seq->plan.resolve(entry, seq->assigned);
  if (!resource) {
    seq->done(std::move(resource).error());
    return;
  }
  HttpRequest request;
  if (entry.conditional_update.empty()) {
    request = fhir_post(entry.resource_type, std::move(*resource));
    if (!entry.if_none_exist.empty())
      request.headers.push_back({"If-None-Exist", entry.if_none_exist});
  } else {
    // A correction: the server updates the resource the search finds (or creates it) and
    // answers with it, which is where its id comes from. Its search was written for a Bundle
    // ('|' between system and value): on the wire it is percent-encoded.
    const std::size_t q = entry.conditional_update.find('?');
    request = fhir_post(entry.conditional_update.substr(0, q + 1) +
                            encode_query(entry.conditional_update.substr(q + 1)),
                        std::move(*resource));
    request.method = "PUT";
  }
  auto self = shared_from_this();
  step(seq, std::move(request), context, [self, seq, position, context](delivery::Response r) {
    const delivery::PlannedEntry& sent = seq->plan.entries()[position];
    const std::string id = r.status / 100 == 2 ? delivery::ResourcePlan::assigned_id(
                                                     r.location, r.body, sent.resource_type)
                                               : std::string();
    if (id.empty()) {
      // A refusal, or a 2xx that does not say which resource it is (then the references to it
      // cannot be written): stop here; classify() decides.
      r.context = context;
      if (r.status / 100 == 2) r.status = 502;
      seq->done(std::move(r));
      return;
    }
    if (!sent.full_url.empty()) seq->assigned[sent.full_url] = id;
    seq->answers[sent.index] = {status_line(r.status), r.location.empty() ? id : r.location};
    self->send_entry(seq, position + 1);
  });
}

void FhirHttpClient::Impl::fetch_token() {
  token_fetches.fetch_add(1, std::memory_order_relaxed);
  const app::AuthConfig& a = config.auth;
  auth::TokenRequest form;
  if (a.kind == app::AuthConfig::Kind::smart_backend) {
    auth::ClientAssertion claims;
    claims.client_id = a.client_id;
    claims.audience = a.token_url;
    Result<std::string> jwt = signer->client_assertion(claims, std::chrono::system_clock::now());
    if (!jwt) {
      finish_fetch(std::move(jwt).error());
      return;
    }
    form = auth::private_key_jwt_request(*jwt, a.scope);
  } else if (a.client_secret_post) {
    form = auth::client_secret_post_request(a.client_id, a.client_secret, a.scope);
  } else {
    form = auth::client_secret_basic_request(a.client_id, a.client_secret, a.scope);
  }
  HttpRequest request;
  request.method = "POST";
  request.target = "";
  request.headers = {{"Content-Type", std::string(auth::TokenRequest::content_type)},
                     {"Accept", std::string(auth::TokenRequest::accept)}};
  if (!form.authorization.empty()) {
    request.headers.push_back({"Authorization", std::move(form.authorization)});
  }
  request.body = std::move(form.body);
  auto self = shared_from_this();
  token_endpoint->send(std::move(request), [self](Result<HttpResponse> r) {
    if (!r) {
      self->finish_fetch(std::move(r).error());
      return;
    }
    self->finish_fetch(auth::parse_token_response(static_cast<int>(r->status), r->body));
  });
}

void FhirHttpClient::Impl::finish_fetch(Result<auth::AccessToken> token) {
  std::vector<auth::TokenCache::Waiter> waiters;
  std::optional<auth::CachedToken> fetched;
  {
    std::lock_guard lock(mu);
    if (token) {
      auth::TokenCache::Fetched f = tokens.on_fetched(std::move(token->value), token->expires_in);
      fetched = std::move(f.token);
      waiters = std::move(f.waiters);
    } else {
      waiters = tokens.on_fetch_failed();
    }
  }
  // Outside the lock: a waiter sends its request, which may come back here.
  for (auto& w : waiters) {
    if (fetched) {
      w(*fetched);
    } else {
      w(token.error());
    }
  }
}

Result<std::shared_ptr<FhirHttpClient>> FhirHttpClient::create(
    boost::asio::io_context& ioc, const app::DestinationConfig& config) {
  auto impl = std::make_shared<Impl>();
  impl->config = config;
  HttpClientOptions options;
  options.connect_timeout = config.connect_timeout;
  options.request_timeout = config.request_timeout;
  options.max_connections = config.max_in_flight;
  options.ca_file = config.ca_file;
  options.client_certificate_file = config.client_certificate_file;
  options.client_key_file = config.client_key_file;
  auto fhir = HttpClient::create(ioc, config.base_url, options);
  if (!fhir) return std::move(fhir).error();
  impl->fhir = std::move(*fhir);

  const app::AuthConfig& a = config.auth;
  switch (a.kind) {
    case app::AuthConfig::Kind::none:
      break;
    case app::AuthConfig::Kind::basic: {
      auto header = auth::basic_authorization(a.username, a.password);
      if (!header) return std::move(header).error();
      impl->static_authorization = std::move(*header);
      break;
    }
    case app::AuthConfig::Kind::bearer:
      impl->static_authorization = auth::bearer_authorization(a.token);
      break;
    case app::AuthConfig::Kind::smart_backend: {
      auto alg = auth::parse_jwt_algorithm(a.algorithm);
      if (!alg) return std::move(alg).error();
      auto signer = auth::JwtSigner::load_pem_file(a.private_key_file, *alg, a.key_id);
      if (!signer) return std::move(signer).error();
      impl->signer.emplace(std::move(*signer));
      [[fallthrough]];
    }
    case app::AuthConfig::Kind::client_credentials: {
      HttpClientOptions token_options = options;
      token_options.max_connections = 1;
      if (a.token_url.rfind("https://", 0) != 0) {
        // The TLS settings are the FHIR server's; an http:// token endpoint takes none (the
        // client refuses them there, as a guard against a mistyped scheme).
        token_options.ca_file.clear();
        token_options.client_certificate_file.clear();
        token_options.client_key_file.clear();
      }
      auto endpoint = HttpClient::create(ioc, a.token_url, token_options);
      if (!endpoint) return std::move(endpoint).error();
      impl->token_endpoint = std::move(*endpoint);
      break;
    }
  }
  return std::shared_ptr<FhirHttpClient>(new FhirHttpClient(std::move(impl)));
}

FhirHttpClient::FhirHttpClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
FhirHttpClient::~FhirHttpClient() = default;

void FhirHttpClient::post_bundle(std::string bundle_json, Done done) {
  if (!impl_->config.resource_by_resource) {
    // The base URL takes the transaction Bundle whole.
    impl_->authorized(std::make_shared<const HttpRequest>(fhir_post("", std::move(bundle_json))),
                      std::move(done), false);
    return;
  }
  Result<delivery::ResourcePlan> plan = delivery::ResourcePlan::from_bundle(bundle_json);
  if (!plan) {
    // Not sendable one by one (an entry that is not a create): a refusal of this Bundle, not a
    // failure of the destination, so a dead letter that says why.
    delivery::Response refused;
    refused.status = 422;
    refused.context = "the Bundle";
    refused.body = R"({"resourceType":"OperationOutcome","issue":[{"severity":"error",)"
                   R"("code":"not-supported","diagnostics":)";
    append_json_string(refused.body, plan.error().message);
    refused.body += "}]}";
    done(std::move(refused));
    return;
  }
  auto seq = std::make_shared<Impl::Sequence>();
  seq->answers.resize(plan->size());
  seq->plan = std::move(*plan);
  seq->done = std::move(done);
  impl_->send_entry(seq, 0);
}

std::string FhirHttpClient::describe() const {
  return impl_->config.name + " (" + impl_->fhir->destination() + ")";
}

FhirClientStats FhirHttpClient::stats() const {
  FhirClientStats s;
  s.token_fetches = impl_->token_fetches.load(std::memory_order_relaxed);
  s.unauthorized_retries = impl_->unauthorized_retries.load(std::memory_order_relaxed);
  s.connections_opened = impl_->fhir->stats().connections_opened;
  return s;
}

}  // namespace adapter::net
