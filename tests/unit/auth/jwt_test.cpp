// Keys are generated when the tests run (nothing is committed) and every signature is verified
// with OpenSSL from the public key alone, ES384 after converting R||S back to DER.
#include "auth/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <rapidjson/document.h>
#include <catch2/catch.hpp>

#include <memory>
#include <set>
#include <vector>

#include "auth/encoding.h"
#include "support/temp_dir.h"

using namespace adapter;
using namespace adapter::auth;
using namespace std::chrono_literals;

namespace {

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

Key generate_rsa(unsigned bits) {
  Key k(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
  REQUIRE(k);
  return k;
}

Key generate_ec(const char* curve) {
  Key k(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
  REQUIRE(k);
  return k;
}

// Generated once per run: RSA key generation takes a noticeable fraction of a second.
EVP_PKEY* rsa2048() {
  static Key key = generate_rsa(2048);
  return key.get();
}
EVP_PKEY* p384() {
  static Key key = generate_ec("P-384");
  return key.get();
}

enum class PemForm { pkcs8, traditional, pkcs8_encrypted, traditional_encrypted, public_only };

std::string to_pem(EVP_PKEY* key, PemForm form) {
  BIO* bio = BIO_new(BIO_s_mem());
  REQUIRE(bio != nullptr);
  unsigned char pass[] = "correct horse";
  const int pass_len = static_cast<int>(sizeof pass - 1);
  int ok = 0;
  switch (form) {
    case PemForm::pkcs8:
      ok = PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
      break;
    case PemForm::traditional:
      ok = PEM_write_bio_PrivateKey_traditional(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
      break;
    case PemForm::pkcs8_encrypted:
      ok = PEM_write_bio_PrivateKey(bio, key, EVP_aes_256_cbc(), pass, pass_len, nullptr, nullptr);
      break;
    case PemForm::traditional_encrypted:
      ok = PEM_write_bio_PrivateKey_traditional(bio, key, EVP_aes_256_cbc(), pass, pass_len,
                                                nullptr, nullptr);
      break;
    case PemForm::public_only:
      ok = PEM_write_bio_PUBKEY(bio, key);
      break;
  }
  REQUIRE(ok == 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  return pem;
}

// The public half only, read back from PEM, so verification cannot use the private key.
Key public_key_of(EVP_PKEY* key) {
  const std::string pem = to_pem(key, PemForm::public_only);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  Key pub(PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  REQUIRE(pub);
  return pub;
}

// JWS R||S (96 bytes) -> the DER ECDSA-Sig-Value OpenSSL verifies.
std::string raw_to_der(const std::string& raw) {
  REQUIRE(raw.size() == 96);
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  ECDSA_SIG* sig = ECDSA_SIG_new();
  REQUIRE(ECDSA_SIG_set0(sig, BN_bin2bn(bytes, 48, nullptr), BN_bin2bn(bytes + 48, 48, nullptr)) ==
          1);
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  REQUIRE(len > 0);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  return out;
}

bool verify(EVP_PKEY* public_key, JwtAlgorithm alg, std::string_view signing_input,
            const std::string& signature) {
  const std::string der = alg == JwtAlgorithm::es384 ? raw_to_der(signature) : signature;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha384(), nullptr, public_key) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(der.data()), der.size(),
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

struct Jws {
  std::string signing_input;  // header.payload as sent
  rapidjson::Document header;
  rapidjson::Document claims;
  std::string signature;
};

Jws split(const std::string& jwt) {
  const std::size_t first = jwt.find('.');
  const std::size_t second = jwt.find('.', first + 1);
  REQUIRE(first != std::string::npos);
  REQUIRE(second != std::string::npos);
  REQUIRE(jwt.find('.', second + 1) == std::string::npos);
  REQUIRE(jwt.find('=') == std::string::npos);  // no padding anywhere
  Jws out;
  out.signing_input = jwt.substr(0, second);
  const auto header = base64url_decode(jwt.substr(0, first));
  const auto claims = base64url_decode(jwt.substr(first + 1, second - first - 1));
  const auto signature = base64url_decode(jwt.substr(second + 1));
  REQUIRE(header);
  REQUIRE(claims);
  REQUIRE(signature);
  out.header.Parse(header->c_str());
  out.claims.Parse(claims->c_str());
  REQUIRE_FALSE(out.header.HasParseError());
  REQUIRE_FALSE(out.claims.HasParseError());
  out.signature = *signature;
  return out;
}

std::string str(const rapidjson::Value& obj, const char* key) {
  REQUIRE(obj.HasMember(key));
  REQUIRE(obj[key].IsString());
  return obj[key].GetString();
}

std::int64_t num(const rapidjson::Value& obj, const char* key) {
  REQUIRE(obj.HasMember(key));
  REQUIRE(obj[key].IsInt64());
  return obj[key].GetInt64();
}

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));

JwtSigner load(EVP_PKEY* key, JwtAlgorithm alg, const adapter::test::TempDir& dir,
               PemForm form = PemForm::pkcs8) {
  Result<JwtSigner> signer =
      JwtSigner::load_pem_file(dir.write("key.pem", to_pem(key, form)), alg, "kid-1");
  if (!signer) FAIL(signer.error().to_string());
  return std::move(signer).value();
}

void check_assertion(EVP_PKEY* key, JwtAlgorithm alg, PemForm form) {
  adapter::test::TempDir dir;
  const JwtSigner signer = load(key, alg, dir, form);
  CHECK(signer.algorithm() == alg);
  CHECK(signer.kid() == "kid-1");
  const ClientAssertion claims{"client-42", "https://ehr.example/oauth2/token"};
  const Result<std::string> jwt = signer.client_assertion(claims, kNow);
  REQUIRE(jwt);
  const Jws jws = split(*jwt);

  CHECK(str(jws.header, "alg") == name(alg));
  CHECK(str(jws.header, "typ") == "JWT");
  CHECK(str(jws.header, "kid") == "kid-1");
  CHECK(str(jws.claims, "iss") == "client-42");
  CHECK(str(jws.claims, "sub") == "client-42");
  CHECK(str(jws.claims, "aud") == "https://ehr.example/oauth2/token");
  CHECK(num(jws.claims, "iat") == 1'700'000'000);
  CHECK(num(jws.claims, "exp") == 1'700'000'300);
  const std::string jti = str(jws.claims, "jti");
  CHECK(jti.size() == 32);
  CHECK(jti.find_first_not_of("0123456789abcdef") == std::string::npos);

  const Key pub = public_key_of(key);
  CHECK(verify(pub.get(), alg, jws.signing_input, jws.signature));
  if (alg == JwtAlgorithm::es384) CHECK(jws.signature.size() == 96);
  if (alg == JwtAlgorithm::rs384) CHECK(jws.signature.size() == 256);

  // A changed claim, or a changed signature, no longer verifies.
  std::string tampered = jws.signing_input;
  tampered[tampered.size() - 2] = tampered[tampered.size() - 2] == 'A' ? 'B' : 'A';
  CHECK_FALSE(verify(pub.get(), alg, tampered, jws.signature));
  std::string bad_signature = jws.signature;
  bad_signature[10] = static_cast<char>(bad_signature[10] ^ 0x01);
  CHECK_FALSE(verify(pub.get(), alg, jws.signing_input, bad_signature));
  // Another key of the same kind does not verify it either.
  const Key other = alg == JwtAlgorithm::rs384 ? generate_rsa(2048) : generate_ec("P-384");
  CHECK_FALSE(verify(other.get(), alg, jws.signing_input, jws.signature));
}

// Loads `pem` as a key file and returns the error, checking that it carries no key material.
Error load_error(const std::string& pem, JwtAlgorithm alg) {
  adapter::test::TempDir dir;
  const std::string path = dir.write("key.pem", pem);
  Result<JwtSigner> signer = JwtSigner::load_pem_file(path, alg, "kid");
  REQUIRE_FALSE(signer);
  const Error e = signer.error();
  CHECK(e.code == Errc::auth_key_unusable);
  CHECK(e.message.find(path) != std::string::npos);
  CHECK(e.message.find("BEGIN") == std::string::npos);
  // No line of the PEM body appears in the message.
  std::size_t start = 0;
  while (start < pem.size()) {
    const std::size_t end = pem.find('\n', start);
    const std::string line = pem.substr(start, end - start);
    if (line.size() > 16 && line.find("-----") == std::string::npos) {
      CHECK(e.message.find(line.substr(0, 16)) == std::string::npos);
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return e;
}

bool mentions(const Error& e, std::string_view text) {
  return e.message.find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("RS384 client assertions verify with the RSA public key", "[auth][jwt]") {
  check_assertion(rsa2048(), JwtAlgorithm::rs384, PemForm::pkcs8);
  check_assertion(rsa2048(), JwtAlgorithm::rs384, PemForm::traditional);
}

TEST_CASE("ES384 client assertions are R and S and verify with the P-384 public key",
          "[auth][jwt]") {
  check_assertion(p384(), JwtAlgorithm::es384, PemForm::pkcs8);
  check_assertion(p384(), JwtAlgorithm::es384, PemForm::traditional);
}

TEST_CASE("One loaded signer signs many assertions each with a fresh jti", "[auth][jwt]") {
  adapter::test::TempDir dir;
  const JwtSigner signer = load(p384(), JwtAlgorithm::es384, dir);
  const Key pub = public_key_of(p384());
  std::set<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    const Result<std::string> jwt = signer.client_assertion({"c", "https://t"}, kNow);
    REQUIRE(jwt);
    const Jws jws = split(*jwt);
    CHECK(verify(pub.get(), JwtAlgorithm::es384, jws.signing_input, jws.signature));
    ids.insert(str(jws.claims, "jti"));
  }
  CHECK(ids.size() == 20);
}

TEST_CASE("Assertion lifetime is at most five minutes and iat is optional", "[auth][jwt]") {
  adapter::test::TempDir dir;
  const JwtSigner signer = load(p384(), JwtAlgorithm::es384, dir);
  ClientAssertion claims{"c", "https://t", std::chrono::hours(1), false};
  const Jws long_lived = split(signer.client_assertion(claims, kNow).value());
  CHECK(num(long_lived.claims, "exp") == 1'700'000'300);
  CHECK_FALSE(long_lived.claims.HasMember("iat"));
  claims.lifetime = 60s;
  CHECK(num(split(signer.client_assertion(claims, kNow).value()).claims, "exp") == 1'700'000'060);
}

TEST_CASE("Claims with quotes and unicode stay valid JSON", "[auth][jwt]") {
  adapter::test::TempDir dir;
  Result<JwtSigner> signer = JwtSigner::load_pem_file(
      dir.write("k.pem", to_pem(p384(), PemForm::pkcs8)), JwtAlgorithm::es384, "kid \"q\"");
  REQUIRE(signer);
  const Jws jws = split(
      signer->client_assertion({"client \"x\" caf\xC3\xA9", "https://t/?a=1&b=2"}, kNow).value());
  CHECK(str(jws.header, "kid") == "kid \"q\"");
  CHECK(str(jws.claims, "iss") == "client \"x\" caf\xC3\xA9");
  CHECK(str(jws.claims, "aud") == "https://t/?a=1&b=2");
}

TEST_CASE("A key that does not fit the algorithm is refused at load", "[auth][jwt]") {
  const Error rsa_for_es = load_error(to_pem(rsa2048(), PemForm::pkcs8), JwtAlgorithm::es384);
  CHECK(mentions(rsa_for_es, "ES384 needs an EC P-384 key, but the key is RSA"));
  const Error ec_for_rs = load_error(to_pem(p384(), PemForm::pkcs8), JwtAlgorithm::rs384);
  CHECK(mentions(ec_for_rs, "RS384 needs an RSA key, but the key is EC"));
  const Key p256 = generate_ec("P-256");
  const Error wrong_curve = load_error(to_pem(p256.get(), PemForm::pkcs8), JwtAlgorithm::es384);
  CHECK(mentions(wrong_curve, "prime256v1"));
  const Key small = generate_rsa(1024);
  const Error too_small = load_error(to_pem(small.get(), PemForm::pkcs8), JwtAlgorithm::rs384);
  CHECK(mentions(too_small, "at least 2048 bits, but the key has 1024"));
}

TEST_CASE("Encrypted public-only missing and garbage key files are refused clearly",
          "[auth][jwt]") {
  CHECK(mentions(load_error(to_pem(rsa2048(), PemForm::pkcs8_encrypted), JwtAlgorithm::rs384),
                 "is encrypted"));
  CHECK(mentions(load_error(to_pem(p384(), PemForm::traditional_encrypted), JwtAlgorithm::es384),
                 "is encrypted"));
  CHECK(mentions(load_error(to_pem(p384(), PemForm::public_only), JwtAlgorithm::es384),
                 "holds no PEM private key"));
  CHECK(
      mentions(load_error("not a key at all\n", JwtAlgorithm::rs384), "holds no PEM private key"));
  CHECK(mentions(load_error("", JwtAlgorithm::rs384), "is empty"));
  // A corrupted body: the header line is right, the base64 inside is not.
  std::string corrupt = to_pem(p384(), PemForm::pkcs8);
  corrupt[40] = corrupt[40] == 'A' ? '!' : 'A';
  corrupt[41] = '!';
  CHECK(mentions(load_error(corrupt, JwtAlgorithm::es384), "holds no PEM private key"));

  Result<JwtSigner> missing =
      JwtSigner::load_pem_file("/nonexistent/adapter/key.pem", JwtAlgorithm::rs384, "k");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == Errc::auth_key_unusable);
  CHECK(mentions(missing.error(), "key file '/nonexistent/adapter/key.pem': cannot be read"));
}

TEST_CASE("Algorithm names parse", "[auth][jwt]") {
  CHECK(parse_jwt_algorithm("RS384").value() == JwtAlgorithm::rs384);
  CHECK(parse_jwt_algorithm("ES384").value() == JwtAlgorithm::es384);
  CHECK(parse_jwt_algorithm("HS256").error().code == Errc::bad_config);
  CHECK(parse_jwt_algorithm("rs384").error().code == Errc::bad_config);
}
