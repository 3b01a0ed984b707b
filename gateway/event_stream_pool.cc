#include "gateway/event_stream_pool.h"

#include <algorithm>
#include <deque>
#include <utility>

#include <grpcpp/client_context.h>
#include <grpcpp/support/async_stream.h>
#include <grpcpp/support/client_callback.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/completion_queue_thread.h"

namespace fngate::gateway {
namespace {

// A batch holds what arrived while the previous write was on the wire, up to these bounds.
constexpr int kMaxBatchEvents = 512;
constexpr size_t kMaxBatchPayloadBytes = 4 << 20;
constexpr auto kSweepInterval = std::chrono::milliseconds(50);
// After a stream failed before any worker took it, the next one waits this long, doubled at
// each failure in a row up to kMaxBackoff (the first retry is at once: round robin may have
// another replica). The sweeper starts it, so the granularity is kSweepInterval.
constexpr auto kFirstBackoff = std::chrono::milliseconds(50);
constexpr auto kMaxBackoff = std::chrono::milliseconds(1000);
// A new stream that lands on an ejected worker is ended at once and another one opened, at
// most this many times in a row; then the slot keeps what it got (no spinning when round
// robin has nowhere else to go).
constexpr int kMaxRefusals = 8;
// A stream no worker has taken (answered with headers) this long while events wait for it is
// renewed; headers take one round trip, so this only catches hung workers.
constexpr auto kAcceptTimeout = std::chrono::milliseconds(2000);
// Ejection times: the first, and the cap of the doubling.
constexpr auto kFirstEjection = std::chrono::milliseconds(1000);
constexpr auto kMaxEjection = std::chrono::milliseconds(30000);

bool IsSick(int status_code) {
  return status_code == static_cast<int>(grpc::StatusCode::UNAVAILABLE) ||
         status_code == static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED);
}


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
  // Its answer says whether the worker can handle events (not an error event: a worker may
  // acknowledge those while failing everything else).
  bool health_signal = true;
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

// Whether the server answered the call with trailers only (its status, no headers). gRPC 1.51
// has no public test for it on the completion-queue API; the callback API's own
// (ClientReactor::InternalTrailersOnly, in grpcpp/support/client_callback.h) is reached here.
bool IsTrailersOnly(grpc::ClientContext& context) {
  class Probe final : public grpc::internal::ClientReactor {
   public:
    void OnDone(const grpc::Status& /*status*/) override {}
    bool Ask(const grpc_call* call) const { return InternalTrailersOnly(call); }
  };
  static const Probe probe;
  return probe.Ask(context.c_call());
}

}  // namespace

// One gRPC Events call, on the completion-queue API: its operations complete on the pool's
// CompletionQueueThread, which hands each to the slot (OnOp). Lives from StartCallLocked until
// its Finish completes; Finish is asked for only once nothing else is pending, so then the call
// may go. Every field is guarded by the slot's mutex.
class EventStreamPool::StreamCall {
 public:
  enum class Op : uint8_t { kStart, kMetadata, kRead, kWrite, kFinish };

  explicit StreamCall(Slot& slot) : slot_(slot) {
    for (int i = 0; i < kOps; ++i) {
      tags_[i].call = this;
      tags_[i].op = static_cast<Op>(i);
    }
  }

  void* TagOf(Op op) { return &tags_[static_cast<int>(op)]; }

  Slot& slot_;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<v1::EventBatch, v1::ReplyBatch>> stream;
  v1::EventBatch write_batch;
  v1::ReplyBatch read_batch;
  grpc::Status status;  // Finish fills it.
  absl::flat_hash_map<uint64_t, PendingPtr> sent;
  std::chrono::steady_clock::time_point opened = std::chrono::steady_clock::now();
  std::chrono::milliseconds max_age{0};
  bool dead = false;                               // No more writes.
  bool retiring = false;                           // Half-close once `sent` drains.
  std::chrono::steady_clock::time_point write_started;
  std::chrono::steady_clock::time_point last_read = opened;
  // Operations pending: at most one of each kind, as the API allows.
  bool metadata_pending = false;
  bool reading = false;
  bool writing = false;          // StartCall (our headers), a Write, or the WritesDone.
  bool reads_ended = false;      // A read (or the headers) failed: the call is over.
  bool finishing = false;        // Finish asked for; nothing else starts.
  bool got_reply = false;
  bool accepted = false;  // The worker sent headers: it took the stream.
  bool kept_on_ejected = false;  // Kept although its worker is ejected (kMaxRefusals).
  bool stall_cancelled = false;  // Sweep cancelled it.
  std::string peer;       // The worker's address, once accepted.

