// Where a credential comes from: a file (a Docker or Kubernetes secret, a file only the service
// user can read) or an environment variable. Never from the configuration file itself, and never
// into a log: errors name the file or variable, not the content.
//
//   Result<SecretSource> src = parse_secret_source("file:/run/secrets/ehr_client_secret");
//   Result<std::string> secret = read_secret(*src);   // at startup; an Error is a startup error
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace adapter::auth {

struct SecretSource {
  enum class Kind { file, env };
  Kind kind = Kind::file;
  std::string name;  // the path or the variable name

  // "file:<path>" or "env:<NAME>", for messages (the name, never the secret).
  std::string describe() const;
};

// Parses "file:<path>" or "env:<NAME>". A variable name is [A-Za-z_][A-Za-z0-9_]*.
Result<SecretSource> parse_secret_source(std::string_view reference);

// Reads the secret. Trailing CR/LF is removed (editors and `echo` add one; a secret never ends in a
// line break); nothing else is trimmed. A missing, unreadable, empty or oversized (> 64 KiB) source
// is an Errc::auth_secret_unavailable error.
//
// File permissions are not checked: Kubernetes mounts secrets 0644 and Docker 0444 by default, so
// refusing world-readable files would refuse the usual deployments. Protecting the file is the
// deployment's job; this reader only promises not to leak the content.
Result<std::string> read_secret(const SecretSource& source);
Result<std::string> read_secret_file(const std::string& path);
Result<std::string> read_secret_env(const std::string& name);

}  // namespace adapter::auth
