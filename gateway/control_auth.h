// File: gateway/control_auth.h
// AuthorizeControlCall(): the credentials check every GatewayControl method makes before it
// looks at its request (SPEC sections 3 and 6: without valid credentials, UNAUTHENTICATED and
// nothing done).
//
//   if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return Finish(context, s);
//
// With a control token configured, a call must carry the metadata
// `authorization: Bearer <token>`; the token is compared in constant time. Mutual TLS
// (control_tls.client_ca_file) is checked by gRPC before any call reaches a method. Without a
// token every call that got through passes: the gateway refuses to start with neither a token
// nor mutual TLS unless the control port is loopback (config.cc). Thread-safe.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

namespace fngate::gateway {

class GatewayState;

grpc::Status AuthorizeControlCall(const grpc::ServerContextBase& context,
                                  const GatewayState& state);

}  // namespace fngate::gateway
