// File: runtime/src/function_service.h
// FunctionServiceImpl: the gRPC FunctionService a worker serves, adapting each unary event call
// to the user's Function (sync server API: a handler may block; calls run concurrently on
// gRPC's thread pool). Also writes the `EVENT ...` lines of --log_events.
//
// Also serves the batched Events stream, on the completion-queue API with one thread of its
// own (Serve): one batch per stream at a time is handled in order, on `handlers` (or inline on
// that thread when null), with the same handler code as the unary methods; replies that finish
// while a write is on the wire go out together in the next one.
//
// Thread-safe (holds only immutable state). The Function must outlive it, and it must outlive
// the grpc::Server it is registered with.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/completion_queue.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "common/completion_queue_thread.h"
#include "fngate/runtime/function.h"
#include "fngate/v1/function.grpc.pb.h"
#include "runtime/src/handler_pool.h"

namespace fngate::runtime {

class EventsStream;  // function_service.cc

class FunctionServiceImpl final
    : public v1::FunctionService::WithAsyncMethod_Events<v1::FunctionService::Service> {
 public:
  // `handlers` may be null (stream batches run inline on the events thread, unary calls on
  // gRPC's sync threads); it must outlive the server.
  FunctionServiceImpl(Function& function, bool log_events, std::string default_gateway,
                      HandlerPool* handlers);
  ~FunctionServiceImpl() override;

  // Starts serving Events streams from `cq` (the builder's, added for this service), on a
  // thread of their own. Call once, after the server started.
  void Serve(std::unique_ptr<grpc::ServerCompletionQueue> cq);
  // Ends that thread; call after the server's Shutdown returned. Waits until every stream
  // has ended (their handlers returned).
  void StopStreams();

  // v1::FunctionService::Service
  grpc::Status OnConnect(grpc::ServerContext* context, const v1::ConnectEvent* event,
                         v1::ConnectResponse* response) override;
  grpc::Status OnMessage(grpc::ServerContext* context, const v1::MessageEvent* event,
                         v1::MessageResponse* response) override;
  grpc::Status OnDisconnect(grpc::ServerContext* context, const v1::DisconnectEvent* event,
                            v1::DisconnectResponse* response) override;
  grpc::Status OnError(grpc::ServerContext* context, const v1::ErrorEvent* event,
                       v1::ErrorResponse* response) override;

  // Handles every event of `batch`, in order, appending one reply each to `replies`.
  void HandleBatch(v1::EventBatch& batch, v1::ReplyBatch& replies);
  HandlerPool* handlers() const { return handlers_; }

  // Tells every open Events stream that this worker is draining (ReplyBatch.draining), so
  // gateways send their new events elsewhere while what they already sent is still handled.
  void StartDrain() ABSL_LOCKS_EXCLUDED(streams_mu_);
  // Called by each stream as it starts and ends.
  void AddStream(EventsStream* stream) ABSL_LOCKS_EXCLUDED(streams_mu_);
  void RemoveStream(EventsStream* stream) ABSL_LOCKS_EXCLUDED(streams_mu_);
  // Asks for the next Events call (each accepted stream asks for the one after it).
  void RequestNext();
  // Every EventsStream object, from its construction (the request for a call) to its deletion:
  // StopStreams waits for none to be left.
  void StreamBorn() ABSL_LOCKS_EXCLUDED(streams_mu_);
  void StreamGone() ABSL_LOCKS_EXCLUDED(streams_mu_);

 private:
  CallInfo MakeCallInfo(std::chrono::system_clock::time_point deadline) const;
  grpc::Status HandleConnect(const CallInfo& call, const v1::ConnectEvent& event,
                             v1::ConnectResponse& response);
  grpc::Status HandleMessage(const CallInfo& call, const v1::MessageEvent& event,
                             v1::MessageResponse& response);
  grpc::Status HandleDisconnect(const CallInfo& call, const v1::DisconnectEvent& event);
  grpc::Status HandleError(const CallInfo& call, const v1::ErrorEvent& event);

  Function& function_;
  const bool log_events_;
  const std::string default_gateway_;
  HandlerPool* const handlers_;
  absl::Mutex streams_mu_;
  grpc::ServerCompletionQueue* cq_ = nullptr;  // events_'s queue, as the server's.
  std::unique_ptr<CompletionQueueThread> events_;
  absl::flat_hash_set<EventsStream*> streams_ ABSL_GUARDED_BY(streams_mu_);
  bool draining_ ABSL_GUARDED_BY(streams_mu_) = false;
  int alive_ ABSL_GUARDED_BY(streams_mu_) = 0;
};

}  // namespace fngate::runtime
