// File: fngate/runtime/function.h
// Function: what a worker implements. Override the events you care about; the defaults accept
// the connection and do nothing.
//
//   class Echo final : public fngate::runtime::Function {
//    public:
//     absl::Status OnMessage(fngate::runtime::MessageContext& ctx) override {
//       ctx.Reply(ctx.payload());
//       return absl::OkStatus();
//     }
//   };
//
// Threads: handlers run on the gRPC server's thread pool, so calls for different connections
// run concurrently and a handler may block (on a database, or a GatewayClient call) without
// stalling the others. The gateway serialises the events of one connection: connect completes
// before the first message, messages come one at a time in arrival order (unless the function
// is configured to allow more in flight), disconnect comes last. State shared across
// connections (a cache) therefore needs a lock; rooms and users can live in the gateway instead
// (groups, BindUser), as functions/chat does.
//
// Lifetime: the Function must outlive the worker serving it (RunWorker() or Worker).
#pragma once

#include "absl/status/status.h"
#include "fngate/runtime/context.h"

namespace fngate::runtime {

class Function {
 public:
  virtual ~Function() = default;

  // A client wants to connect; it waits for this answer. Call ctx.Reject() to refuse with an
  // HTTP status. A non-OK return is a function error: the client gets HTTP 500.
  virtual absl::Status OnConnect(ConnectContext& ctx);

  // A whole message arrived. A non-OK return is a function error: its actions are dropped, the
  // gateway fires OnError with this status, and a raw client is closed with 1011.
  virtual absl::Status OnMessage(MessageContext& ctx);

  // The connection ended. A non-OK return is reported back to the gateway as a failed
  // disconnect call (it logs it and fires OnError); the connection is gone either way.
  virtual absl::Status OnDisconnect(DisconnectContext& ctx);

  // Another call of this connection failed (worker unreachable, deadline, function error).
  // Nothing can be answered, so it returns nothing.
  virtual void OnError(ErrorContext& ctx);
};

}  // namespace fngate::runtime
