// SHA-256 (OpenSSL EVP) for content hashes: duplicate detection and Provenance.
#pragma once

#include <string>
#include <string_view>

namespace adapter {

// Incremental hasher; feed pieces, then take the lowercase hex digest.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view data);
  std::string hex_digest();  // finishes the hash; the object must not be updated afterwards

 private:
  void* ctx_;  // EVP_MD_CTX*, kept opaque so OpenSSL headers stay out of this header
};

std::string sha256_hex(std::string_view data);

}  // namespace adapter
