// File: gateway/admin_server.h
// AdminServer: plain HTTP on the admin port: GET /healthz (the process is up), /readyz (not
// draining, and every function has a worker connected), /metrics (Prometheus text).
// One request per connection; small, bounded requests only.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "gateway/gateway_state.h"

namespace fngate::gateway {

class AdminServer : public std::enable_shared_from_this<AdminServer> {
 public:
  AdminServer(boost::asio::io_context& io, boost::asio::ip::tcp::acceptor acceptor,
              GatewayState& state);
  void Start();
  void Stop();
  uint16_t port() const { return port_; }

 private:
  void Accept();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  GatewayState& state_;
  uint16_t port_;
};

}  // namespace fngate::gateway
