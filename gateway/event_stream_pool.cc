#include "gateway/event_stream_pool.h"

#include <algorithm>
#include <deque>
#include <utility>

#include <grpcpp/client_context.h>
#include <grpcpp/support/client_callback.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace fngate::gateway {
namespace {

// A batch holds what arrived while the previous write was on the wire, up to these bounds.
constexpr int kMaxBatchEvents = 512;
constexpr size_t kMaxBatchPayloadBytes = 4 << 20;
// A never-written event is tried on this many streams before it fails UNAVAILABLE.
constexpr int kMaxAttempts = 3;
constexpr auto kSweepInterval = std::chrono::milliseconds(50);


size_t PayloadBytes(const v1::StreamEvent& event) {
  if (!event.has_message()) return 256;
  const v1::Payload& p = event.message().payload();
  return 256 + (p.has_binary() ? p.binary().size() : p.text().size());
}

int64_t UnixMicros(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

struct Pending {
  v1::StreamEvent event;  // Moved into a batch when written.
  EventStreamPool::Done done;
  std::chrono::system_clock::time_point deadline;
  int attempts = 0;
};
using PendingPtr = std::unique_ptr<Pending>;

// Callbacks to run once the lock is released.
struct Completion {
  PendingPtr call;
  grpc::Status status;
  v1::StreamReply reply;
};
using Completions = std::vector<Completion>;

void RunAll(Completions& completions) {
  for (Completion& c : completions) c.call->done(c.status, c.reply);
  completions.clear();
}

}  // namespace

// One gRPC Events call. Lives from StartCall to OnDone; holds the stream open (AddHold) until
// its slot lets go of it, so writes may start from any thread without racing OnDone.
class EventStreamPool::StreamCall final
    : public grpc::ClientBidiReactor<v1::EventBatch, v1::ReplyBatch> {
 public:
  explicit StreamCall(Slot& slot) : slot_(slot) {}

  // grpc::ClientBidiReactor
  void OnReadInitialMetadataDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  Slot& slot_;
  grpc::ClientContext context;
  v1::EventBatch write_batch;
  v1::ReplyBatch read_batch;
  absl::flat_hash_map<uint64_t, PendingPtr> sent;  // Guarded by the slot's mutex.
  std::chrono::steady_clock::time_point opened = std::chrono::steady_clock::now();
  std::chrono::milliseconds max_age{0};
  bool dead = false;                               // No more writes; guarded likewise.
  bool retiring = false;                           // Half-close once `sent` drains; likewise.
  bool hold_released = false;                      // Likewise.
  std::chrono::steady_clock::time_point write_started;  // Likewise.
  std::chrono::steady_clock::time_point last_read = opened;  // Likewise.
  bool writing = false;                            // Guarded likewise.
  bool got_reply = false;                          // Guarded likewise.
  bool accepted = false;  // The worker sent headers: it took the stream. Guarded likewise.
};

// One logical stream: successive StreamCalls, the queue of events not yet written.
class EventStreamPool::Slot {
 public:
  explicit Slot(EventStreamPool& pool) : pool_(pool) {}

  void Submit(PendingPtr call) {
    Completions failed;
    {
      absl::MutexLock lock(&mu_);
      if (shutting_down_) {
        failed.push_back({std::move(call), grpc::Status(grpc::StatusCode::CANCELLED,
                                                        "gateway shutting down"), {}});
      } else {
        unsent_.push_back(std::move(call));
        if (call_ == nullptr) {
          StartCallLocked();
        } else if (pool_.defer_ == nullptr) {
          FlushLocked();
        } else if (!flush_scheduled_ && !call_->writing) {
          // Write at the end of this pass of the event loop: the other connections whose
          // messages arrived in the same wake-up join this batch.
          flush_scheduled_ = true;
          pool_.defer_([this] {
            absl::MutexLock lock(&mu_);
            flush_scheduled_ = false;
            FlushLocked();
          });
        }
      }
    }
    RunAll(failed);
  }

  void OnAccepted(StreamCall* call, bool ok) {
    absl::MutexLock lock(&mu_);
    call->accepted = ok;
  }

