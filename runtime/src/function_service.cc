#include "runtime/src/function_service.h"

#include <unistd.h>

#include <cerrno>
#include <deque>
#include <chrono>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/completion_queue_thread.h"
#include "common/log.h"
#include "common/status_util.h"

namespace fngate::runtime {
namespace {

// One `EVENT ...` line on stderr in a single write(2), so that tests reading the log see whole
// lines even while other threads log. Deliberately not common/log.h: the format is a contract
// (no timestamp prefix).
void WriteEventLine(std::string line) {
  line += '\n';
  ssize_t written;
  do {
    written = ::write(STDERR_FILENO, line.data(), line.size());
  } while (written < 0 && errno == EINTR);
}

// The handler's status as the call's status. A non-OK status is for the gateway to handle (it
// fires OnError and logs); here it is only worth a debug line.
grpc::Status Finish(std::string_view handler, const Context& ctx, const absl::Status& status) {
  if (!status.ok()) {
    FNGATE_LOG(Debug) << "[conn=" << ctx.connection_id() << "] " << handler << " returned "
                      << status;
  }
  return ToGrpcStatus(status);
}

}  // namespace

FunctionServiceImpl::FunctionServiceImpl(Function& function, bool log_events,
                                         std::string default_gateway, HandlerPool* handlers)
    : function_(function),
      log_events_(log_events),
      default_gateway_(std::move(default_gateway)),
      handlers_(handlers) {}

CallInfo FunctionServiceImpl::MakeCallInfo(std::chrono::system_clock::time_point deadline) const {
  CallInfo call;
  call.deadline = deadline == std::chrono::system_clock::time_point::max()
                      ? absl::InfiniteFuture()
                      : absl::FromChrono(deadline);
  call.default_gateway = default_gateway_;
  return call;
}

grpc::Status FunctionServiceImpl::HandleConnect(const CallInfo& call,
                                                const v1::ConnectEvent& event,
                                                v1::ConnectResponse& response) {
  if (log_events_) {
    WriteEventLine(absl::StrCat("EVENT kind=connect conn=", event.connection().connection_id(),
                                " request=", event.request_id()));
  }
  ConnectContext ctx(event, response, call);
  return Finish("OnConnect", ctx, function_.OnConnect(ctx));
}

grpc::Status FunctionServiceImpl::HandleMessage(const CallInfo& call,
                                                const v1::MessageEvent& event,
                                                v1::MessageResponse& response) {
  if (log_events_) {
    WriteEventLine(absl::StrCat("EVENT kind=message conn=", event.connection().connection_id(),
                                " request=", event.request_id(), " seq=", event.sequence()));
  }
  MessageContext ctx(event, response, call);
  return Finish("OnMessage", ctx, function_.OnMessage(ctx));
}

grpc::Status FunctionServiceImpl::HandleDisconnect(const CallInfo& call,
                                                   const v1::DisconnectEvent& event) {
  if (log_events_) {
    const std::string_view by = ClosedByName(event.closed_by());
    WriteEventLine(absl::StrCat("EVENT kind=disconnect conn=", event.connection().connection_id(),
                                " request=", event.request_id(), " code=", event.close_code(),
                                " by=", absl::string_view(by.data(), by.size())));
  }
  DisconnectContext ctx(event, call);
  return Finish("OnDisconnect", ctx, function_.OnDisconnect(ctx));
}

grpc::Status FunctionServiceImpl::HandleError(const CallInfo& call, const v1::ErrorEvent& event) {
  if (log_events_) {
    const std::string_view failed = EventKindName(event.failed_event());
    WriteEventLine(absl::StrCat("EVENT kind=error conn=", event.connection().connection_id(),
                                " request=", event.request_id(),
                                " failed=", absl::string_view(failed.data(), failed.size()),
                                " code=", event.code()));
  }
  ErrorContext ctx(event, call);
  function_.OnError(ctx);
  return grpc::Status::OK;
}

grpc::Status FunctionServiceImpl::OnConnect(grpc::ServerContext* context,
                                            const v1::ConnectEvent* event,
                                            v1::ConnectResponse* response) {
  return HandleConnect(MakeCallInfo(context->deadline()), *event, *response);
}

grpc::Status FunctionServiceImpl::OnMessage(grpc::ServerContext* context,
                                            const v1::MessageEvent* event,
                                            v1::MessageResponse* response) {
  return HandleMessage(MakeCallInfo(context->deadline()), *event, *response);
}

grpc::Status FunctionServiceImpl::OnDisconnect(grpc::ServerContext* context,
                                               const v1::DisconnectEvent* event,
                                               v1::DisconnectResponse* /*response*/) {
  return HandleDisconnect(MakeCallInfo(context->deadline()), *event);
}

grpc::Status FunctionServiceImpl::OnError(grpc::ServerContext* context, const v1::ErrorEvent* event,
                                          v1::ErrorResponse* /*response*/) {
  return HandleError(MakeCallInfo(context->deadline()), *event);
}

void FunctionServiceImpl::HandleBatch(v1::EventBatch& batch, v1::ReplyBatch& replies) {
  const auto now = std::chrono::system_clock::now();
  for (v1::StreamEvent& event : *batch.mutable_events()) {
    v1::StreamReply* reply = replies.add_replies();
    reply->set_call_id(event.call_id());
    const auto deadline =
        event.deadline_unix_micros() == 0
            ? std::chrono::system_clock::time_point::max()
            : std::chrono::system_clock::time_point(
                  std::chrono::microseconds(event.deadline_unix_micros()));
    if (deadline < now) {
      // The gateway has given up on it already; running it would only add load.
      reply->set_status_code(static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED));
      reply->set_status_message("deadline passed before the worker got to the event");
      continue;
    }
    const CallInfo call = MakeCallInfo(deadline);
    grpc::Status status;
    switch (event.event_case()) {
      case v1::StreamEvent::kConnect:
        status = HandleConnect(call, event.connect(), *reply->mutable_connect());
        break;
      case v1::StreamEvent::kMessage:
        status = HandleMessage(call, event.message(), *reply->mutable_message());
        break;
      case v1::StreamEvent::kDisconnect:
        status = HandleDisconnect(call, event.disconnect());
        break;
      case v1::StreamEvent::kError:
        status = HandleError(call, event.error());
        break;
      case v1::StreamEvent::EVENT_NOT_SET:
        status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty stream event");
        break;
    }
    if (!status.ok()) {
      reply->clear_reply();  // As a failed unary call: a status, no message.
      reply->set_status_code(static_cast<int>(status.error_code()));
      reply->set_status_message(status.error_message());
    }
  }
}

