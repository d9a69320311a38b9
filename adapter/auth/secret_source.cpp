#include "auth/secret_source.h"

#include <openssl/crypto.h>

#include <cstdlib>
#include <fstream>

namespace adapter::auth {
namespace {

constexpr std::size_t kMaxSecretBytes = 64 * 1024;

bool valid_env_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && i > 0)) return false;
  }
  return true;
}

void trim_line_breaks(std::string& s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
}

// Overwrites a secret's bytes before the string is released (best effort: earlier copies made by
// std::string growth are out of reach).
void wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

Error unavailable(const std::string& what) {
  return make_error(Errc::auth_secret_unavailable, what);
}

}  // namespace

std::string SecretSource::describe() const {
  return (kind == Kind::file ? "file:" : "env:") + name;
}

Result<SecretSource> parse_secret_source(std::string_view reference) {
  constexpr std::string_view kFile = "file:";
  constexpr std::string_view kEnv = "env:";
  if (reference.substr(0, kFile.size()) == kFile) {
    std::string path(reference.substr(kFile.size()));
    if (path.empty()) return make_error(Errc::bad_config, "'file:' must be followed by a path");
    return SecretSource{SecretSource::Kind::file, std::move(path)};
  }
  if (reference.substr(0, kEnv.size()) == kEnv) {
    std::string name(reference.substr(kEnv.size()));
    if (!valid_env_name(name)) {
      return make_error(Errc::bad_config, "'env:' must be followed by a variable name");
    }
    return SecretSource{SecretSource::Kind::env, std::move(name)};
  }
  // The reference itself is not quoted: a secret pasted here by mistake must not reach a log.
  return make_error(Errc::bad_config,
                    "a secret must be given as file:<path> or env:<NAME>, not inline");
}

Result<std::string> read_secret(const SecretSource& source) {
  return source.kind == SecretSource::Kind::file ? read_secret_file(source.name)
                                                 : read_secret_env(source.name);
}

Result<std::string> read_secret_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return unavailable("cannot read secret file '" + path + "'");
  std::string secret;
  char buffer[4096];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    secret.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (secret.size() > kMaxSecretBytes) {
      wipe(secret);
      OPENSSL_cleanse(buffer, sizeof buffer);
      return unavailable("secret file '" + path + "' is larger than 64 KiB");
    }
  }
  OPENSSL_cleanse(buffer, sizeof buffer);
  if (in.bad()) {
    wipe(secret);
    return unavailable("cannot read secret file '" + path + "'");
  }
  trim_line_breaks(secret);
  if (secret.empty()) return unavailable("secret file '" + path + "' is empty");
  return secret;
}

Result<std::string> read_secret_env(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return unavailable("environment variable " + name + " is not set");
  std::string secret(value);
  if (secret.size() > kMaxSecretBytes) {
    wipe(secret);
    return unavailable("environment variable " + name + " is larger than 64 KiB");
  }
  trim_line_breaks(secret);
  if (secret.empty()) return unavailable("environment variable " + name + " is empty");
  return secret;
}

}  // namespace adapter::auth
