// Blocking HTTP/1.1 exchanges over loopback for the listener tests (Boost.Beast): one request
// and its answer, on a connection of its own or on one the test keeps open.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdint>
#include <string>

namespace adapter::test {

struct Reply {
  unsigned status = 0;  // 0: the server closed the connection instead of answering
  std::string body;
};

struct Request {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string target;
  std::string bearer;  // the Authorization: Bearer token, if any
  std::string content_type;
  std::string body;
  bool keep_alive = true;
};

inline boost::asio::ip::tcp::socket connect_loopback(boost::asio::io_context& ioc,
                                                     std::uint16_t port) {
  boost::asio::ip::tcp::socket socket(ioc);
  socket.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  return socket;
}

// Sends `r` on `socket` and reads the answer (never hangs on a server that closes).
inline Reply exchange(boost::asio::ip::tcp::socket& socket, const Request& r) {
  namespace http = boost::beast::http;
  http::request<http::string_body> req(r.method, r.target, 11);
  req.set(http::field::host, "127.0.0.1");
  req.keep_alive(r.keep_alive);
  if (!r.bearer.empty()) req.set(http::field::authorization, "Bearer " + r.bearer);
  if (!r.content_type.empty()) req.set(http::field::content_type, r.content_type);
  req.body() = r.body;
  req.prepare_payload();
  http::write(socket, req);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  boost::beast::error_code ec;
  http::read(socket, buffer, res, ec);
  if (ec) return {};
  return {res.result_int(), res.body()};
}

// One request on a connection of its own, closed after the answer.
inline Reply exchange_once(std::uint16_t port, Request r) {
  boost::asio::io_context ioc;
  auto socket = connect_loopback(ioc, port);
  r.keep_alive = false;
  return exchange(socket, r);
}

}  // namespace adapter::test
