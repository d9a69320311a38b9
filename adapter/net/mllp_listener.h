// The MLLP listener: accepts TCP (optionally TLS) connections and runs one session per
// connection. A session frames bytes (mllp::FrameDecoder), hands each frame to the Intake, and
// writes back the acknowledgment it receives once the message is durable, in frame order.
//
// Every read has a size cap (max_frame_bytes) and a deadline (idle_timeout); a TLS handshake
// has its own deadline. Sessions run on a strand each; the listener object is used from the
// thread that owns it (start/stop).
#pragma once

#include <cstdint>
#include <memory>

#include "app/config.h"
#include "app/intake.h"
#include "app/stats.h"
#include "common/result.h"

namespace boost::asio {
class io_context;
}

namespace adapter::net {

class Listener;  // net/listener.h

class MllpListener {
 public:
  // Binds and starts accepting; a port in use or a bad TLS setup is an error value.
  // `intake` and `stats` must outlive every session, not only the listener: a session lives on
  // in the store's pending commit callbacks and in the io_context's queued handlers, so close the
  // store and destroy the io_context first (main.cpp does).
  static Result<std::unique_ptr<MllpListener>> start(boost::asio::io_context& ioc,
                                                     const app::MllpListenerConfig& config,
                                                     app::Intake& intake, app::MllpStats& stats);
  ~MllpListener();  // NOLINT(bugprone-exception-escape)

  std::uint16_t port() const;  // the bound port (useful with port 0)
  void stop();                 // stops accepting; open sessions finish their current exchange

 private:
  explicit MllpListener(std::shared_ptr<Listener> listener);
  std::shared_ptr<Listener> listener_;
};

}  // namespace adapter::net
