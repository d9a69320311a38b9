// Client assertions for SMART Backend Services (the private_key_jwt client authentication of
// RFC 7523): a JWT signed RS384 or ES384 with the client's private key, naming the key by `kid`.
//
//   Result<JwtSigner> signer = JwtSigner::load_pem_file("/run/secrets/ehr.key",
//   JwtAlgorithm::es384,
//                                                       "key-2024");    // once, at startup
//   Result<std::string> jwt = signer->client_assertion({client_id, token_url},
//                                                      std::chrono::system_clock::now());
//
// Thread-safety: a loaded JwtSigner is immutable; sign() and client_assertion() may run
// concurrently (each call has its own OpenSSL context).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept opaque so OpenSSL headers stay out of this header

namespace adapter::auth {

enum class JwtAlgorithm {
  rs384,  // RSASSA-PKCS1-v1_5 with SHA-384; an RSA key of at least 2048 bits
  es384,  // ECDSA on P-384 with SHA-384; the signature is R||S, 96 bytes (RFC 7518 section 3.4)
};

std::string_view name(JwtAlgorithm alg);  // "RS384" or "ES384"
Result<JwtAlgorithm> parse_jwt_algorithm(std::string_view text);

// The claims of one client assertion (SMART App Launch 2.x, Backend Services).
struct ClientAssertion {
  std::string client_id;  // iss and sub
  std::string audience;   // aud: the token endpoint URL
  // exp = now + lifetime. SMART requires at most 5 minutes; longer values are clamped to that.
  std::chrono::seconds lifetime{std::chrono::minutes(5)};
  bool include_iat = true;
};

// A private key loaded once and used for many signatures.
class JwtSigner {
 public:
  // Reads a PEM private key (PKCS#8 "PRIVATE KEY", or traditional "RSA PRIVATE KEY" /
  // "EC PRIVATE KEY"). Errors (Errc::auth_key_unusable) for a missing or unreadable file, an
  // encrypted key (no passphrase is ever asked for), a file without a private key, and a key that
  // does not fit `alg` (not RSA, or RSA below 2048 bits, for RS384; not EC P-384 for ES384).
  // Messages name the file and the problem, never key material.
  static Result<JwtSigner> load_pem_file(const std::string& path, JwtAlgorithm alg,
                                         std::string kid);
  // The same from PEM text in memory; `origin` names it in messages.
  static Result<JwtSigner> load_pem(std::string_view pem, JwtAlgorithm alg, std::string kid,
                                    const std::string& origin = "the key");

  JwtSigner(JwtSigner&&) noexcept;
  JwtSigner& operator=(JwtSigner&&) noexcept;
  ~JwtSigner();

  JwtAlgorithm algorithm() const { return alg_; }
  const std::string& kid() const { return kid_; }

  // A compact JWS: base64url(header) "." base64url(claims) "." base64url(signature), where the
  // header is {"alg":...,"typ":"JWT","kid":...} and the claims are iss, sub, aud, exp, jti (128
  // random bits, hex) and, if asked, iat. `now` is wall-clock time (exp is absolute).
  Result<std::string> client_assertion(const ClientAssertion& claims,
                                       std::chrono::system_clock::time_point now) const;

  // Signs `signing_input` (the "header.payload" text) and returns the raw JWS signature bytes.
  Result<std::string> sign(std::string_view signing_input) const;

  // Builds header.claims.signature around any claims JSON object (for tests and other profiles).
  Result<std::string> sign_claims(std::string_view claims_json) const;

 private:
  struct KeyDeleter {
    void operator()(evp_pkey_st* key) const;
  };
  JwtSigner(std::unique_ptr<evp_pkey_st, KeyDeleter> key, JwtAlgorithm alg, std::string kid);

  std::unique_ptr<evp_pkey_st, KeyDeleter> key_;
  JwtAlgorithm alg_;
  std::string kid_;
};

}  // namespace adapter::auth
