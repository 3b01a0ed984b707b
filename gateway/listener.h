// File: gateway/listener.h
// Listener: an accept loop. Each accepted socket gets a fresh strand (its handlers never run
// concurrently, without a lock), TCP_NODELAY, and is handed to `on_accept`. Accept errors
// (EMFILE) back off briefly instead of spinning. Used for the WebSocket and the admin ports.
//
// Threading: its handlers run on the acceptor's executor (Gateway's strand); Stop() must be
// called there too.
#pragma once

#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/status/statusor.h"
#include "gateway/config.h"
#include "gateway/gateway_state.h"

namespace fngate::gateway {

// Opens, binds and listens; errors name the address. The acceptor's handlers run on
// `executor`.
absl::StatusOr<boost::asio::ip::tcp::acceptor> BindAcceptor(
    const boost::asio::any_io_executor& executor, const HostPort& address);

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  using OnAccept = std::function<void(boost::asio::ip::tcp::socket)>;

  Listener(boost::asio::io_context& io, boost::asio::ip::tcp::acceptor acceptor,
           OnAccept on_accept);
  void Start();
  void Stop();
  uint16_t port() const { return port_; }

 private:
  void Accept();
  void Accepted(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
  const OnAccept on_accept_;
  const uint16_t port_;
};

// The WebSocket port's handler: a Session per socket, or HTTP 503 past max_connections.
Listener::OnAccept StartSessions(GatewayState& state);

}  // namespace fngate::gateway