// One Events stream from a gateway, on gRPC's completion-queue API: every completion of every
// stream comes to the service's one events thread (FunctionServiceImpl::Serve), which reads,
// handles the batch (inline, or on the handler pool) and writes. One thread that polls and
// handles costs one wake-up per batch; the callback API's threads cost two or three (they hand
// each completion to one another), which on one core was most of a small event's cost.
//
// Reads a batch, has it handled, and only then reads the next: a connection's events stay in
// order and a slow worker slows its gateway down instead of queueing without bound. Replies
// are written one batch at a time; what is handled meanwhile joins the next write, up to
// kMaxWriteBytes a write. While more than kMaxPendingBytes of replies wait, no further batch
// is read.
//
// Lifetime: created with a pending request for the next call; deleted on the events thread
// once its Finish completed (or its request failed: the server is shutting down). Every
// operation is started under mu_, from the events thread, a handler thread or Drain().
class EventsStream {
 public:
  static constexpr size_t kMaxWriteBytes = 4 << 20;
  static constexpr size_t kMaxPendingBytes = 16 << 20;

  // The completion-queue tag of one kind of operation of one stream.
  enum class Op : uint8_t { kRequest, kInitialMetadata, kRead, kWrite, kFinish };
  struct Tag final : CompletionQueueThread::Tag {
    // The last thing done with the tag: OnComplete may delete the stream that holds it.
    void OnComplete(bool ok) override { stream->OnComplete(op, ok); }
    EventsStream* stream = nullptr;
    Op op = Op::kRequest;
  };