  void OnWriteDone(StreamCall* call, bool ok) {
    absl::MutexLock lock(&mu_);
    call->writing = false;
    if (!ok) {
      // The stream broke; the read side ends it. Events of that batch count as taken.
      MarkDeadLocked(call);
      return;
    }
    // Streams are pinned to the replica they opened on; retiring old ones lets round robin
    // spread them again, so replicas added later (scale-out) get their share.
    if (call == call_ && std::chrono::steady_clock::now() - call->opened > call->max_age) {
      // Old enough: new events go to a fresh stream (maybe on another replica); this one ends
      // once every event it carried has its reply.
      call->retiring = true;
      call_ = nullptr;
      if (!unsent_.empty()) StartCallLocked();
      MaybeHalfCloseLocked(call);
      return;
    }
    FlushLocked();
  }

  void OnReadDone(StreamCall* call, bool ok) {
    Completions done;
    {
      absl::MutexLock lock(&mu_);
      if (!ok) {
        MarkDeadLocked(call);
        return;
      }
      call->got_reply = true;
      call->last_read = std::chrono::steady_clock::now();
      pool_.confirmed_.store(true, std::memory_order_release);
      for (v1::StreamReply& reply : *call->read_batch.mutable_replies()) {
        auto it = call->sent.find(reply.call_id());
        if (it == call->sent.end()) continue;  // Already failed by its deadline.
        Completion c{std::move(it->second),
                     grpc::Status(static_cast<grpc::StatusCode>(reply.status_code()),
                                  reply.status_message()),
                     {}};
        c.reply.Swap(&reply);
        call->sent.erase(it);
        done.push_back(std::move(c));
      }
      if (call->read_batch.draining() && !call->retiring) {
        // The worker is going away: it answers what it has, we send it nothing more.
        call->retiring = true;
        if (call_ == call) {
          call_ = nullptr;
          if (!unsent_.empty()) StartCallLocked();
        }
      }
      call->read_batch.Clear();
      call->StartRead(&call->read_batch);
      MaybeHalfCloseLocked(call);
    }
    RunAll(done);
  }

  void OnDone(StreamCall* call, const grpc::Status& status) {
    Completions done;
    std::vector<PendingPtr> to_fallback;
    {
      absl::MutexLock lock(&mu_);
      if (call_ == call) call_ = nullptr;
      std::erase(calls_, call);
      const bool unimplemented =
          status.error_code() == grpc::StatusCode::UNIMPLEMENTED && !call->got_reply;
      if (unimplemented) {
        // The worker has no Events method, so it handled none of these: all go unary.
        if (!pool_.unimplemented_.exchange(true)) {
          FNGATE_LOG(Info) << "function " << pool_.function_name_
                           << ": workers do not serve Events; using unary calls";
        }
        for (auto& [id, pending] : call->sent) to_fallback.push_back(std::move(pending));
        while (!unsent_.empty()) {
          to_fallback.push_back(std::move(unsent_.front()));
          unsent_.pop_front();
        }
      } else {
        const grpc::Status failure =
            status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                       "event stream ended by the worker")
                        : grpc::Status(status.error_code() == grpc::StatusCode::CANCELLED &&
                                               !shutting_down_
                                           ? grpc::StatusCode::UNAVAILABLE
                                           : status.error_code(),
                                       absl::StrCat("event stream failed: ",
                                                    status.error_message()));
        if (!call->accepted) {
          // No worker took this stream (refused: say, one shutting down), so none of its
          // events was handled: they go back, in the order they were written, ahead of what
          // came after them.
          std::vector<std::pair<uint64_t, PendingPtr>> written;
          for (auto& [id, pending] : call->sent) written.emplace_back(id, std::move(pending));
          call->sent.clear();
          std::sort(written.begin(), written.end(),
                    [](const auto& a, const auto& b) { return a.first < b.first; });
          for (auto it = written.rbegin(); it != written.rend(); ++it) {
            unsent_.push_front(std::move(it->second));
          }
        }
        // Written on a stream a worker took: it may have handled them, so they fail, never
        // repeat.
        for (auto& [id, pending] : call->sent) {
          done.push_back({std::move(pending), failure, {}});
        }
        // Never written: another stream may take them, a bounded number of times. Only when
        // they were waiting for this stream: if a newer one is live (this one was retired),
        // they are that one's, and it writes them.
        if (call_ == nullptr) {
          std::deque<PendingPtr> retry;
          while (!unsent_.empty()) {
            PendingPtr pending = std::move(unsent_.front());
            unsent_.pop_front();
            if (shutting_down_ || ++pending->attempts >= kMaxAttempts) {
              done.push_back({std::move(pending), failure, {}});
            } else {
              retry.push_back(std::move(pending));
            }
          }
          unsent_ = std::move(retry);
          if (!unsent_.empty()) StartCallLocked();
        } else {
          FlushLocked();  // A newer stream is live: it takes what came back.
        }
      }
      call->sent.clear();
    }
    RunAll(done);
    for (PendingPtr& pending : to_fallback) {
      pool_.fallback_(std::move(pending->event), pending->deadline, std::move(pending->done));
    }
    pool_.live_calls_.fetch_sub(1, std::memory_order_acq_rel);
    delete call;
  }

