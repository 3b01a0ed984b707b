// File: fngate/runtime/gateway_client.h
// GatewayClient: push to and manage connections from anywhere (a handler, another thread, a
// cron job) through a gateway's control service (fngate.v1.GatewayControl,
// proto/fngate/v1/control.proto).
//
//   absl::StatusOr<std::unique_ptr<GatewayClient>> gateway =
//       GatewayClient::Create("127.0.0.1:8081");
//   if (!gateway.ok()) return gateway.status();
//   absl::StatusOr<SendResult> sent = (*gateway)->Send(To::Connection(id), Payload::Text("hi"));
//   (*gateway)->ForceLogout(To::User("alice"), R"({"why":"password changed"})");
//
// Inside a handler, use ctx.Gateway(): the client of the gateway that holds the connection.
//
//   Send / Close / Emit / ForceLogout     to any To (ids, users, groups, all; narrowed)
//   JoinGroups / LeaveGroups / BindUser   change the groups or identity of any To
//   GetConnection / ListConnections       the online table
//   SignUrl                               mint a signed client URL
//
// Calls are synchronous: each blocks the calling thread until the gateway answers or the
// deadline (GatewayClientOptions::deadline) passes. Every method is thread-safe; one client may
// be shared by any number of threads. Clients of the same address share one gRPC channel (one
// TCP connection), created on first use and kept for the life of the process.
//
// Errors are the gateway's gRPC status as absl::Status (same codes): UNAVAILABLE when the gateway
// cannot be reached, DEADLINE_EXCEEDED when it did not answer in time, INVALID_ARGUMENT naming a
// malformed field, NOT_FOUND from GetConnection for an unknown id, FAILED_PRECONDITION from
// SignUrl when the gateway has no signing key. Connections that are gone are not errors: calls
// that take a To list the named ids that were gone in their result. A call with an empty To
// returns an empty result without calling the gateway.
//
// Credentials (GatewayClientOptions::credentials): a gateway whose control port is not loopback
// asks for its control token, mutual TLS, or both; TLS also proves the gateway is the gateway.
// A call without valid credentials fails with UNAUTHENTICATED (token) or UNAVAILABLE (TLS).
#pragma once

#include <map>
#include <memory>
#include <optional>
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

// Emit's result: the same counts as a Send.
using EmitResult = SendResult;

// JoinGroups / LeaveGroups / BindUser.
struct ChangeResult {
  // Held connections the call addressed (one already in the state asked for counts too).
  int affected = 0;
  // Named ids the gateway does not hold.
  std::vector<std::string> gone_connection_ids;
};

// An identity change (BindUser). Fields that are set replace the connection's value (an empty
// string clears it); fields left unset keep it. Each metadata entry is merged into the
// connection's metadata; an empty value removes the key. At least one field or entry must be
// set (INVALID_ARGUMENT otherwise).
struct IdentityChange {
  std::optional<std::string> user_id;
  std::optional<std::string> app_id;
  std::optional<std::string> channel;
  std::optional<std::string> device_id;
  std::map<std::string, std::string> metadata;
};

// ListConnections filters (empty fields match everything) and paging.
struct ListOptions {
  std::string function;
  std::string user_id;
  std::string group;
  std::string app_id;
  std::string channel;
  // Rows per page: 1-1000; 0 means 100.
  int page_size = 0;
  // From the previous page's next_page_token; empty for the first page.
  std::string page_token;
};

// One page of the online table, ordered by connection id.
struct ConnectionPage {
  std::vector<v1::ConnectionInfo> connections;
  // Pass it as ListOptions::page_token for the next page; empty on the last page.
  std::string next_page_token;
};

struct SignUrlOptions {
  // Required: a function the gateway serves.
  std::string function;
  // Query parameters the URL carries; they are signed (changing one invalidates the URL).
  std::map<std::string, std::string> query;
  // Bound to the connection at connect, before the connect event (empty: none).
  std::string user_id;
  // Time to live, whole seconds (rounded up); zero: the gateway's default (1 hour). The
  // gateway caps it (signing.max_ttl_seconds).
  absl::Duration ttl = absl::ZeroDuration();
};

struct SignedUrl {
  // ws:// or wss:// URL on the gateway's public address.
  std::string url;
  absl::Time expires_at;
  // The id of the key that signed it.
  std::string key_id;
};

// ForceLogout(): the framework event VK's ws.forceLogout sends, and the close that follows it.
// fngatectl's force-logout uses the same values.
inline constexpr std::string_view kForceLogoutEvent = "forceLogout";
inline constexpr int kForceLogoutCloseCode = 1000;
inline constexpr std::string_view kForceLogoutCloseReason = "force logout";

// A pure interface (ForceLogout is a convenience over Emit), so code that pushes can be tested
// against a fake.
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

  // Sends the framework event `name` (1-64 bytes of letters, digits, _ - . :) with `data_json`
  // (a JSON value; empty means null) to every connection of `to`: envelope clients get an
  // `event` frame, raw clients the text {"type":"event","name":...,"data":...}. With
  // options.close, each is then closed with options.code and options.reason.
  virtual absl::StatusOr<EmitResult> Emit(const To& to, std::string_view name,
                                          std::string_view data_json,
                                          const EmitOptions& options) = 0;

  // Emit(kForceLogoutEvent, data_json), then close with kForceLogoutCloseCode (1000) and
  // kForceLogoutCloseReason ("force logout"): every device of To::User(id) is logged out.
  absl::StatusOr<EmitResult> ForceLogout(const To& to, std::string_view data_json = {});

  // Adds every connection of `to` to each of `groups` (at least one; INVALID_ARGUMENT for a
  // malformed name), or takes it out. Sends to a group see the change as soon as this returns.
  virtual absl::StatusOr<ChangeResult> JoinGroups(const To& to,
                                                  const std::vector<std::string>& groups) = 0;
  virtual absl::StatusOr<ChangeResult> LeaveGroups(const To& to,
                                                   const std::vector<std::string>& groups) = 0;

  // Changes the identity of every connection of `to`; their later events carry it, and
  // To::User / ListConnections see it as soon as this returns.
  virtual absl::StatusOr<ChangeResult> BindUser(const To& to, const IdentityChange& change) = 0;

  // The gateway's row for one connection; NOT_FOUND if it does not hold it.
  virtual absl::StatusOr<v1::ConnectionInfo> GetConnection(std::string_view connection_id) = 0;

  // One page of the online table. Every connection held through a whole listing appears in
  // exactly one page. INVALID_ARGUMENT for a page_size outside 0-1000 or a malformed group.
  virtual absl::StatusOr<ConnectionPage> ListConnections(const ListOptions& options) = 0;

  // A signed client URL (SPEC section 1). FAILED_PRECONDITION when the gateway has no signing
  // key; INVALID_ARGUMENT for an unknown function or a ttl the gateway does not allow.
  virtual absl::StatusOr<SignedUrl> SignUrl(const SignUrlOptions& options) = 0;

  // The "host:port" this client talks to.
  virtual const std::string& address() const = 0;
};

}  // namespace fngate::runtime