  // Asks for the next Events call on `cq`.
  static void Request(FunctionServiceImpl& service, grpc::ServerCompletionQueue* cq) {
    auto* stream = new EventsStream(service);  // Counted by its constructor.
    service.RequestEvents(&stream->context_, &stream->rw_, cq, cq,
                          &stream->tags_[static_cast<int>(Op::kRequest)]);
  }

  // Sends the draining notice with the next write (or now, if nothing is being written).
  void Drain() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    drain_notice_ = true;
    FlushLocked();
  }

 private:
  explicit EventsStream(FunctionServiceImpl& service) : service_(service), rw_(&context_) {
    for (int i = 0; i < kOps; ++i) {
      tags_[i].stream = this;
      tags_[i].op = static_cast<Op>(i);
    }
    service_.StreamBorn();
  }
  // Only from its own completions: the last thing done with it.
  ~EventsStream() { service_.StreamGone(); }

  void* TagOf(Op op) { return &tags_[static_cast<int>(op)]; }

  // On the events thread, for each completion.
  void OnComplete(Op op, bool ok) {
    switch (op) {
      case Op::kRequest:
        if (!ok) {  // The server is shutting down: no call came, nothing else is pending.
          delete this;
          return;
        }
        service_.RequestNext();  // The next gateway stream finds a request waiting.
        {
          absl::MutexLock lock(&mu_);
          // Headers at once: they tell the gateway this worker took the stream, so that events
          // it wrote on a stream that was never taken (a worker shutting down) may go elsewhere.
          // Counted as a write: no Write may start before they are out.
          writing_ = true;
          rw_.SendInitialMetadata(TagOf(Op::kInitialMetadata));
          rw_.Read(&in_, TagOf(Op::kRead));
        }
        service_.AddStream(this);  // After the headers: a drain notice waits for them.
        return;
      case Op::kInitialMetadata:
      case Op::kWrite:
        return OnWriteDone(ok);
      case Op::kRead:
        return OnReadDone(ok);
      case Op::kFinish:
        service_.RemoveStream(this);
        delete this;
        return;
    }
  }

  void OnReadDone(bool ok) {
    if (!ok) {  // The gateway half-closed, or the call ended.
      absl::MutexLock lock(&mu_);
      reads_done_ = true;
      MaybeFinishLocked();
      return;
    }
    if (service_.handlers() == nullptr) return HandleAndContinue();
    service_.handlers()->Run([this] { HandleAndContinue(); });
  }

  void OnWriteDone(bool ok) {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      write_failed_ = true;  // The gateway is gone; reads end too.
      pending_.clear();
      pending_bytes_ = 0;
    }
    FlushLocked();
    if (read_paused_ && (write_failed_ || pending_bytes_ <= kMaxPendingBytes)) {
      read_paused_ = false;
      rw_.Read(&in_, TagOf(Op::kRead));
    }
    MaybeFinishLocked();
  }

  // On the events thread or a handler thread; the next read starts only after it.
  void HandleAndContinue() ABSL_LOCKS_EXCLUDED(mu_) {
    v1::ReplyBatch replies;
    service_.HandleBatch(in_, replies);
    in_.Clear();
    absl::MutexLock lock(&mu_);
    if (!write_failed_) {
      for (v1::StreamReply& r : *replies.mutable_replies()) {
        Pending p{{}, r.ByteSizeLong()};
        p.reply.Swap(&r);
        pending_bytes_ += p.bytes;
        pending_.push_back(std::move(p));
      }
    }
    FlushLocked();
    read_paused_ = pending_bytes_ > kMaxPendingBytes;
    if (!read_paused_) rw_.Read(&in_, TagOf(Op::kRead));
  }

  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool notice = drain_notice_ && !drain_notice_sent_;
    if (writing_ || write_failed_ || finished_ || (pending_.empty() && !notice)) return;
    out_.Clear();
    if (notice) {
      out_.set_draining(true);
      drain_notice_sent_ = true;
    }
    size_t bytes = 0;
    while (!pending_.empty() && (out_.replies().empty() || bytes < kMaxWriteBytes)) {
      bytes += pending_.front().bytes;
      pending_bytes_ -= pending_.front().bytes;
      out_.add_replies()->Swap(&pending_.front().reply);
      pending_.pop_front();
    }
    writing_ = true;
    rw_.Write(out_, TagOf(Op::kWrite));
  }

  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reads_done_ && !writing_ && pending_.empty() && !finished_) {
      finished_ = true;
      rw_.Finish(grpc::Status::OK, TagOf(Op::kFinish));
    }
  }

  struct Pending {
    v1::StreamReply reply;
    size_t bytes;
  };
  static constexpr int kOps = 5;

  FunctionServiceImpl& service_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<v1::ReplyBatch, v1::EventBatch> rw_;
  Tag tags_[kOps];
  v1::EventBatch in_;  // Touched by one handler at a time: the next read starts after it.
  absl::Mutex mu_;
  std::deque<Pending> pending_ ABSL_GUARDED_BY(mu_);
  size_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  v1::ReplyBatch out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool drain_notice_ ABSL_GUARDED_BY(mu_) = false;
  bool drain_notice_sent_ ABSL_GUARDED_BY(mu_) = false;
};

