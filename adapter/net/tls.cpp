#include "net/tls.h"

#include <utility>  // before Asio: GCC 12 + Boost needs std::exchange declared

#include <boost/asio/ssl/context.hpp>

namespace adapter::net {

namespace ssl = boost::asio::ssl;

Result<std::shared_ptr<ssl::context>> make_server_tls_context(const app::TlsConfig& cfg) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  boost::system::error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use,
                   ec);
  auto fail = [&](const std::string& what, const std::string& file) {
    return make_error(Errc::bad_config, what + " '" + file + "': " + ec.message());
  };
  if (ctx->use_certificate_chain_file(cfg.certificate_file, ec)) {
    return fail("cannot load certificate chain", cfg.certificate_file);
  }
  if (ctx->use_private_key_file(cfg.private_key_file, ssl::context::pem, ec)) {
    return fail("cannot load private key", cfg.private_key_file);
  }
  if (!cfg.client_ca_file.empty()) {
    if (ctx->load_verify_file(cfg.client_ca_file, ec)) {
      return fail("cannot load client CA", cfg.client_ca_file);
    }
    ssl::verify_mode mode = ssl::verify_peer;
    if (cfg.require_client_certificate) mode |= ssl::verify_fail_if_no_peer_cert;
    ctx->set_verify_mode(mode, ec);
  }
  return ctx;
}

}  // namespace adapter::net
