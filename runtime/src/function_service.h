// File: runtime/src/function_service.h
// FunctionServiceImpl: the gRPC FunctionService a worker serves, adapting each unary event call
// to the user's Function (sync server API: a handler may block; calls run concurrently on
// gRPC's thread pool). Also writes the `EVENT ...` lines of --log_events.
//
// Also serves the batched Events stream: each batch is handled in order on the stream's own
// thread and answered with one reply batch, reusing the unary handlers.
//
// Thread-safe (holds only immutable state). The Function must outlive it, and it must outlive
// the grpc::Server it is registered with.
#pragma once

#include <string>

#include "fngate/runtime/function.h"
#include "fngate/v1/function.grpc.pb.h"

namespace fngate::runtime {

class FunctionServiceImpl final : public v1::FunctionService::Service {
 public:
  FunctionServiceImpl(Function& function, bool log_events, std::string default_gateway);

  // v1::FunctionService::Service
  grpc::Status OnConnect(grpc::ServerContext* context, const v1::ConnectEvent* event,
                         v1::ConnectResponse* response) override;
  grpc::Status OnMessage(grpc::ServerContext* context, const v1::MessageEvent* event,
                         v1::MessageResponse* response) override;
  grpc::Status OnDisconnect(grpc::ServerContext* context, const v1::DisconnectEvent* event,
                            v1::DisconnectResponse* response) override;
  grpc::Status OnError(grpc::ServerContext* context, const v1::ErrorEvent* event,
                       v1::ErrorResponse* response) override;
  grpc::Status Events(grpc::ServerContext* context,
                      grpc::ServerReaderWriter<v1::ReplyBatch, v1::EventBatch>* stream) override;

 private:
  CallInfo MakeCallInfo(const grpc::ServerContext& context) const;

  Function& function_;
  const bool log_events_;
  const std::string default_gateway_;
};

}  // namespace fngate::runtime
