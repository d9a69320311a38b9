// The operator's HTTP endpoint: GET /metrics (Prometheus text format) and GET /healthz. Bound to
// loopback by default; every read has a size cap and a deadline.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "app/config.h"
#include "common/result.h"

namespace boost::asio {
class io_context;
}

namespace adapter::net {

class AdminHttp {
 public:
  using MetricsFn = std::function<std::string()>;

  static Result<std::unique_ptr<AdminHttp>> start(boost::asio::io_context& ioc,
                                                  const app::AdminConfig& config,
                                                  MetricsFn metrics);
  ~AdminHttp();  // NOLINT(bugprone-exception-escape)
  std::uint16_t port() const;
  void stop();

  class Impl;

 private:
  explicit AdminHttp(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace adapter::net
