#include "auth/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <algorithm>
#include <fstream>

#include "auth/encoding.h"
#include "common/json_text.h"

namespace adapter::auth {
namespace {

constexpr int kMinRsaBits = 2048;  // SMART Backend Services and NIST SP 800-131A
constexpr int kP384Bytes = 48;     // size of R and of S in an ES384 signature
constexpr std::size_t kMaxPemBytes = 1 << 20;
constexpr auto kMaxAssertionLifetime = std::chrono::minutes(5);

Error key_error(const std::string& origin, const std::string& problem) {
  ERR_clear_error();  // leave no stale entries for the next OpenSSL caller on this thread
  return make_error(Errc::auth_key_unusable, origin + ": " + problem);
}

// OpenSSL asks for a passphrase only when the key is encrypted. The adapter never has one, so the
// callback refuses and records that it was asked, which turns "decoding failed" into a clear
// "the key is encrypted".
struct PassphraseProbe {
  bool asked = false;
};
int refuse_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* user) {
  static_cast<PassphraseProbe*>(user)->asked = true;
  return -1;
}

// Checks that `key` fits `alg`; an empty string when it does, else the problem.
std::string key_mismatch(EVP_PKEY* key, JwtAlgorithm alg) {
  const char* type = EVP_PKEY_get0_type_name(key);
  const std::string type_name = type != nullptr ? type : "unknown";
  if (alg == JwtAlgorithm::rs384) {
    if (!EVP_PKEY_is_a(key, "RSA")) return "RS384 needs an RSA key, but the key is " + type_name;
    const int bits = EVP_PKEY_get_bits(key);
    if (bits < kMinRsaBits) {
      return "RS384 needs an RSA key of at least 2048 bits, but the key has " +
             std::to_string(bits);
    }
    return {};
  }
  if (!EVP_PKEY_is_a(key, "EC")) return "ES384 needs an EC P-384 key, but the key is " + type_name;
  char group[64] = {};
  std::size_t group_len = 0;
  if (EVP_PKEY_get_group_name(key, group, sizeof group, &group_len) != 1) {
    return "ES384 needs an EC P-384 key, but the key's curve cannot be read";
  }
  const std::string_view curve(group, group_len);
  if (curve != "secp384r1" && curve != "P-384") {
    return "ES384 needs an EC P-384 key, but the key is on curve " + std::string(curve);
  }
  return {};
}

// Converts an ECDSA signature from DER (what OpenSSL produces) to the fixed-size R||S that JWS
// requires (RFC 7518 section 3.4).
bool der_to_raw_ecdsa(const unsigned char* der, std::size_t der_len, std::string& raw) {
  const unsigned char* p = der;
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len));
  if (sig == nullptr) return false;
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig, &r, &s);
  raw.assign(2 * static_cast<std::size_t>(kP384Bytes), '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  const bool ok = BN_bn2binpad(r, out, kP384Bytes) == kP384Bytes &&
                  BN_bn2binpad(s, out + kP384Bytes, kP384Bytes) == kP384Bytes;
  ECDSA_SIG_free(sig);
  return ok;
}

std::string header_json(JwtAlgorithm alg, const std::string& kid) {
  std::string out = "{\"alg\":\"";
  out += name(alg);
  out += "\",\"typ\":\"JWT\"";
  if (!kid.empty()) {
    out += ",\"kid\":";
    append_json_string(out, kid);
  }
  out += '}';
  return out;
}

}  // namespace

std::string_view name(JwtAlgorithm alg) {
  return alg == JwtAlgorithm::rs384 ? "RS384" : "ES384";
}

Result<JwtAlgorithm> parse_jwt_algorithm(std::string_view text) {
  if (text == "RS384") return JwtAlgorithm::rs384;
  if (text == "ES384") return JwtAlgorithm::es384;
  return make_error(Errc::bad_config,
                    "unsupported JWT algorithm '" + std::string(text) + "' (use RS384 or ES384)");
}

void JwtSigner::KeyDeleter::operator()(evp_pkey_st* key) const {
  EVP_PKEY_free(key);
}

JwtSigner::JwtSigner(std::unique_ptr<evp_pkey_st, KeyDeleter> key, JwtAlgorithm alg,
                     std::string kid)
    : key_(std::move(key)), alg_(alg), kid_(std::move(kid)) {}
JwtSigner::JwtSigner(JwtSigner&&) noexcept = default;
JwtSigner& JwtSigner::operator=(JwtSigner&&) noexcept = default;
JwtSigner::~JwtSigner() = default;

