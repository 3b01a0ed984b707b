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
// - Events are written only to a stream a worker took (it answered with its headers). An event
//   no worker took waits, and new streams are tried (after a backoff when one failed before a
//   worker took it) until its deadline: then it fails UNAVAILABLE, "no worker". An event
//   written to a stream a worker took is never repeated here: if the stream breaks before its
//   reply, it fails UNAVAILABLE (FunctionClient decides whether that kind may be sent again).
// - A connection's events (same key) always use the same stream, in submission order.
// - A stream that stalls (see the constructor) is cancelled like a broken one.
// - A stream older than `max_age` is retired: new events open a new one, and it half-closes
//   once its last reply is in.
// - If the workers do not implement Events (UNIMPLEMENTED), every event still pending, and
//   every later one, goes to `fallback` (the unary path) instead.
// - A sick worker (one that accepts streams but answers kEjectAfter events in a row with
//   UNAVAILABLE or RESOURCE_EXHAUSTED) is ejected: its streams retire, and a new stream that
//   lands on it is ended before anything is written to it, so round robin moves on to the
//   next replica. The ejection lasts 1 s, doubled at each ejection in a row up to 30 s; then
//   the worker gets streams again. A worker is ejected only while another one holds a
//   healthy stream: with no other replica, the errors go to the callers as they are.
//
// The streams run on gRPC's completion-queue API: every operation completes on the one thread
// of the CompletionQueueThread whose queue the pool is given (see completion_queue_thread.h).
//
// Thread-safe. `done` runs on that thread or the pool's deadline thread, never under a lock.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/completion_queue.h>
#include <grpcpp/support/status.h>

#include "absl/container/flat_hash_map.h"
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
  // `ejections` counts the workers ejected. `cq`: a CompletionQueueThread's queue, which must
  // outlive the pool.
  EventStreamPool(v1::FunctionService::Stub& stub, std::string function_name, size_t streams,
                  std::chrono::milliseconds max_age, std::chrono::milliseconds stall_timeout,
                  Fallback fallback, std::atomic<uint64_t>& ejections, grpc::CompletionQueue* cq,
                  Defer defer = nullptr);
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

  // Answers in a row, of UNAVAILABLE or RESOURCE_EXHAUSTED, that eject a worker.
  static constexpr int kEjectAfter = 5;

 private:
  class Slot;
  class StreamCall;
  friend class Slot;

  // What the pool knows of one worker address (the peer of its streams).
  struct Peer {
    int live_streams = 0;      // Accepted streams on it, not yet done.
    int sick_in_a_row = 0;     // UNAVAILABLE / RESOURCE_EXHAUSTED answers since the last other.
    int ejections = 0;         // In a row, without a healthy answer between them.
    std::chrono::steady_clock::time_point ejected_until;
  };

  void SweepDeadlines();
  // Peer bookkeeping; each takes peers_mu_ (always after a slot's mutex, never before).
  void PeerUp(const std::string& peer) ABSL_LOCKS_EXCLUDED(peers_mu_);
  void PeerDown(const std::string& peer) ABSL_LOCKS_EXCLUDED(peers_mu_);
  void PeerAnswered(const std::string& peer, int sick, int healthy)
      ABSL_LOCKS_EXCLUDED(peers_mu_);
  // True while `peer` is ejected and some other worker holds a live stream and is not.
  bool Avoid(const std::string& peer) ABSL_LOCKS_EXCLUDED(peers_mu_);
  void UpdateSuspectsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(peers_mu_);

  v1::FunctionService::Stub& stub_;
  grpc::CompletionQueue* const cq_;
  const std::string function_name_;
  const std::chrono::milliseconds max_age_;
  const std::chrono::milliseconds stall_timeout_;
  Fallback fallback_;
  const Defer defer_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::atomic<bool> unimplemented_{false};
  std::atomic<bool> confirmed_{false};  // Some stream had a reply: workers serve Events.
  std::atomic<int> live_calls_{0};
  std::atomic<uint64_t>& ejections_;
  absl::Mutex peers_mu_;
  absl::flat_hash_map<std::string, Peer> peers_ ABSL_GUARDED_BY(peers_mu_);
  // Workers with sick answers or ejections on record: while none, healthy answers need no
  // bookkeeping (the hot path takes no pool-wide lock).
  std::atomic<int> suspects_{0};
  absl::Notification stop_;
  std::thread sweeper_;
};

}  // namespace fngate::gateway