  // Fails what is past its deadline, written or not.
  void Sweep(std::chrono::system_clock::time_point now) {
    Completions done;
    {
      absl::MutexLock lock(&mu_);
      const grpc::Status expired(grpc::StatusCode::DEADLINE_EXCEEDED,
                                 "event deadline exceeded");
      const auto steady_now = std::chrono::steady_clock::now();
      for (StreamCall* call : calls_) {
        // A stream whose write has not finished, or that owes replies and has said nothing,
        // for a whole stall timeout is stuck (a hung worker, a black-holed host): cancel it, so
        // its unsent events move to a new stream instead of waiting for TCP to give up.
        const bool stuck_write =
            call->writing && steady_now - call->write_started > pool_.stall_timeout_;
        const bool silent = !call->sent.empty() &&
                            steady_now - call->last_read > pool_.stall_timeout_ &&
                            steady_now - call->write_started > pool_.stall_timeout_;
        if (!call->dead && (stuck_write || silent)) {
          FNGATE_LOG(Warning) << "function " << pool_.function_name_
                              << ": event stream stalled; cancelling it";
          call->context.TryCancel();
        }
        for (auto it = call->sent.begin(); it != call->sent.end();) {
          if (it->second->deadline <= now) {
            done.push_back({std::move(it->second), expired, {}});
            call->sent.erase(it++);
          } else {
            ++it;
          }
        }
        MaybeHalfCloseLocked(call);
      }
      for (auto it = unsent_.begin(); it != unsent_.end();) {
        if ((*it)->deadline <= now) {
          done.push_back({std::move(*it), expired, {}});
          it = unsent_.erase(it);
        } else {
          ++it;
        }
      }
    }
    RunAll(done);
  }

  void Shutdown() {
    Completions done;
    {
      absl::MutexLock lock(&mu_);
      shutting_down_ = true;
      for (StreamCall* call : calls_) call->context.TryCancel();
      const grpc::Status cancelled(grpc::StatusCode::CANCELLED, "gateway shutting down");
      while (!unsent_.empty()) {
        done.push_back({std::move(unsent_.front()), cancelled, {}});
        unsent_.pop_front();
      }
    }
    RunAll(done);
  }

