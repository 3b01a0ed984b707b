// File: gateway/listener.h
// Listener: accepts TCP connections, each onto a fresh strand, and starts a Session for it.
// Past max_connections it answers HTTP 503 itself and closes.
//
// Threading: its own handlers run on the io_context; Stop() must be called on it too (it is
// posted by Gateway).
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/status/statusor.h"
#include "gateway/config.h"
#include "gateway/gateway_state.h"

namespace fngate::gateway {

// Opens, binds and listens; errors name the address.
absl::StatusOr<boost::asio::ip::tcp::acceptor> BindAcceptor(boost::asio::io_context& io,
                                                             const HostPort& address);

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(boost::asio::io_context& io, boost::asio::ip::tcp::acceptor acceptor,
           GatewayState& state);
  void Start();
  void Stop();
  uint16_t port() const { return port_; }

 private:
  void Accept();
  void OnAccept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
  GatewayState& state_;
  uint16_t port_;
};

}  // namespace fngate::gateway
