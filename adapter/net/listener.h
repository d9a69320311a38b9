// A listening TCP socket and its accept loop: what the MLLP, HTTP ingress and admin listeners
// share. Each of them decides what to do with an accepted connection (count it, refuse it over
// its limit, start a session); this decides how connections are accepted.
#pragma once

#include <utility>  // before Asio: GCC 12 + Boost needs std::exchange declared

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"

namespace adapter::net {

// At most `max` connections open at once (the listener's max_connections). A connection over
// it is closed at once, counted as refused and logged; one within it is counted as accepted.
// The listener's sessions keep `active` up to date.
struct ConnectionLimit {
  std::size_t max = 0;
  const std::atomic<std::int64_t>* active = nullptr;
  std::atomic<std::uint64_t>* accepted = nullptr;
  std::atomic<std::uint64_t>* refused = nullptr;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // Called on the accepted socket's own strand.
  using Accepted = std::function<void(boost::asio::ip::tcp::socket)>;

  // How long the loop waits after a failed accept before the next. Accept fails when the
  // process is out of file descriptors (EMFILE) or the kernel out of buffers, and then fails
  // again at once: retrying straight away would spin a core and log thousands of lines a
  // second while nothing can be accepted anyway. Connections wait in the backlog meanwhile.
  static constexpr std::chrono::milliseconds kRetryDelay{100};

  // Binds `bind`:`port` (0: any free port) and listens; nothing is accepted before start().
  // `kind` names the listener in errors and logs ("mllp", "http", "admin"), `name` is its
  // configured name.
  static Result<std::shared_ptr<Listener>> open(boost::asio::io_context& ioc,
                                                const std::string& bind, std::uint16_t port,
                                                std::string kind, std::string name);

  // Starts accepting. Without a limit every connection is handed over.
  void start(Accepted accepted, std::optional<ConnectionLimit> limit = std::nullopt);
  // Closes the socket; no connection is handed over after it. Any thread, more than once.
  void stop();
  std::uint16_t port() const { return port_; }
  std::uint64_t accept_failures() const { return accept_failures_; }  // for tests

  Listener(boost::asio::io_context& ioc, std::string kind, std::string name);

 private:
  void accept_next();
  void on_accept(const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;  // on a strand: accept, retry and stop never overlap
  boost::asio::steady_timer retry_;
  std::string kind_;
  std::string name_;
  Accepted accepted_;
  std::optional<ConnectionLimit> limit_;
  std::uint16_t port_ = 0;
  bool stopped_ = false;
  std::uint64_t accept_failures_ = 0;
};

}  // namespace adapter::net