 private:
  void StartCallLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    call_ = new StreamCall(*this);
    // A slot's first streams open while the channel may know only some replicas (start-up,
    // a restart under load): they retire after 1 s, 2 s, 4 s, ... up to max_age, so an early
    // imbalance evens out within seconds.
    call_->max_age = std::min<std::chrono::milliseconds>(
        pool_.max_age_, std::chrono::milliseconds(1000L << std::min(streams_opened_++, 10)));
    calls_.push_back(call_);
    pool_.live_calls_.fetch_add(1, std::memory_order_acq_rel);
    pool_.stub_.async()->Events(&call_->context, call_);
    call_->AddHold();  // Released in MarkDeadLocked(): only then may OnDone run.
    call_->StartRead(&call_->read_batch);
    call_->StartCall();
    FlushLocked();
  }

  // Writes what is waiting, if the stream is free: one batch in flight at a time, and the
  // next batch is whatever arrived meanwhile.
  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    StreamCall* call = call_;
    if (call == nullptr || call->dead || call->writing || unsent_.empty()) return;
    call->write_batch.Clear();
    size_t bytes = 0;
    while (!unsent_.empty() && call->write_batch.events_size() < kMaxBatchEvents &&
           bytes < kMaxBatchPayloadBytes) {
      PendingPtr pending = std::move(unsent_.front());
      unsent_.pop_front();
      const uint64_t id = next_call_id_++;
      pending->event.set_call_id(id);
      pending->event.set_deadline_unix_micros(UnixMicros(pending->deadline));
      bytes += PayloadBytes(pending->event);
      if (call->accepted && pool_.confirmed_.load(std::memory_order_acquire)) {
        call->write_batch.add_events()->Swap(&pending->event);
      } else {
        // Until the worker has taken this stream (and some stream has had a reply), the
        // events may have to go elsewhere: to another stream if this one is refused, to the
        // unary path if workers do not serve Events. Keep them whole.
        *call->write_batch.add_events() = pending->event;
      }
      call->sent.emplace(id, std::move(pending));
    }
    call->writing = true;
    call->write_started = std::chrono::steady_clock::now();
    call->StartWrite(&call->write_batch);
  }

  void MaybeHalfCloseLocked(StreamCall* call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (call->retiring && !call->dead && !call->writing && call->sent.empty()) {
      call->dead = true;
      call->StartWritesDone();  // The worker finishes the stream; reads end; OnDone follows.
    }
  }

  void MarkDeadLocked(StreamCall* call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    call->dead = true;
    if (call_ == call) call_ = nullptr;  // The next event starts a fresh stream.
    if (!call->hold_released) {
      call->hold_released = true;
      call->RemoveHold();
    }
  }

  EventStreamPool& pool_;
  absl::Mutex mu_;
  std::deque<PendingPtr> unsent_ ABSL_GUARDED_BY(mu_);
  StreamCall* call_ ABSL_GUARDED_BY(mu_) = nullptr;  // Takes new events.
  std::vector<StreamCall*> calls_ ABSL_GUARDED_BY(mu_);  // Every call not yet done.
  uint64_t next_call_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool flush_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  int streams_opened_ ABSL_GUARDED_BY(mu_) = 0;
};

void EventStreamPool::StreamCall::OnReadInitialMetadataDone(bool ok) {
  slot_.OnAccepted(this, ok);
}
void EventStreamPool::StreamCall::OnWriteDone(bool ok) { slot_.OnWriteDone(this, ok); }
void EventStreamPool::StreamCall::OnReadDone(bool ok) { slot_.OnReadDone(this, ok); }
void EventStreamPool::StreamCall::OnDone(const grpc::Status& status) {
  slot_.OnDone(this, status);
}

EventStreamPool::EventStreamPool(v1::FunctionService::Stub& stub, std::string function_name,
                                 size_t streams, std::chrono::milliseconds max_age,
                                 std::chrono::milliseconds stall_timeout, Fallback fallback,
                                 Defer defer)
    : stub_(stub),
      function_name_(std::move(function_name)),
      max_age_(max_age),
      stall_timeout_(stall_timeout),
      fallback_(std::move(fallback)),
      defer_(std::move(defer)) {
  for (size_t i = 0; i < std::max<size_t>(1, streams); ++i) {
    slots_.push_back(std::make_unique<Slot>(*this));
  }
  sweeper_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(absl::FromChrono(kSweepInterval))) {
      SweepDeadlines();
    }
  });
}

EventStreamPool::~EventStreamPool() { Shutdown(std::chrono::seconds(5)); }

void EventStreamPool::Submit(size_t key, v1::StreamEvent event,
                             std::chrono::system_clock::time_point deadline, Done done) {
  if (unimplemented()) return fallback_(std::move(event), deadline, std::move(done));
  auto pending = std::make_unique<Pending>();
  pending->event = std::move(event);
  pending->done = std::move(done);
  pending->deadline = deadline;
  slots_[key % slots_.size()]->Submit(std::move(pending));
}

void EventStreamPool::SweepDeadlines() {
  const auto now = std::chrono::system_clock::now();
  for (auto& slot : slots_) slot->Sweep(now);
}

void EventStreamPool::Shutdown(std::chrono::milliseconds wait) {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (sweeper_.joinable()) sweeper_.join();
  for (auto& slot : slots_) slot->Shutdown();
  const auto until = std::chrono::steady_clock::now() + wait;
  while (live_calls_.load(std::memory_order_acquire) > 0 &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace fngate::gateway