 private:
  struct OpTag final : CompletionQueueThread::Tag {
    void OnComplete(bool ok) override;
    StreamCall* call = nullptr;
    Op op = Op::kStart;
  };
  static constexpr int kOps = 5;
  OpTag tags_[kOps];
};

// One logical stream: successive StreamCalls, the queue of events not yet written.
class EventStreamPool::Slot {
 public:
  explicit Slot(EventStreamPool& pool) : pool_(pool) {}

  // Every completed operation of this slot's calls, on the completion-queue thread.
  void OnOp(StreamCall* call, StreamCall::Op op, bool ok) {
    switch (op) {
      case StreamCall::Op::kMetadata: return OnAccepted(call, ok);
      case StreamCall::Op::kRead: return OnReadDone(call, ok);
      case StreamCall::Op::kStart:  // Our headers are out: the first write may go.
      case StreamCall::Op::kWrite: return OnWriteDone(call, ok);
      case StreamCall::Op::kFinish: return OnDone(call, call->status);
    }
  }

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
          MaybeStartCallLocked();
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
    call->metadata_pending = false;
    // A stream answered with trailers only (UNIMPLEMENTED, a refusal) was not taken, though
    // the completion-queue API reports its headers as read: the callback API checks this too.
    if (ok && IsTrailersOnly(call->context)) ok = false;
    if (!ok) {
      // Refused or failed before a worker took it: Finish says how, OnDone acts on it.
      call->reads_ended = true;
      MarkDeadLocked(call);
      MaybeFinishLocked(call);
      return;
    }
    call->accepted = true;
    call->peer = call->context.peer();
    pool_.PeerUp(call->peer);
    StartReadLocked(call);
    if (call != call_) return;  // Retired meanwhile (shutdown): nothing more goes to it.
    if (pool_.Avoid(call->peer)) {
      if (refusals_ < kMaxRefusals) {
        // Round robin put this stream on an ejected worker. Nothing was written to it yet: end
        // it, and let the next pick (another replica) carry the events.
        ++refusals_;
        call->retiring = true;
        call_ = nullptr;
        if (!shutting_down_) StartCallLocked();
        MaybeHalfCloseLocked(call);
        return;
      }
      call->kept_on_ejected = true;
    }
    refusals_ = 0;
    backoff_ = std::chrono::milliseconds(0);
    FlushLocked();
  }

  void OnWriteDone(StreamCall* call, bool ok) {
    absl::MutexLock lock(&mu_);
    call->writing = false;
    WriteDoneLocked(call, ok);
    // A stream retired while its headers or a write were on the way half-closes now.
    MaybeHalfCloseLocked(call);
    MaybeFinishLocked(call);
  }

  void WriteDoneLocked(StreamCall* call, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) {
      // The stream is over (a write fails only then); the read side ends it, and Finish tells
      // why. Events of that batch count as taken.
      MarkDeadLocked(call);
      return;
    }
    // Streams are pinned to the replica they opened on; retiring old ones lets round robin
    // spread them again, so replicas added later (scale-out) get their share.
    if (call == call_ && call->accepted &&
        std::chrono::steady_clock::now() - call->opened > call->max_age) {
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
      call->reading = false;
      if (!ok) {
        call->reads_ended = true;
        MarkDeadLocked(call);
        MaybeFinishLocked(call);
        return;
      }
      call->got_reply = true;
      call->last_read = std::chrono::steady_clock::now();
      pool_.confirmed_.store(true, std::memory_order_release);
      int sick = 0;
      int healthy = 0;
      for (v1::StreamReply& reply : *call->read_batch.mutable_replies()) {
        auto it = call->sent.find(reply.call_id());
        if (it == call->sent.end()) continue;  // Already failed by its deadline.
        if (it->second->health_signal) (IsSick(reply.status_code()) ? sick : healthy) += 1;
        Completion c{std::move(it->second),
                     grpc::Status(static_cast<grpc::StatusCode>(reply.status_code()),
                                  reply.status_message()),
                     {}};
        c.reply.Swap(&reply);
        call->sent.erase(it);
        done.push_back(std::move(c));
      }
      if (sick > 0 || (healthy > 0 && pool_.suspects_.load(std::memory_order_relaxed) > 0)) {
        pool_.PeerAnswered(call->peer, sick, healthy);
      }
      if (sick > 0 && !call->retiring && !call->kept_on_ejected && pool_.Avoid(call->peer)) {
        // Its worker was just ejected: it takes nothing new and ends once its replies are in.
        call->retiring = true;
        if (call_ == call) {
          call_ = nullptr;
          if (!unsent_.empty()) StartCallLocked();
        }
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
      StartReadLocked(call);
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
      if (call->accepted) pool_.PeerDown(call->peer);
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
        // Only an accepted stream carried events (FlushLocked): a worker took them and may
        // have handled them, so they fail, never repeat.
        const grpc::Status failure =
            status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                       "event stream ended by the worker")
                        : grpc::Status(status.error_code() == grpc::StatusCode::CANCELLED &&
                                               !shutting_down_
                                           ? grpc::StatusCode::UNAVAILABLE
                                           : status.error_code(),
                                       absl::StrCat("event stream failed: ",
                                                    status.error_message()));
        for (auto& [id, pending] : call->sent) {
          done.push_back({std::move(pending), failure, {}});
        }
        if (!call->accepted && !shutting_down_) {
          // No worker took it (refused, or no worker to be had): back off before the next.
          backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(2 * backoff_, kMaxBackoff);
          retry_at_ = std::chrono::steady_clock::now() + backoff_;
          FNGATE_LOG(Debug) << "function " << pool_.function_name_
                            << ": event stream failed before a worker took it ("
                            << status.error_code() << " " << status.error_message()
                            << "); next try in " << backoff_.count() << " ms";
        }
        // What was never written waits for the next stream, until its deadline (Sweep).
        if (call_ == nullptr) {
          if (!unsent_.empty() && !shutting_down_) MaybeStartCallLocked();
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
        // (Before a worker took it, its headers may wait for one: that is the accept timeout's.)
        const bool stuck_write = call->accepted && call->writing &&
                                 steady_now - call->write_started > pool_.stall_timeout_;
        const bool silent = !call->sent.empty() &&
                            steady_now - call->last_read > pool_.stall_timeout_ &&
                            steady_now - call->write_started > pool_.stall_timeout_;
        if (!call->dead && !call->stall_cancelled && (stuck_write || silent)) {
          FNGATE_LOG(Warning) << "function " << pool_.function_name_
                              << ": event stream stalled; cancelling it";
          call->stall_cancelled = true;
          call->context.TryCancel();
        }
        // Events wait for a worker to take the stream (its headers). A worker that accepted
        // the connection but hangs never does: try another stream (maybe another replica).
        // With no worker connected at all this only renews the wait.
        if (call == call_ && !call->accepted && !call->stall_cancelled && !unsent_.empty() &&
            steady_now - call->opened > std::min(pool_.stall_timeout_, kAcceptTimeout)) {
          FNGATE_LOG(Debug) << "function " << pool_.function_name_
                            << ": no worker took the event stream; opening another";
          call->stall_cancelled = true;
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
      // Never written: with a worker's stream open, they waited behind a slow write (a
      // deadline); without one, no worker took them in time.
      const bool taken = call_ != nullptr && call_->accepted;
      const grpc::Status no_worker(grpc::StatusCode::UNAVAILABLE,
                                   "no worker took the event before its deadline");
      for (auto it = unsent_.begin(); it != unsent_.end();) {
        if ((*it)->deadline <= now) {
          done.push_back({std::move(*it), taken ? expired : no_worker, {}});
          it = unsent_.erase(it);
        } else {
          ++it;
        }
      }
      if (call_ == nullptr && !unsent_.empty() && !shutting_down_) MaybeStartCallLocked();
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
  // Starts a stream unless a backoff is running (then the sweeper starts it when it ends).
  void MaybeStartCallLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (std::chrono::steady_clock::now() >= retry_at_) StartCallLocked();
  }

  void StartCallLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    call_ = new StreamCall(*this);
    // With no worker connected the stream waits for one (events wait in unsent_ until their
    // deadline) instead of failing at once.
    call_->context.set_wait_for_ready(true);
    // A slot's first streams open while the channel may know only some replicas (start-up,
    // a restart under load): they retire after 1 s, 2 s, 4 s, ... up to max_age, so an early
    // imbalance evens out within seconds.
    call_->max_age = std::min<std::chrono::milliseconds>(
        pool_.max_age_, std::chrono::milliseconds(1000L << std::min(streams_opened_++, 10)));
    calls_.push_back(call_);
    pool_.live_calls_.fetch_add(1, std::memory_order_acq_rel);
    call_->stream = pool_.stub_.PrepareAsyncEvents(&call_->context, pool_.cq_);
    // StartCall sends our headers with the operation set a Write uses: it counts as a write,
    // and no Write may start before it completes.
    call_->writing = true;
    call_->write_started = std::chrono::steady_clock::now();
    call_->metadata_pending = true;
    call_->stream->StartCall(call_->TagOf(StreamCall::Op::kStart));
    // The worker's headers say it took the stream. Nothing is written, and nothing read,
    // until then (OnAccepted).
    call_->stream->ReadInitialMetadata(call_->TagOf(StreamCall::Op::kMetadata));
  }

  void StartReadLocked(StreamCall* call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    call->reading = true;
    call->stream->Read(&call->read_batch, call->TagOf(StreamCall::Op::kRead));
  }

  // Asks for the call's status once nothing else is pending (the API allows no overlap), so
  // that when it comes the call may be deleted.
  void MaybeFinishLocked(StreamCall* call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (call->reads_ended && !call->finishing && !call->metadata_pending && !call->reading &&
        !call->writing) {
      call->finishing = true;
      call->stream->Finish(&call->status, call->TagOf(StreamCall::Op::kFinish));
    }
  }

  // Writes what is waiting, if the stream is free: one batch in flight at a time, and the
  // next batch is whatever arrived meanwhile.
  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    StreamCall* call = call_;
    if (call == nullptr || call->dead || call->writing || !call->accepted || unsent_.empty()) {
      return;
    }
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
    call->stream->Write(call->write_batch, call->TagOf(StreamCall::Op::kWrite));
  }

  void MaybeHalfCloseLocked(StreamCall* call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (call->retiring && !call->dead && !call->writing && call->sent.empty()) {
      call->dead = true;
      // The worker finishes the stream; reads end; Finish and OnDone follow.
      call->writing = true;
      call->write_started = std::chrono::steady_clock::now();
      call->stream->WritesDone(call->TagOf(StreamCall::Op::kWrite));
    }
  }

  void MarkDeadLocked(StreamCall* call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    call->dead = true;
    if (call_ == call) call_ = nullptr;  // The next event starts a fresh stream.
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
  std::chrono::milliseconds backoff_ ABSL_GUARDED_BY(mu_){0};
  std::chrono::steady_clock::time_point retry_at_ ABSL_GUARDED_BY(mu_);
  int refusals_ ABSL_GUARDED_BY(mu_) = 0;  // Streams ended in a row for landing on an ejected worker.
};

