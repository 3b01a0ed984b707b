// File: gateway/event_stream_pool.h
// EventStreamPool: the fast path to one function's workers. A few long-lived
// FunctionService.Events streams carry events in batches and bring replies back in batches,
// so one gRPC message carries every event that arrived while the previous write was on the
// wire, or in the same pass of the event loop (with `defer`): no timer to fill a batch, and no
// per-event HTTP/2 stream under load.
//
// Semantics are those of one unary call per event:
// - Every submitted event gets `done` exactly once: the worker's reply, DEADLINE_EXCEEDED when
//   its deadline passes first, UNAVAILABLE when the stream carrying it broke, CANCELLED on
//   shutdown.
// - An event that was never written to a stream, or written to one no worker took (refused
//   before its headers), is retried on a new stream, once; an event written to a stream a
//   worker took is never repeated.
// - A connection's events (same key) always use the same stream, in submission order.
// - A stream that stalls (see the constructor) is cancelled like a broken one.
// - A stream older than `max_age` is retired: new events open a new one, and it half-closes
//   once its last reply is in.
// - If the workers do not implement Events (UNIMPLEMENTED), every event still pending, and
//   every later one, goes to `fallback` (the unary path) instead.
//
// Thread-safe. `done` runs on a gRPC thread or the pool's deadline thread, never under a lock.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/support/status.h>

#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "fngate/v1/function.grpc.pb.h"

namespace fngate::gateway {

class EventStreamPool {
 public:
  using Done = absl::AnyInvocable<void(const grpc::Status&, v1::StreamReply&)>;
  using Fallback =
      absl::AnyInvocable<void(v1::StreamEvent, std::chrono::system_clock::time_point, Done)>;
  // Runs a task soon on the event loop that submits events (after the handlers already
  // queued there). Null: write at once.
  using Defer = std::function<void(absl::AnyInvocable<void()>)>;

  // `max_age`: a stream older than this takes no new events and ends once its replies are
  // in, so streams spread again over the replicas there are now.
  // `stall_timeout`: a stream whose write does not finish, or that owes replies and sends
  // none, for this long is cancelled (its unsent events move to a new stream).
  EventStreamPool(v1::FunctionService::Stub& stub, std::string function_name, size_t streams,
                  std::chrono::milliseconds max_age, std::chrono::milliseconds stall_timeout,
                  Fallback fallback, Defer defer = nullptr);
  ~EventStreamPool();
  EventStreamPool(const EventStreamPool&) = delete;
  EventStreamPool& operator=(const EventStreamPool&) = delete;

  // `key` picks the stream; use one key per connection.
  void Submit(size_t key, v1::StreamEvent event, std::chrono::system_clock::time_point deadline,
              Done done);

  // True once the workers answered UNIMPLEMENTED: callers may go to the unary path directly.
  bool unimplemented() const { return unimplemented_.load(std::memory_order_acquire); }

  // Cancels every stream, fails what is pending with CANCELLED, waits for the streams to end.
  void Shutdown(std::chrono::milliseconds wait);

 private:
  class Slot;
  class StreamCall;
  friend class Slot;

  void SweepDeadlines();

  v1::FunctionService::Stub& stub_;
  const std::string function_name_;
  const std::chrono::milliseconds max_age_;
  const std::chrono::milliseconds stall_timeout_;
  Fallback fallback_;
  const Defer defer_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::atomic<bool> unimplemented_{false};
  std::atomic<bool> confirmed_{false};  // Some stream had a reply: workers serve Events.
  std::atomic<int> live_calls_{0};
  absl::Notification stop_;
  std::thread sweeper_;
};

}  // namespace fngate::gateway
