// File: gateway/function_client.h
// FunctionClient: the gateway's side of one function's FunctionService. It owns the gRPC
// channel to the function's workers (round-robin over every address the target resolves to)
// and delivers each event with its event kind's deadline, by one of two transports:
// - stream (default when the workers serve it): batched on a few long-lived Events streams
//   (EventStreamPool), the fast path;
// - unary: one OnConnect/OnMessage/... call per event, the contract every worker in any
//   language implements. `auto` starts with streams and falls back for good on UNIMPLEMENTED.
//
// Every method returns at once; `done` runs later on a gRPC thread, exactly once, with the
// call's status and the worker's reply. Callers hop to their own executor from there.
//
// Faults, the rules (SPEC sections 2 and 6):
// - Each event kind has its deadline (DeadlineSettings), enforced on both transports: the gRPC
//   deadline of a unary call, the pool's sweep on streams; the worker is told it too.
// - An event no worker took waits for one, until its deadline: unary calls are wait_for_ready
//   (gRPC holds them while no worker is connected, and transparently retries a stream a worker
//   refused), the pool keeps events unsent until a worker takes a stream. Failing that, the
//   event fails UNAVAILABLE ("no worker"), not DEADLINE_EXCEEDED.
// - An event a worker took is never repeated, except a disconnect event: losing one costs the
//   function its bookkeeping for good, so a disconnect that fails UNAVAILABLE (no worker, the
//   stream or connection broke before the worker confirmed it, or the worker said it was
//   unavailable) is sent again with backoff (50 ms doubling to 1 s) until its deadline, with
//   the same request id, so a worker can tell a repeat. One that is still not confirmed then
//   is logged with its connection id and counted in fngate_disconnects_lost_total.
// - A replica that keeps failing calls is ejected for a while: on streams by the pool (see
//   EventStreamPool), for unary calls by gRPC's outlier detection (failure percentage over
//   1 s windows, at most half the replicas, never with fewer than two replicas).
//
// Thread-safe. Shutdown(): cancels the calls still in flight and waits for their callbacks, so
// nothing calls back into the gateway after it returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include <grpcpp/channel.h>
#include <grpcpp/support/status.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "fngate/v1/function.grpc.pb.h"
#include "gateway/config.h"
#include "gateway/event_stream_pool.h"
#include "gateway/metrics.h"

namespace fngate::gateway {

class FunctionClient {
 public:
  template <typename Response>
  using Done = absl::AnyInvocable<void(const grpc::Status&, Response&)>;

  // `defer` runs a task on the io threads after what is queued there (see EventStreamPool).
  // `tls`: TLS (or mutual TLS) to the workers, its files already read (config.h).
  // `stream_cq`: the queue the Events streams complete on (a CompletionQueueThread's, which
  // must outlive this).
  FunctionClient(const FunctionSettings& function, const DeadlineSettings& deadlines,
                 uint64_t max_message_bytes, FunctionMetrics& metrics,
                 grpc::CompletionQueue* stream_cq, EventStreamPool::Defer defer = nullptr,
                 const ClientTlsSettings& tls = {});
  ~FunctionClient();
  FunctionClient(const FunctionClient&) = delete;
  FunctionClient& operator=(const FunctionClient&) = delete;

  void OnConnect(v1::ConnectEvent event, Done<v1::ConnectResponse> done);
  void OnMessage(v1::MessageEvent event, Done<v1::MessageResponse> done);
  void OnDisconnect(v1::DisconnectEvent event, Done<v1::DisconnectResponse> done);
  void OnError(v1::ErrorEvent event, Done<v1::ErrorResponse> done);

  // True when at least one worker is connected; asks the channel to connect if it is idle.
  bool Reachable();

  // Cancels what is in flight and waits (up to `wait`) until every callback has run.
  void Shutdown(std::chrono::milliseconds wait);

  const FunctionSettings& settings() const { return function_; }

 private:
  template <typename Request, typename Response>
  struct UnaryCall;
  struct Redelivery;
  using StreamDone = EventStreamPool::Done;

  // Both transports meet here: `event` holds one event, `done` gets the reply as a StreamReply.
  void Call(EventKind kind, const std::string& connection_id, v1::StreamEvent event,
            StreamDone done);
  // One attempt on the function's transport.
  void Send(size_t key, v1::StreamEvent event, std::chrono::system_clock::time_point deadline,
            StreamDone done);
  // A disconnect event's attempts (see the rules above).
  void Redeliver(std::shared_ptr<Redelivery> r);
  bool ScheduleRedelivery(const std::shared_ptr<Redelivery>& r,
                          std::chrono::system_clock::time_point at) ABSL_LOCKS_EXCLUDED(mu_);
  void CallUnary(v1::StreamEvent event, std::chrono::system_clock::time_point deadline,
                 StreamDone done);
  template <typename Request, typename Response, typename StartFn>
  void StartUnary(Request&& request, std::chrono::system_clock::time_point deadline,
                  StreamDone done, StartFn start);
  std::chrono::milliseconds DeadlineFor(EventKind kind) const;

  const FunctionSettings function_;
  const DeadlineSettings deadlines_;
  FunctionMetrics& metrics_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::FunctionService::Stub> stub_;
  std::unique_ptr<EventStreamPool> streams_;  // Null for transport "unary".

  // Unary calls in flight and disconnects waiting to be sent again, so Shutdown() can cancel
  // them. One short critical section per call start and end; per function, not global.
  absl::Mutex mu_;
  absl::flat_hash_set<grpc::ClientContext*> in_flight_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<Redelivery*> waiting_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;  // After Shutdown(): calls fail at once.
};

}  // namespace fngate::gateway