void EventStreamPool::StreamCall::OpTag::OnComplete(bool ok) {
  // The last thing done with this tag: OnOp may delete the call that holds it.
  call->slot_.OnOp(call, op, ok);
}

EventStreamPool::EventStreamPool(v1::FunctionService::Stub& stub, std::string function_name,
                                 size_t streams, std::chrono::milliseconds max_age,
                                 std::chrono::milliseconds stall_timeout, Fallback fallback,
                                 std::atomic<uint64_t>& ejections, grpc::CompletionQueue* cq,
                                 Defer defer)
    : stub_(stub),
      cq_(cq),
      function_name_(std::move(function_name)),
      max_age_(max_age),
      stall_timeout_(stall_timeout),
      fallback_(std::move(fallback)),
      defer_(std::move(defer)),
      ejections_(ejections) {
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
  pending->health_signal = event.event_case() != v1::StreamEvent::kError;
  pending->event = std::move(event);
  pending->done = std::move(done);
  pending->deadline = deadline;
  slots_[key % slots_.size()]->Submit(std::move(pending));
}

void EventStreamPool::PeerUp(const std::string& peer) {
  absl::MutexLock lock(&peers_mu_);
  ++peers_[peer].live_streams;
}

void EventStreamPool::PeerDown(const std::string& peer) {
  absl::MutexLock lock(&peers_mu_);
  auto it = peers_.find(peer);
  if (it == peers_.end()) return;
  Peer& p = it->second;
  --p.live_streams;
  // Forget a worker with nothing to remember (bounded: at most the replicas seen).
  if (p.live_streams <= 0 && p.ejections == 0 && p.sick_in_a_row == 0) peers_.erase(it);
}