void FunctionServiceImpl::Serve(std::unique_ptr<grpc::ServerCompletionQueue> cq) {
  cq_ = cq.get();
  events_ = std::make_unique<CompletionQueueThread>(std::move(cq));
  RequestNext();
}

void FunctionServiceImpl::RequestNext() { EventsStream::Request(*this, cq_); }

void FunctionServiceImpl::StreamBorn() {
  absl::MutexLock lock(&streams_mu_);
  ++alive_;
}

void FunctionServiceImpl::StreamGone() {
  absl::MutexLock lock(&streams_mu_);
  --alive_;
}

void FunctionServiceImpl::StopStreams() {
  if (events_ == nullptr) return;
  // The server's shutdown cancelled every call, but it does not wait for their objects: a
  // stream may still have a completion queued, or a handler running that will start a read or
  // a write. Every one of them now ends (cancelled calls fail their reads, then finish), and
  // the request waiting for the next call fails; only then may the queue shut down, since an
  // operation started on a shut-down queue aborts the process.
  {
    absl::MutexLock lock(&streams_mu_);
    streams_mu_.Await(absl::Condition(
        +[](int* alive) { return *alive == 0; }, &alive_));
  }
  events_.reset();  // Shuts the queue down, takes what is left, joins.
  cq_ = nullptr;
}

FunctionServiceImpl::~FunctionServiceImpl() { StopStreams(); }

void FunctionServiceImpl::AddStream(EventsStream* stream) {
  bool drain = false;
  {
    absl::MutexLock lock(&streams_mu_);
    streams_.insert(stream);
    drain = draining_;
  }
  if (drain) stream->Drain();  // Opened as the worker began to drain.
}

void FunctionServiceImpl::RemoveStream(EventsStream* stream) {
  absl::MutexLock lock(&streams_mu_);
  streams_.erase(stream);
}

void FunctionServiceImpl::StartDrain() {
  // Under the lock: a stream leaves the set (RemoveStream) before it is deleted.
  absl::MutexLock lock(&streams_mu_);
  draining_ = true;
  for (EventsStream* stream : streams_) stream->Drain();
}

}  // namespace fngate::runtime
