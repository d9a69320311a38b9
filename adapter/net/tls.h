// Server-side TLS contexts for listeners (OpenSSL through Asio).
#pragma once

#include <memory>

#include "app/config.h"
#include "common/result.h"

namespace boost::asio::ssl {
class context;
}

namespace adapter::net {

// TLS 1.2 or newer, the listener's certificate chain and key, and, with client_ca_file, client
// certificates verified against that CA (required unless require_client_certificate is false).
Result<std::shared_ptr<boost::asio::ssl::context>> make_server_tls_context(
    const app::TlsConfig& cfg);

}  // namespace adapter::net