void EventStreamPool::UpdateSuspectsLocked() {
  int suspects = 0;
  for (const auto& [address, p] : peers_) suspects += p.sick_in_a_row > 0 || p.ejections > 0;
  suspects_.store(suspects, std::memory_order_relaxed);
}

void EventStreamPool::PeerAnswered(const std::string& peer, int sick, int healthy) {
  const auto now = std::chrono::steady_clock::now();
  absl::MutexLock lock(&peers_mu_);
  Peer& p = peers_[peer];
  if (healthy > 0) {
    // A worker that handles events again is no longer a suspect.
    p.sick_in_a_row = 0;
    if (p.ejected_until <= now) p.ejections = 0;
    UpdateSuspectsLocked();
    return;
  }
  p.sick_in_a_row += sick;
  UpdateSuspectsLocked();
  if (p.sick_in_a_row < kEjectAfter || p.ejected_until > now) return;
  p.sick_in_a_row = 0;
  const auto length = std::min<std::chrono::milliseconds>(
      kMaxEjection, kFirstEjection * (1L << std::min(p.ejections, 10)));
  ++p.ejections;
  p.ejected_until = now + length;
  ejections_.fetch_add(1, std::memory_order_relaxed);
  FNGATE_LOG(Warning) << "function " << function_name_ << ": worker " << peer << " answered "
                      << kEjectAfter << " events in a row with UNAVAILABLE or RESOURCE_EXHAUSTED;"
                      << " ejected for " << length.count() << " ms";
}

bool EventStreamPool::Avoid(const std::string& peer) {
  const auto now = std::chrono::steady_clock::now();
  absl::MutexLock lock(&peers_mu_);
  auto it = peers_.find(peer);
  if (it == peers_.end() || it->second.ejected_until <= now) return false;
  for (const auto& [other, p] : peers_) {
    if (other != peer && p.live_streams > 0 && p.ejected_until <= now) return true;
  }
  return false;
}

void EventStreamPool::SweepDeadlines() {
  const auto now = std::chrono::system_clock::now();
  for (auto& slot : slots_) slot->Sweep(now);
  // Forget workers ejected long ago that hold no stream (replicas that went away).
  const auto steady_now = std::chrono::steady_clock::now();
  absl::MutexLock lock(&peers_mu_);
  const size_t before = peers_.size();
  absl::erase_if(peers_, [&](const auto& entry) {
    return entry.second.live_streams <= 0 && entry.second.ejected_until + kMaxEjection < steady_now;
  });
  if (peers_.size() != before) UpdateSuspectsLocked();
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
