// File: fngate/runtime/gateway_client.h
// GatewayClient: push to connections from anywhere (a handler, another thread, a cron job)
// through a gateway's control service (fngate.v1.GatewayControl, proto/fngate/v1/control.proto).
//
//   absl::StatusOr<std::unique_ptr<GatewayClient>> gateway =
//       GatewayClient::Create("127.0.0.1:8081");
//   if (!gateway.ok()) return gateway.status();
//   absl::StatusOr<SendResult> sent = (*gateway)->Send(To::Connection(id), Payload::Text("hi"));
//
// Inside a handler, use ctx.Gateway(): the client of the gateway that holds the connection.
//
// Calls are synchronous: each blocks the calling thread until the gateway answers or the
// deadline (GatewayClientOptions::deadline) passes. Every method is thread-safe; one client may
// be shared by any number of threads. Clients of the same address share one gRPC channel (one
// TCP connection), created on first use and kept for the life of the process.
//
// Errors are the gateway's gRPC status as absl::Status (same codes): UNAVAILABLE when the gateway
// cannot be reached, DEADLINE_EXCEEDED when it did not answer in time, INVALID_ARGUMENT naming a
// malformed field, NOT_FOUND from GetConnection for an unknown id. Connections that are gone are
// not errors in Send/Close: they are listed in the result.
//
// Credentials (GatewayClientOptions::credentials): a gateway whose control port is not loopback
// asks for its control token, mutual TLS, or both; TLS also proves the gateway is the gateway.
// A call without valid credentials fails with UNAUTHENTICATED (token) or UNAVAILABLE (TLS).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fngate/runtime/payload.h"
#include "fngate/v1/control.pb.h"

namespace fngate::runtime {

// How a client proves itself to a gateway's control service, and checks that it talks to the
// gateway. All empty (default): plaintext, no token -- a loopback control port.
struct GatewayCredentials {
  // Sent with every call as the metadata `authorization: Bearer <token>` (the gateway's
  // control_token). A secret: the runtime never logs it.
  std::string token;
  // PEM file of the CA that signed the gateway's control certificate: TLS on when set.
  std::string tls_ca_file;
  // Our certificate and private key (PEM files), for mutual TLS. Both or neither.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Name expected in the gateway's certificate; empty: the host of the address.
  std::string tls_server_name;
};

struct GatewayClientOptions {
  // Deadline of each call, from the moment it starts.
  absl::Duration deadline = absl::Seconds(5);
  GatewayCredentials credentials;
};

struct SendResult {
  // Connections that took the message into their outbound queue.
  int delivered = 0;
  // Named ids the gateway does not hold (or that were closing).
  std::vector<std::string> gone_connection_ids;
  // Named ids whose outbound queue was full; the gateway applies its slow-consumer policy.
  std::vector<std::string> overflowed_connection_ids;
};

struct CloseResult {
  // Connections that were told to close.
  int closed = 0;
  std::vector<std::string> gone_connection_ids;
};

// A pure interface, so code that pushes can be tested against a fake.
class GatewayClient {
 public:
  // A client of the GatewayControl service at `address` ("host:port"). Does not connect yet:
  // the channel connects on the first call, so this fails only on an empty address or TLS
  // files that cannot be read (INVALID_ARGUMENT, naming the file). The returned client may
  // outlive every other runtime object.
  static absl::StatusOr<std::unique_ptr<GatewayClient>> Create(std::string_view address,
                                                               GatewayClientOptions options = {});

  virtual ~GatewayClient() = default;

  // Queues `payload` to every connection of `to`. An empty `to` sends nothing and returns an
  // empty result without calling the gateway.
  virtual absl::StatusOr<SendResult> Send(const To& to, Payload payload) = 0;

  // Closes every connection of `to` with a WebSocket close code (1000, 3000-4999, ...; 0 means
  // 1000) and a reason of at most 123 bytes, after what is already queued to it. An empty `to`
  // closes nothing and returns an empty result without calling the gateway.
  virtual absl::StatusOr<CloseResult> Close(const To& to, int code, std::string_view reason) = 0;

  // The gateway's row for one connection; NOT_FOUND if it does not hold it.
  virtual absl::StatusOr<v1::ConnectionInfo> GetConnection(std::string_view connection_id) = 0;

  // The "host:port" this client talks to.
  virtual const std::string& address() const = 0;
};

}  // namespace fngate::runtime
