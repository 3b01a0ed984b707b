// File: fngate/runtime/context.h
// The per-call contexts a Function's handlers receive: what the gateway knows about the
// connection, and the actions the reply carries back.
//
//   Context            every event: connection details, request id, deadline, Gateway()
//   ReplyContext       connect and message: Reply, Send, Emit, Close, Join, Leave, BindUser,
//                      SetAppId / SetChannel / SetDeviceId / SetMetadata (actions in the reply)
//   ConnectContext     + Reject, AcceptSubprotocol
//   MessageContext     + the message (payload, sequence)
//   DisconnectContext  + close code, reason, who closed
//   ErrorContext       + which event failed, and how
//
// Actions are collected while the handler runs and travel in the call's reply, in the order they
// were made; nothing reaches the client before the handler returns OK. When the handler returns
// an error status the reply, and every action in it, is dropped.
//
// Lifetime and threads: the runtime creates a context for one handler call; it (and every
// reference it returns) is valid until the handler returns. Copy what you need to keep. Use a
// context only from the thread running the handler. Gateway() is the exception: the client it
// returns lives as long as the process and may be used from any thread.
//
// Tests of a Function may build contexts themselves over protos they own (see the constructors)
// and inspect the response protos after calling the handler.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "fngate/runtime/gateway_client.h"
#include "fngate/runtime/payload.h"
#include "fngate/v1/events.pb.h"

namespace fngate::runtime {

using StringMap = google::protobuf::Map<std::string, std::string>;
using StringList = google::protobuf::RepeatedPtrField<std::string>;

// What the runtime knows about a call besides the event itself.
struct CallInfo {
  // When the gateway stops waiting for the reply.
  absl::Time deadline = absl::InfiniteFuture();
  // Gateway used by Context::Gateway() when the event names none (the worker's --gateway flag).
  std::string default_gateway;
};

// "CLIENT", "FUNCTION", ..., "ERROR"; "UNSPECIFIED" for values this runtime does not know.
std::string_view ClosedByName(v1::ClosedBy closed_by);
// "connect", "message", "disconnect"; "unspecified" for anything else.
std::string_view EventKindName(v1::EventKind kind);

class Context {
 public:
  Context(const v1::ConnectionContext& connection, const std::string& request_id,
          const CallInfo& call);
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Unguessable id of the connection; address it with To::Connection(id).
  const std::string& connection_id() const { return connection_.connection_id(); }
  // The function the connection belongs to (first path segment) and the full path ("/chat").
  const std::string& function() const { return connection_.function(); }
  const std::string& path() const { return connection_.path(); }
  // Query parameters of the URL, percent-decoded.
  const StringMap& query() const { return connection_.query(); }
  // One query parameter, or `fallback` when the URL has none of that name.
  std::string QueryParam(std::string_view key, std::string_view fallback = {}) const;
  // Request headers the gateway forwards (keys lower case), and one of them ("" if absent).
  const StringMap& headers() const { return connection_.headers(); }
  std::string Header(std::string_view lower_case_key) const;
  // The client's "ip:port".
  const std::string& client_address() const { return connection_.client_address(); }
  // The WebSocket subprotocol in use; empty for none (and always empty during connect).
  const std::string& subprotocol() const { return connection_.subprotocol(); }
  // The user bound by an earlier reply, a control call or a signed URL ("" if none). BindUser()
  // in this call does not change it.
  const std::string& user_id() const { return connection_.user_id(); }
  // App id, channel and device id set by earlier replies or control calls ("" if none).
  const std::string& app_id() const { return connection_.app_id(); }
  const std::string& channel() const { return connection_.channel(); }
  const std::string& device_id() const { return connection_.device_id(); }
  // Metadata set by earlier replies, and one value ("" if absent).
  const StringMap& metadata() const { return connection_.metadata(); }
  std::string MetadataValue(std::string_view key) const;
  // Groups the connection belongs to.
  const StringList& groups() const { return connection_.groups(); }
  // When the gateway accepted the TCP connection.
  absl::Time connected_at() const;
  // Unique per event; the gateway logs it too, so quote it when logging.
  const std::string& request_id() const { return request_id_; }
  // When the gateway stops waiting for this call's reply.
  absl::Time deadline() const { return call_.deadline; }
  // Everything the gateway sent about the connection.
  const v1::ConnectionContext& connection() const { return connection_; }

