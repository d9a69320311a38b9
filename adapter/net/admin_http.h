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
//
// The endpoint runs on threads of its own (kThreads), never on the daemon's I/O threads: its
// handlers query the store, render metrics and load mappings, which takes milliseconds to
// seconds (a search over a large store), and an I/O thread held that long is an MLLP ACK or an
// HTTP answer held as long. With two threads, one long request leaves /healthz answering.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "app/config.h"
#include "common/result.h"

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
    std::function<Answer()> reload;
    // Everything else (app/admin_api.h): nothing when the path is not one of its own.
    std::function<std::optional<Answer>(std::string_view method, std::string_view target)> api;
  };

  static constexpr int kThreads = 2;

  // Binds, then serves on its own threads until stop(). Handlers may run on both at once.
  static Result<std::unique_ptr<AdminHttp>> start(const app::AdminConfig& config,
                                                  Handlers handlers);
  ~AdminHttp();  // NOLINT(bugprone-exception-escape)
  AdminHttp(const AdminHttp&) = delete;
  AdminHttp& operator=(const AdminHttp&) = delete;
  std::uint16_t port() const;
  // Waits for a handler running to finish, then closes the port: no handler is called after it
  // returns. port() is 0 from then on.
  void stop();

 private:
  struct Threads;  // the io_context and the threads that run it
  AdminHttp(std::unique_ptr<Threads> threads, std::shared_ptr<Listener> listener);
  std::unique_ptr<Threads> threads_;
  std::shared_ptr<Listener> listener_;  // on threads_'s io_context
};

}  // namespace adapter::net
