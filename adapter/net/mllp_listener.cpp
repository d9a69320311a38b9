#include "net/mllp_listener.h"

#include <utility>  // before Asio: GCC 12 + Boost needs std::exchange declared

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <deque>

#include "common/log.h"
#include "mllp/frame_decoder.h"
#include "net/listener.h"
#include "net/tls.h"

namespace adapter::net {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// Frames waiting for their turn on one connection; reading pauses beyond this (backpressure).
constexpr std::size_t kMaxPendingFrames = 64;
// Cut-off frames one connection may send before it is treated as noise and disconnected.
constexpr int kMaxTruncatedFrames = 16;

tcp::socket& lowest(tcp::socket& s) {
  return s;
}
tcp::socket& lowest(ssl::stream<tcp::socket>& s) {
  return s.next_layer();
}

std::string peer_of(tcp::socket& s) {
  boost::system::error_code ec;
  const auto ep = s.remote_endpoint(ec);
  if (ec) return "unknown";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

struct Shared {
  app::MllpListenerConfig config;
  app::Intake& intake;
  app::MllpStats& stats;
};

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(std::shared_ptr<Shared> shared, Args&&... stream_args)
      : shared_(std::move(shared)),
        stream_(std::forward<Args>(stream_args)...),
        timer_(lowest(stream_).get_executor()),
        decoder_(shared_->config.max_frame_bytes) {
    peer_ = peer_of(lowest(stream_));
    shared_->stats.connections_active.fetch_add(1, std::memory_order_relaxed);
  }

  ~Session() { shared_->stats.connections_active.fetch_sub(1, std::memory_order_relaxed); }

  void start() {
    boost::system::error_code ec;
    lowest(stream_).set_option(tcp::no_delay(true), ec);  // ACK latency matters more than packets
    if constexpr (std::is_same_v<Stream, ssl::stream<tcp::socket>>) {
      deadline_ = Clock::now() + shared_->config.tls->handshake_timeout;
      arm_timer();
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](boost::system::error_code e) {
                                self->on_handshake(e);
                              });
    } else {
      do_read();
    }
  }

 private:
  void on_handshake(boost::system::error_code ec) {
    if (ec) {
      app::bump(shared_->stats.tls_handshake_failures);
      log::warn("mllp.tls_handshake_failed",
                {{"listener", shared_->config.name}, {"peer", peer_}, {"error", ec.message()}});
      return close();
    }
    do_read();
  }

  // One deadline for the whole connection: pushed forward by every read and write, ignored
  // while a message waits for its durable commit (that wait is ours, not the sender's).
  void arm_timer() {
    if (timer_armed_) return;
    timer_armed_ = true;
    timer_.expires_at(deadline_);
    timer_.async_wait([self = this->shared_from_this()](boost::system::error_code ec) {
      self->timer_armed_ = false;
      if (ec || self->closed_) return;
      self->on_deadline();
    });
  }

  void on_deadline() {
    if (Clock::now() < deadline_ || processing_) {
      if (processing_) deadline_ = Clock::now() + shared_->config.idle_timeout;
      return arm_timer();
    }
    if (!handshake_done()) {
      app::bump(shared_->stats.tls_handshake_failures);
      log::warn("mllp.tls_handshake_timeout",
                {{"listener", shared_->config.name}, {"peer", peer_}});
    } else {
      app::bump(shared_->stats.idle_timeouts);
      log::info("mllp.idle_timeout", {{"listener", shared_->config.name}, {"peer", peer_}});
      report_partial();
    }
    close();
  }

  bool handshake_done() const { return reading_started_; }

  void do_read() {
    reading_started_ = true;
    if (closed_ || reading_) return;
    reading_ = true;
    deadline_ = Clock::now() + shared_->config.idle_timeout;
    arm_timer();
    stream_.async_read_some(asio::buffer(rbuf_), [self = this->shared_from_this()](
                                                     boost::system::error_code ec, std::size_t n) {
      self->on_read(ec, n);
    });
  }

  void on_read(boost::system::error_code ec, std::size_t n) {
    reading_ = false;
    if (closed_) return;
    if (ec) {
      if (ec != asio::error::eof && ec != ssl::error::stream_truncated &&
          ec != asio::error::connection_reset) {
        app::bump(shared_->stats.read_errors);
        log::info("mllp.read_error",
                  {{"listener", shared_->config.name}, {"peer", peer_}, {"error", ec.message()}});
      }
      report_partial();
      peer_closed_ = true;
      if (!processing_) close();  // else close once the last ACK is written (or not)
      return;
    }
    std::vector<mllp::FrameEvent> events;
    const auto outside_before = decoder_.bytes_outside_frames();
    const auto no_cr_before = decoder_.frames_without_cr();
    decoder_.feed(std::string_view(rbuf_.data(), n), events);
    app::bump(shared_->stats.bytes_outside_frames,
              decoder_.bytes_outside_frames() - outside_before);
    app::bump(shared_->stats.frames_without_cr, decoder_.frames_without_cr() - no_cr_before);
    for (auto& e : events) {
      switch (e.kind) {
        case mllp::FrameEvent::Kind::frame:
          app::bump(shared_->stats.frames_received);
          pending_.push_back(std::move(e));
          break;
        case mllp::FrameEvent::Kind::truncated:
          keep_truncated(std::move(e.payload));
          break;
        case mllp::FrameEvent::Kind::oversize:
          app::bump(shared_->stats.frames_oversize);
          log::warn("mllp.frame_too_large", {{"listener", shared_->config.name},
                                             {"peer", peer_},
                                             {"max_frame_bytes", shared_->config.max_frame_bytes}});
          pending_.push_back(std::move(e));
          break;
      }
    }
    if (decoder_.bytes_outside_frames() > shared_->config.max_frame_bytes) {
      // A peer that only sends noise does not get to hold a connection forever.
      log::warn("mllp.noise_limit", {{"listener", shared_->config.name}, {"peer", peer_}});
      peer_closed_ = true;
    }
    if (!processing_) process_next();                          // may itself resume reading
    if (closed_ || peer_closed_ || decoder_.failed()) return;  // oversize: answer, then close
    if (pending_.size() < kMaxPendingFrames) do_read();
  }

  // The connection ended mid-frame: keep what arrived, answer nothing.
  void report_partial() {
    if (!decoder_.in_frame()) return;
    keep_truncated(decoder_.take_partial());
  }

  // A cut-off frame is counted, and kept for inspection when it holds anything. A peer that
  // keeps cutting frames off (a stream of VT bytes, say) would turn each into a stored row:
  // past kMaxTruncatedFrames on one connection it is treated as noise and disconnected.
  void keep_truncated(std::string partial) {
    app::bump(shared_->stats.frames_truncated);
    if (++truncated_frames_ > kMaxTruncatedFrames) {
      if (!peer_closed_)
        log::warn("mllp.noise_limit", {{"listener", shared_->config.name}, {"peer", peer_}});
      peer_closed_ = true;
      return;
    }
    if (partial.empty()) return;
    shared_->intake.submit_broken(inbound(std::move(partial)), Errc::truncated,
                                  [](const app::Receipt&) {});
  }

  app::Inbound inbound(std::string payload) {
    return app::Inbound{std::move(payload), peer_, app::now_us()};
  }

  void process_next() {
    if (pending_.empty()) {
      processing_ = false;
      if (peer_closed_) return close();
      if (!decoder_.failed()) do_read();
      return;
    }
    processing_ = true;
    mllp::FrameEvent e = std::move(pending_.front());
    pending_.pop_front();
    auto on_receipt = [self = this->shared_from_this()](app::Receipt r) {
      // The store calls back on its own thread: continue on this connection's strand.
      asio::post(lowest(self->stream_).get_executor(),
                 [self, r = std::move(r)]() mutable { self->write_receipt(std::move(r)); });
    };
    if (e.kind == mllp::FrameEvent::Kind::oversize) {
      shared_->intake.submit_broken(inbound(std::move(e.payload)), Errc::frame_too_large,
                                    on_receipt);
    } else {
      shared_->intake.submit(inbound(std::move(e.payload)), on_receipt);
    }
  }

  void write_receipt(const app::Receipt& r) {
    if (closed_) return;
    // A peer that half-closed may still read its ACK, so write it even after EOF.
    if (r.ack.empty()) {
      if (r.close) return close();
      return process_next();
    }
    wbuf_ = mllp::frame(r.ack);
    close_after_write_ = r.close;
    deadline_ = Clock::now() + shared_->config.idle_timeout;
    asio::async_write(stream_, asio::buffer(wbuf_),
                      [self = this->shared_from_this()](boost::system::error_code ec, std::size_t) {
                        self->on_write(ec);
                      });
  }

  void on_write(boost::system::error_code ec) {
    if (ec) {
      app::bump(shared_->stats.read_errors);
      return close();
    }
    app::bump(shared_->stats.acks_sent);
    if (close_after_write_) return close();
    process_next();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    timer_.cancel();
    lowest(stream_).shutdown(tcp::socket::shutdown_both, ec);
    lowest(stream_).close(ec);
  }

  std::shared_ptr<Shared> shared_;
  Stream stream_;
  asio::steady_timer timer_;
  Clock::time_point deadline_{};
  mllp::FrameDecoder decoder_;
  std::array<char, 16 * 1024> rbuf_{};  // (must persist between reads)
  std::deque<mllp::FrameEvent> pending_;
  std::string wbuf_;  // (must persist until the write completes)
  std::string peer_;
  int truncated_frames_ = 0;
  bool timer_armed_ = false;
  bool reading_ = false;
  bool reading_started_ = false;
  bool processing_ = false;  // a frame is with the intake/store, or its ACK is being written
  bool peer_closed_ = false;
  bool close_after_write_ = false;
  bool closed_ = false;
};

}  // namespace