  // The control service of the gateway that holds this connection (the event's `gateway`
  // field, else the worker's --gateway). Cached per address for the life of the process: keep
  // the reference, use it from any thread. When no address is known, every call of the client
  // fails with FAILED_PRECONDITION.
  GatewayClient& Gateway() const;

 protected:
  ~Context() = default;

 private:
  const v1::ConnectionContext& connection_;
  const std::string& request_id_;
  const CallInfo call_;
};

// Actions a connect or message reply may carry. They run in the order they were made; in a
// connect reply they run once the connection is open (first messages, for example), after the
// identity and groups the connect reply sets.
//
// "This connection" actions come in two forms. In a message reply each one is an action of the
// reply. In a connect reply the identity setters and Join/Leave of this connection fill the
// connect response instead (ConnectResponse user_id, app_id, channel, device_id, metadata,
// groups), which the gateway applies before the connection enters the online table; there an
// empty value changes nothing.
class ReplyContext : public Context {
 public:
  // Sends a text / binary message to this connection.
  void Reply(std::string text);
  void ReplyBinary(std::string bytes);
  void Reply(Payload payload);
  // Sends `payload` to the connections of `to` (this one only if `to` includes it). The
  // gateway serialises a batch once. An empty `to` does nothing. Gone ids are skipped silently;
  // use Gateway().Send() to learn which ones were gone.
  void Send(const To& to, Payload payload);

  // Sends the framework event `name` (1-64 bytes of letters, digits, _ - . :) with `data_json`
  // (a JSON value; empty means null) to this connection / to the connections of `to`, each
  // closed after it when options.close (see GatewayClient::Emit). An empty `to` does nothing.
  void Emit(std::string_view name, std::string data_json, const EmitOptions& options = {});
  void Emit(const To& to, std::string_view name, std::string data_json,
            const EmitOptions& options = {});

  // Closes this connection / the connections of `to` with `code` (1000, 3000-4999, ...) and
  // `reason`, after the messages queued before. A reason longer than 123 bytes is cut at a
  // UTF-8 character boundary. An empty `to` does nothing.
  void Close(int code = 1000, std::string_view reason = {});
  void Close(const To& to, int code = 1000, std::string_view reason = {});

  // Adds this connection / the connections of `to` to `group` (1-128 bytes of letters, digits
  // and ". _ - : @ /"; the gateway ignores a malformed name and logs it), or takes them out.
  // An empty `to` does nothing.
  void Join(std::string group);
  void Leave(std::string group);
  void Join(const To& to, std::string group);
  void Leave(const To& to, std::string group);

  // Binds a user id to this connection: later events carry it in user_id(), and
  // To::User(user_id) reaches the connection. In a message reply an empty id unbinds.
  void BindUser(std::string user_id);
  // The rest of this connection's identity: app id, channel, device id (later events carry
  // them; To narrowing and ListConnections filter on app id and channel), and string metadata
  // (later events carry it in metadata(); in a message reply an empty value removes the key).
  void SetAppId(std::string app_id);
  void SetChannel(std::string channel);
  void SetDeviceId(std::string device_id);
  void SetMetadata(std::string key, std::string value);
  // Changes the identity of the connections of `to` (see IdentityChange). An empty `to` or an
  // empty change does nothing.
  void BindUser(const To& to, const IdentityChange& change);

 protected:
  // `connect` is the connect response whose fields take this connection's identity and groups;
  // null in a message reply, where they become actions.
  ReplyContext(const v1::ConnectionContext& connection, const std::string& request_id,
               const CallInfo& call, google::protobuf::RepeatedPtrField<v1::Action>& actions,
               v1::ConnectResponse* connect);
  ~ReplyContext() = default;

