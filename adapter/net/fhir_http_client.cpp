#include "net/fhir_http_client.h"

#include <atomic>
#include <mutex>
#include <optional>
#include <utility>

#include "auth/jwt.h"
#include "auth/token_cache.h"
#include "auth/token_request.h"
#include "net/http_client.h"

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

  void post(const std::shared_ptr<const std::string>& bundle, Done done, bool after_unauthorized);
  void send(const std::shared_ptr<const std::string>& bundle, std::string authorization,
            const std::optional<auth::CachedToken>& token, Done done, bool after_unauthorized);
  void fetch_token();
  void finish_fetch(Result<auth::AccessToken> token);
};

namespace {

delivery::Response to_response(HttpResponse r) {
  delivery::Response out;
  out.status = static_cast<int>(r.status);
  out.retry_after = std::string(r.header("Retry-After"));
  out.body = std::move(r.body);
  return out;
}

}  // namespace

void FhirHttpClient::Impl::post(const std::shared_ptr<const std::string>& bundle, Done done,
                                bool after_unauthorized) {
  if (!uses_tokens()) {
    send(bundle, static_authorization, std::nullopt, std::move(done), true);
    return;
  }
  auto self = shared_from_this();
  auto waiter = [self, bundle, done, after_unauthorized](const Result<auth::CachedToken>& t) {
    if (!t) {
      done(t.error());
      return;
    }
    self->send(bundle, auth::bearer_authorization(t->value), *t, done, after_unauthorized);
  };
  auth::TokenCache::Acquisition a{auth::TokenCache::Acquire::wait, {}};
  {
    std::lock_guard lock(mu);
    a = tokens.acquire(waiter);
  }
  switch (a.action) {
    case auth::TokenCache::Acquire::use:
      send(bundle, auth::bearer_authorization(a.token.value), a.token, std::move(done),
           after_unauthorized);
      break;
    case auth::TokenCache::Acquire::fetch:
      fetch_token();
      break;
    case auth::TokenCache::Acquire::wait:
      break;
  }
}

void FhirHttpClient::Impl::send(const std::shared_ptr<const std::string>& bundle,
                                std::string authorization,
                                const std::optional<auth::CachedToken>& token, Done done,
                                bool after_unauthorized) {
  HttpRequest request;
  request.method = "POST";
  request.target = "";  // the base URL: a transaction or batch Bundle
  request.headers = {{"Content-Type", "application/fhir+json"},
                     {"Accept", "application/fhir+json"}};
  if (!authorization.empty())
    request.headers.push_back({"Authorization", std::move(authorization)});
  request.body = *bundle;
  auto self = shared_from_this();
  fhir->send(std::move(request), [self, bundle, token, done = std::move(done),
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
        self->post(bundle, done, true);
        return;
      }
    }
    done(to_response(std::move(*r)));
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
  impl_->post(std::make_shared<const std::string>(std::move(bundle_json)), std::move(done), false);
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
