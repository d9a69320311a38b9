#include "net/listener.h"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "common/log.h"

namespace adapter::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Listener::Listener(asio::io_context& ioc, std::string kind, std::string name)
    : ioc_(ioc),
      acceptor_(asio::make_strand(ioc)),
      retry_(acceptor_.get_executor()),
      kind_(std::move(kind)),
      name_(std::move(name)) {}

Result<std::shared_ptr<Listener>> Listener::open(asio::io_context& ioc, const std::string& bind,
                                                 std::uint16_t port, std::string kind,
                                                 std::string name) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(bind, ec);
  if (ec) {
    return make_error(Errc::bad_config, "invalid " + kind + " bind address '" + bind + "'");
  }
  auto listener = std::make_shared<Listener>(ioc, std::move(kind), std::move(name));
  tcp::acceptor& acceptor = listener->acceptor_;
  const tcp::endpoint ep(address, port);
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error(Errc::io_error, "cannot listen on " + bind + ":" + std::to_string(port) +
                                          ": " + ec.message());
  }
  listener->port_ = acceptor.local_endpoint(ec).port();
  return listener;
}

void Listener::start(Accepted accepted, std::optional<ConnectionLimit> limit) {
  asio::post(acceptor_.get_executor(),
             [self = shared_from_this(), accepted = std::move(accepted), limit]() mutable {
               self->accepted_ = std::move(accepted);
               self->limit_ = limit;
               self->accept_next();
             });
}

void Listener::accept_next() {
  if (stopped_) return;
  // The new socket gets a strand of its own; this handler runs on the acceptor's (its I/O
  // object's executor), as do stop() and the retry timer.
  acceptor_.async_accept(
      asio::make_strand(ioc_),
      [self = shared_from_this()](const boost::system::error_code& ec, tcp::socket socket) {
        self->on_accept(ec, std::move(socket));
      });
}

void Listener::on_accept(const boost::system::error_code& ec, tcp::socket socket) {
  if (stopped_) return;
  if (!ec) {
    if (limit_ && static_cast<std::size_t>(limit_->active->load()) >= limit_->max) {
      limit_->refused->fetch_add(1, std::memory_order_relaxed);
      log::warn(kind_ + ".connection_refused",
                {{"listener", name_}, {"max_connections", limit_->max}});
      boost::system::error_code ignored;
      socket.close(ignored);
    } else {
      if (limit_) limit_->accepted->fetch_add(1, std::memory_order_relaxed);
      accepted_(std::move(socket));
    }
    accept_next();
    return;
  }
  ++accept_failures_;
  log::warn(kind_ + ".accept_failed",
            {{"listener", name_},
             {"error", ec.message()},
             {"retry_in_ms", static_cast<std::int64_t>(kRetryDelay.count())}});
  retry_.expires_after(kRetryDelay);
  retry_.async_wait([self = shared_from_this()](const boost::system::error_code& wait_ec) {
    if (!wait_ec) self->accept_next();
  });
}

void Listener::stop() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    self->stopped_ = true;
    self->retry_.cancel();
    boost::system::error_code ec;
    self->acceptor_.close(ec);
  });
}

}  // namespace adapter::net