 private:
  // The identity of this connection's trailing Bind action, added when the last action is not
  // one (consecutive setters share one action; order against other actions is kept).
  v1::Identity& SelfIdentity();
  void ChangeGroups(const To* to, std::string group, bool join);

  google::protobuf::RepeatedPtrField<v1::Action>& actions_;
  v1::ConnectResponse* const connect_;
};

// OnConnect: the handshake request was read and checked, and waits for this reply. Returning OK
// without Reject() accepts the connection.
class ConnectContext final : public ReplyContext {
 public:
  ConnectContext(const v1::ConnectEvent& event, v1::ConnectResponse& response,
                 const CallInfo& call = {});

  // Subprotocols the client offered, in its order.
  const StringList& offered_subprotocols() const { return event_.subprotocols(); }

  // Refuses the connection: the client gets HTTP `http_status` (400-599) with `reason`. Actions
  // and bindings of this reply are then ignored.
  void Reject(int http_status, std::string_view reason);
  bool rejected() const { return response_.has_reject(); }
  // Answers the handshake with subprotocol `name`. Returns false, and changes nothing, when the
  // client did not offer it.
  bool AcceptSubprotocol(std::string_view name);

  const v1::ConnectEvent& event() const { return event_; }

 private:
  const v1::ConnectEvent& event_;
  v1::ConnectResponse& response_;
};

// OnMessage: one whole message from the client, in arrival order.
class MessageContext final : public ReplyContext {
 public:
  MessageContext(const v1::MessageEvent& event, v1::MessageResponse& response,
                 const CallInfo& call = {});

  bool is_binary() const { return event_.payload().has_binary(); }
  bool is_text() const { return !is_binary(); }
  // A text message the gateway parsed as JSON (envelope clients' `data`); is_text() too.
  bool is_json() const { return event_.payload().has_json(); }
  // The message body: UTF-8 text (JSON text for is_json()) or raw bytes.
  const std::string& data() const;
  // A copy of the message as a Payload (same kind), e.g. to echo it.
  Payload payload() const;
  // 1 for the connection's first message, then 2, 3, ...
  uint64_t sequence() const { return event_.sequence(); }

  const v1::MessageEvent& event() const { return event_; }

 private:
  const v1::MessageEvent& event_;
};

// OnDisconnect: the connection ended. Exactly once per accepted connection, after every other
// event of it. The connection is gone; pushes to it report it as gone.
class DisconnectContext final : public Context {
 public:
  DisconnectContext(const v1::DisconnectEvent& event, const CallInfo& call = {});

  // The close code sent or received; 1006 when the connection broke without one.
  int close_code() const { return event_.close_code(); }
  const std::string& close_reason() const { return event_.close_reason(); }
  // Who ended it; ClosedByName() gives "CLIENT", "FUNCTION", ...
  v1::ClosedBy closed_by() const { return event_.closed_by(); }

  const v1::DisconnectEvent& event() const { return event_; }

 private:
  const v1::DisconnectEvent& event_;
};

// OnError: the gateway could not complete another event call of this connection.
class ErrorContext final : public Context {
 public:
  ErrorContext(const v1::ErrorEvent& event, const CallInfo& call = {});

  // Which event failed (EventKindName() gives "connect", "message", ...), and its request id.
  v1::EventKind failed_event() const { return event_.failed_event(); }
  const std::string& failed_request_id() const { return event_.failed_request_id(); }
  // How the call failed: UNAVAILABLE (no worker), DEADLINE_EXCEEDED, or what the function
  // returned.
  absl::StatusCode code() const { return static_cast<absl::StatusCode>(event_.code()); }
  const std::string& message() const { return event_.message(); }
  absl::Status error() const { return absl::Status(code(), message()); }
  // For a failed message event: its sequence number (0 otherwise).
  uint64_t sequence() const { return event_.sequence(); }

  const v1::ErrorEvent& event() const { return event_; }

 private:
  const v1::ErrorEvent& event_;
};

}  // namespace fngate::runtime
