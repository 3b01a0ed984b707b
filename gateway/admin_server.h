// File: gateway/admin_server.h
// The admin port's HTTP: GET /healthz (the process is up), /readyz (not draining, and every
// function has a worker connected), /metrics (Prometheus text). One small request per
// connection, each on its own strand; a Listener does the accepting.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "gateway/gateway_state.h"
#include "gateway/listener.h"

namespace fngate::gateway {

// The Listener handler that answers one admin request per socket.
Listener::OnAccept ServeAdmin(GatewayState& state);

}  // namespace fngate::gateway