MllpListener::MllpListener(std::shared_ptr<Listener> listener) : listener_(std::move(listener)) {}
MllpListener::~MllpListener() {  // NOLINT(bugprone-exception-escape): Asio members only throw on
                                 // allocation failure
  stop();
}

Result<std::unique_ptr<MllpListener>> MllpListener::start(asio::io_context& ioc,
                                                          const app::MllpListenerConfig& config,
                                                          app::Intake& intake,
                                                          app::MllpStats& stats) {
  std::shared_ptr<ssl::context> tls;
  if (config.tls) {
    auto ctx = make_server_tls_context(*config.tls);
    if (!ctx) return ctx.error();
    tls = std::move(*ctx);
  }
  auto listener = Listener::open(ioc, config.bind, config.port, "mllp", config.name);
  if (!listener) return listener.error();
  auto shared = std::make_shared<Shared>(Shared{config, intake, stats});
  const ConnectionLimit limit{config.max_connections, &stats.connections_active,
                              &stats.connections_accepted, &stats.connections_refused};
  (*listener)->start(
      [shared, tls](tcp::socket socket) {
        if (tls) {
          std::make_shared<Session<ssl::stream<tcp::socket>>>(shared, std::move(socket), *tls)
              ->start();
        } else {
          std::make_shared<Session<tcp::socket>>(shared, std::move(socket))->start();
        }
      },
      limit);
  return std::unique_ptr<MllpListener>(new MllpListener(std::move(*listener)));
}

std::uint16_t MllpListener::port() const {
  return listener_->port();
}

void MllpListener::stop() {
  if (listener_) listener_->stop();
}

}  // namespace adapter::net