Result<JwtSigner> JwtSigner::load_pem_file(const std::string& path, JwtAlgorithm alg,
                                           std::string kid) {
  const std::string origin = "key file '" + path + "'";
  std::ifstream in(path, std::ios::binary);
  if (!in) return key_error(origin, "cannot be read");
  std::string pem;
  char buffer[4096];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    pem.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (pem.size() > kMaxPemBytes) break;
  }
  OPENSSL_cleanse(buffer, sizeof buffer);
  const bool too_large = pem.size() > kMaxPemBytes;
  const bool unreadable = in.bad();
  Result<JwtSigner> signer = too_large    ? key_error(origin, "is larger than 1 MiB")
                             : unreadable ? key_error(origin, "cannot be read")
                                          : load_pem(pem, alg, std::move(kid), origin);
  OPENSSL_cleanse(pem.data(), pem.size());
  return signer;
}

Result<JwtSigner> JwtSigner::load_pem(std::string_view pem, JwtAlgorithm alg, std::string kid,
                                      const std::string& origin) {
  if (pem.empty()) return key_error(origin, "is empty");
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return key_error(origin, "cannot be buffered (out of memory)");
  PassphraseProbe probe;
  std::unique_ptr<evp_pkey_st, KeyDeleter> key(
      PEM_read_bio_PrivateKey(bio, nullptr, refuse_passphrase, &probe));
  BIO_free(bio);
  if (!key) {
    if (probe.asked) {
      return key_error(origin,
                       "is encrypted; give an unencrypted PEM private key (protect the file with "
                       "permissions instead)");
    }
    return key_error(origin,
                     "holds no PEM private key (a public key or certificate is not enough)");
  }
  const std::string mismatch = key_mismatch(key.get(), alg);
  if (!mismatch.empty()) return key_error(origin, mismatch);
  ERR_clear_error();
  return JwtSigner(std::move(key), alg, std::move(kid));
}

Result<std::string> JwtSigner::sign(std::string_view signing_input) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return make_error(Errc::internal, "JWT signing: out of memory");
  const auto* data = reinterpret_cast<const unsigned char*>(signing_input.data());
  std::size_t len = 0;
  std::string der;
  bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha384(), nullptr, key_.get()) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, data, signing_input.size()) == 1;
  if (ok) {
    der.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len, data,
                        signing_input.size()) == 1;
    der.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    ERR_clear_error();
    return make_error(Errc::internal,
                      "JWT signing with " + std::string(name(alg_)) + " failed in OpenSSL");
  }
  if (alg_ == JwtAlgorithm::rs384) return der;  // RSA signatures are already raw bytes
  std::string raw;
  if (!der_to_raw_ecdsa(reinterpret_cast<const unsigned char*>(der.data()), der.size(), raw)) {
    ERR_clear_error();
    return make_error(Errc::internal, "ES384 signature has an unexpected DER form");
  }
  return raw;
}

Result<std::string> JwtSigner::sign_claims(std::string_view claims_json) const {
  std::string jws = base64url_encode(header_json(alg_, kid_));
  jws += '.';
  jws += base64url_encode(claims_json);
  Result<std::string> signature = sign(jws);
  if (!signature) return signature.error();
  jws += '.';
  jws += base64url_encode(*signature);
  return jws;
}

Result<std::string> JwtSigner::client_assertion(const ClientAssertion& claims,
                                                std::chrono::system_clock::time_point now) const {
  unsigned char nonce[16];
  if (RAND_bytes(nonce, sizeof nonce) != 1) {
    ERR_clear_error();
    return make_error(Errc::internal, "no random bytes for the JWT id (jti)");
  }
  const std::string jti =
      hex_encode(std::string_view(reinterpret_cast<const char*>(nonce), sizeof nonce));
  const auto lifetime = std::clamp<std::chrono::seconds>(claims.lifetime, std::chrono::seconds(1),
                                                         kMaxAssertionLifetime);
  const auto iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch());
  const auto exp = iat + lifetime;

  std::string json = "{\"iss\":";
  append_json_string(json, claims.client_id);
  json += ",\"sub\":";
  append_json_string(json, claims.client_id);
  json += ",\"aud\":";
  append_json_string(json, claims.audience);
  json += ",\"exp\":" + std::to_string(exp.count());
  if (claims.include_iat) json += ",\"iat\":" + std::to_string(iat.count());
  json += ",\"jti\":\"" + jti + "\"}";
  return sign_claims(json);
}

}  // namespace adapter::auth
