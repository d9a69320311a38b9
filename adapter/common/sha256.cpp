#include "common/sha256.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace adapter {
namespace {

// SHA-256 fetched from the provider once: EVP_sha256() makes OpenSSL 3 look the algorithm up on
// every EVP_DigestInit_ex, which costs more than hashing the short texts that uuid() hashes.
const EVP_MD* sha256_md() {
  static EVP_MD* const md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (fetched == nullptr) std::abort();  // OpenSSL without SHA-256: not a supported system
    return fetched;
  }();
  return md;
}

std::string hex(const unsigned char* md, unsigned int len) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 0xF];
  }
  return out;
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr ||
      EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), sha256_md(), nullptr) != 1) {
    std::abort();  // OpenSSL without SHA-256 cannot happen on a supported system
  }
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}

void Sha256::update(std::string_view data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}

std::string Sha256::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len);
  return hex(md, len);
}

std::string sha256_hex(std::string_view data) {
  // One context per thread, reset for each hash: uuid() hashes a few dozen short texts per
  // message, and a new context per hash cost more than the hashing.
  struct Context {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Context() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Context context;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (context.ctx == nullptr || EVP_DigestInit_ex2(context.ctx, sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(context.ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(context.ctx, md, &len) != 1) {
    std::abort();  // as in Sha256(): cannot happen on a supported system
  }
  return hex(md, len);
}

}  // namespace adapter
