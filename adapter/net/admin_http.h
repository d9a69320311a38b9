// The operator's HTTP endpoint:
//   GET  /metrics   Prometheus text format
//   GET  /healthz   200 while the process serves requests (alive)
//   GET  /readyz    200 when it can take work (store writable, not draining, no destination's
//                   circuit open), else 503 with the reasons
//   the administration API of app/admin_api.h (messages, replay, dead letters)
//   POST /reload    reloads the mappings (and the mapping configuration); 200, or 422 with every
//                   error while the old set keeps running
// Bound to loopback by default; with admin.token set, every request needs
// "Authorization: Bearer <token>" (and a non-loopback bind requires a token). Every read has a
// size cap and a deadline.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "app/config.h"
#include "common/result.h"

namespace boost::asio {
class io_context;
}

namespace adapter::net {

class Listener;  // net/listener.h

class AdminHttp {
 public:
  struct Answer {
    unsigned status = 200;
    std::string content_type = "application/json";
    std::string body;
  };
  struct Handlers {
    std::function<std::string()> metrics;
    std::function<Answer()> ready;
    std::function<Answer()> reload;  // runs on an I/O thread: loading takes milliseconds
    // Everything else (app/admin_api.h): nothing when the path is not one of its own.
    std::function<std::optional<Answer>(std::string_view method, std::string_view target)> api;
  };

  static Result<std::unique_ptr<AdminHttp>> start(boost::asio::io_context& ioc,
                                                  const app::AdminConfig& config,
                                                  Handlers handlers);
  ~AdminHttp();  // NOLINT(bugprone-exception-escape)
  std::uint16_t port() const;
  void stop();

 private:
  explicit AdminHttp(std::shared_ptr<Listener> listener);
  std::shared_ptr<Listener> listener_;
};

}  // namespace adapter::net
