#include "gateway/function_client.h"

#include <grpcpp/alarm.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/hash/hash.h"
#include "common/log.h"
#include "gateway/tls.h"

namespace fngate::gateway {
namespace {

CallErrorKind Classify(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return CallErrorKind::kNoWorker;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return CallErrorKind::kDeadline;
    default:
      return CallErrorKind::kFunctionError;
  }
}

// Round robin over the replicas, with gRPC's outlier detection around it: a replica that fails
// half or more of its calls within a second (at least 10 of them) is ejected, first for 1 s
// and longer when it happens again (up to 30 s), at most half of the replicas at once, and
// never when there are fewer than two. Every non-OK status counts there, function errors
// too: a function that fails most calls on every replica has half of them rotated out, which
// concentrates load but loses nothing. (Events streams are judged by the pool, which only
// counts UNAVAILABLE and RESOURCE_EXHAUSTED.) gRPC 1.51 registers the policy under this
// "_experimental" name without any environment switch.
constexpr char kServiceConfig[] = R"({
  "loadBalancingConfig": [{"outlier_detection_experimental": {
    "interval": "1s",
    "baseEjectionTime": "1s",
    "maxEjectionTime": "30s",
    "maxEjectionPercent": 50,
    "failurePercentageEjection": {
      "threshold": 50, "enforcementPercentage": 100, "minimumHosts": 2, "requestVolume": 10},
    "childPolicy": [{"round_robin": {}}]
  }}]
})";

// A disconnect event is sent again after 50 ms, 100 ms, ... up to this.
constexpr auto kFirstRedelivery = std::chrono::milliseconds(50);
constexpr auto kMaxRedelivery = std::chrono::milliseconds(1000);

}  // namespace

struct FunctionClient::Redelivery {
  size_t key = 0;
  v1::StreamEvent event;  // Copied for each attempt.
  std::chrono::system_clock::time_point deadline;
  StreamDone done;
  int attempts = 0;
  std::unique_ptr<grpc::Alarm> alarm;  // The wait before the next attempt.
};

template <typename Request, typename Response>
struct FunctionClient::UnaryCall {
  grpc::ClientContext context;
  Request request;
  v1::StreamReply reply;
  Response empty_reply;  // Where replies with nothing in them land (disconnect, error).
  StreamDone done;
};

FunctionClient::FunctionClient(const FunctionSettings& function,
                               const DeadlineSettings& deadlines, uint64_t max_message_bytes,
                               FunctionMetrics& metrics, grpc::CompletionQueue* stream_cq,
                               EventStreamPool::Defer defer, const ClientTlsSettings& tls)
    : function_(function), deadlines_(deadlines), metrics_(metrics) {
  grpc::ChannelArguments args;
  // Every address the target resolves to is a replica; spread calls (and streams) over the
  // ready ones, minus those ejected for failing.
  args.SetServiceConfigJSON(kServiceConfig);
  // A reply batch may carry many client-sized messages.
  const uint64_t max_reply = std::max<uint64_t>(64u << 20, 4 * max_message_bytes + (64 << 10));
  args.SetMaxReceiveMessageSize(static_cast<int>(std::min<uint64_t>(max_reply, INT32_MAX)));
  args.SetMaxSendMessageSize(-1);
  // A restarted worker is found again within a second or two, not gRPC's default two minutes.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // Find a dead worker host in seconds rather than at TCP's timeout. Workers must accept pings
  // this often (the runtime does; other servers: grpc.http2.min_ping_interval_without_data_ms).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  if (!tls.server_name.empty()) args.SetSslTargetNameOverride(tls.server_name);
  channel_ = grpc::CreateCustomChannel(function.target, GrpcChannelCredentials(tls), args);
  stub_ = v1::FunctionService::NewStub(channel_);
  // Connect to every replica now, not at the first event: streams opened then spread over all
  // of them instead of piling onto whichever connected first.
  channel_->GetState(/*try_to_connect=*/true);
  if (function.transport != FunctionTransport::kUnary) {
    streams_ = std::make_unique<EventStreamPool>(
        *stub_, function.name, function.streams, function.stream_max_age,
        std::max(deadlines.message, deadlines.connect),
        [this](v1::StreamEvent event, std::chrono::system_clock::time_point deadline,
               StreamDone done) { CallUnary(std::move(event), deadline, std::move(done)); },
        metrics.worker_ejections, stream_cq, std::move(defer));
  }
}

FunctionClient::~FunctionClient() { Shutdown(std::chrono::seconds(5)); }

std::chrono::milliseconds FunctionClient::DeadlineFor(EventKind kind) const {
  switch (kind) {
    case EventKind::kConnect: return deadlines_.connect;
    case EventKind::kMessage: return deadlines_.message;
    case EventKind::kDisconnect: return deadlines_.disconnect;
    case EventKind::kError: return deadlines_.error;
  }
  return deadlines_.message;
}

void FunctionClient::Call(EventKind kind, const std::string& connection_id,
                          v1::StreamEvent event, StreamDone done) {
  const auto started = std::chrono::steady_clock::now();
  StreamDone measured = [this, kind, started, connection_id, done = std::move(done)](
                            const grpc::Status& reported, v1::StreamReply& reply) mutable {
    // A worker may leave out the events it has no use for (generated services answer
    // UNIMPLEMENTED): connect then means accept, disconnect and error mean nothing to do.
    // A message event is different: a worker that cannot take messages is misconfigured.
    const grpc::Status status =
        reported.error_code() == grpc::StatusCode::UNIMPLEMENTED && kind != EventKind::kMessage
            ? grpc::Status::OK
            : reported;
    const int k = static_cast<int>(kind);
    metrics_.call_latency[k].Observe(std::chrono::steady_clock::now() - started);
    if (!status.ok()) {
      metrics_.call_errors[k][static_cast<int>(Classify(status))].fetch_add(
          1, std::memory_order_relaxed);
    }
    if (!status.ok() && kind == EventKind::kDisconnect) {
      // Every way out of Redeliver ends here: the one report of a lost disconnect.
      metrics_.disconnects_lost.fetch_add(1, std::memory_order_relaxed);
      FNGATE_LOG(Warning) << "[conn=" << connection_id << "] disconnect event lost: no worker "
                          << "confirmed it (" << status.error_code() << " "
                          << status.error_message() << ")";
    }
    done(status, reply);
  };
  const auto deadline = std::chrono::system_clock::now() + DeadlineFor(kind);
  // One connection, one stream: its events stay in order on the wire.
  const size_t key = absl::HashOf(connection_id);
  if (kind != EventKind::kDisconnect) return Send(key, std::move(event), deadline, std::move(measured));
  auto r = std::make_shared<Redelivery>();
  r->key = key;
  r->event = std::move(event);
  r->deadline = deadline;
  r->done = std::move(measured);
  Redeliver(std::move(r));
}

void FunctionClient::Send(size_t key, v1::StreamEvent event,
                          std::chrono::system_clock::time_point deadline, StreamDone done) {
  if (streams_ != nullptr && !streams_->unimplemented()) {
    streams_->Submit(key, std::move(event), deadline, std::move(done));
  } else {
    CallUnary(std::move(event), deadline, std::move(done));
  }
}

void FunctionClient::Redeliver(std::shared_ptr<Redelivery> r) {
  Send(r->key, v1::StreamEvent(r->event), r->deadline,
       [this, r](const grpc::Status& status, v1::StreamReply& reply) {
         if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
           const auto wait = std::min<std::chrono::milliseconds>(
               kMaxRedelivery, kFirstRedelivery * (1 << std::min(r->attempts, 5)));
           ++r->attempts;
           const auto at = std::chrono::system_clock::now() + wait;
           if (at < r->deadline && ScheduleRedelivery(r, at)) {
             FNGATE_LOG(Debug) << "[conn=" << r->event.disconnect().connection().connection_id()
                               << "] disconnect event not confirmed (" << status.error_message()
                               << "); again in " << wait.count() << " ms";
             return;
           }
         }
         r->done(status, reply);
       });
}

bool FunctionClient::ScheduleRedelivery(const std::shared_ptr<Redelivery>& r,
                                        std::chrono::system_clock::time_point at) {
  absl::MutexLock lock(&mu_);
  if (closed_) return false;
  waiting_.insert(r.get());
  r->alarm = std::make_unique<grpc::Alarm>();
  // Runs on a gRPC executor thread, with ok=false when Shutdown() cancelled it.
  r->alarm->Set(at, [this, r](bool ok) {
    bool closed;
    {
      absl::MutexLock lock(&mu_);
      waiting_.erase(r.get());
      closed = closed_;
    }
    // Safe inside its own callback (the alarm holds itself until the callback returns), and
    // it breaks the cycle r -> alarm -> callback -> r.
    r->alarm.reset();
    if (ok && !closed) return Redeliver(r);
    v1::StreamReply empty;
    r->done(grpc::Status(grpc::StatusCode::CANCELLED, "gateway shutting down"), empty);
  });
  return true;
}

template <typename Request, typename Response, typename StartFn>
void FunctionClient::StartUnary(Request&& request, std::chrono::system_clock::time_point deadline,
                                StreamDone done, StartFn start) {
  auto* call = new UnaryCall<Request, Response>();
  call->request = std::move(request);
  call->done = std::move(done);
  call->context.set_deadline(deadline);
  // While no worker is connected, wait for one (up to the deadline) instead of failing at once.
  call->context.set_wait_for_ready(true);
  {
    absl::ReleasableMutexLock lock(&mu_);
    if (closed_) {
      // After Shutdown() nothing may call back later: fail now, on this thread.
      lock.Release();
      v1::StreamReply empty;
      call->done(grpc::Status(grpc::StatusCode::CANCELLED, "gateway shutting down"), empty);
      delete call;
      return;
    }
    in_flight_.insert(&call->context);
  }
  Response* response = nullptr;
  if constexpr (std::is_same_v<Response, v1::ConnectResponse>) {
    response = call->reply.mutable_connect();
  } else if constexpr (std::is_same_v<Response, v1::MessageResponse>) {
    response = call->reply.mutable_message();
  } else {
    response = &call->empty_reply;
  }
  start(stub_->async(), &call->context, &call->request, response,
        [this, call](grpc::Status status) {
          if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
              channel_->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_READY) {
            // It waited for a worker the whole time, as far as one can tell: no worker, which
            // is what the client and the metrics should hear.
            status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                  "no worker took the event before its deadline");
          }
          if (!status.ok()) call->reply.clear_reply();
          call->done(status, call->reply);
          {
            absl::MutexLock lock(&mu_);
            in_flight_.erase(&call->context);
          }
          delete call;
        });
}

void FunctionClient::CallUnary(v1::StreamEvent event,
                               std::chrono::system_clock::time_point deadline, StreamDone done) {
  // One generic lambda per method: the generated async class's overloads rule out member
  // pointers.
#define FNGATE_UNARY(Method) \
  [](auto* async, auto* context, auto* request, auto* response, auto callback) { \
    async->Method(context, request, response, std::move(callback));            \
  }
  switch (event.event_case()) {
    case v1::StreamEvent::kConnect:
      return StartUnary<v1::ConnectEvent, v1::ConnectResponse>(
          std::move(*event.mutable_connect()), deadline, std::move(done),
          FNGATE_UNARY(OnConnect));
    case v1::StreamEvent::kMessage:
      return StartUnary<v1::MessageEvent, v1::MessageResponse>(
          std::move(*event.mutable_message()), deadline, std::move(done),
          FNGATE_UNARY(OnMessage));
    case v1::StreamEvent::kDisconnect:
      return StartUnary<v1::DisconnectEvent, v1::DisconnectResponse>(
          std::move(*event.mutable_disconnect()), deadline, std::move(done),
          FNGATE_UNARY(OnDisconnect));
    case v1::StreamEvent::kError:
      return StartUnary<v1::ErrorEvent, v1::ErrorResponse>(
          std::move(*event.mutable_error()), deadline, std::move(done), FNGATE_UNARY(OnError));
#undef FNGATE_UNARY
    case v1::StreamEvent::EVENT_NOT_SET:
      break;
  }
  v1::StreamReply empty;
  done(grpc::Status(grpc::StatusCode::INTERNAL, "empty event"), empty);
}

void FunctionClient::OnConnect(v1::ConnectEvent event, Done<v1::ConnectResponse> done) {
  v1::StreamEvent wrapped;
  const std::string id = event.connection().connection_id();
  *wrapped.mutable_connect() = std::move(event);
  Call(EventKind::kConnect, id, std::move(wrapped),
       [done = std::move(done)](const grpc::Status& status, v1::StreamReply& reply) mutable {
         done(status, *reply.mutable_connect());
       });
}

void FunctionClient::OnMessage(v1::MessageEvent event, Done<v1::MessageResponse> done) {
  v1::StreamEvent wrapped;
  const std::string id = event.connection().connection_id();
  *wrapped.mutable_message() = std::move(event);
  Call(EventKind::kMessage, id, std::move(wrapped),
       [done = std::move(done)](const grpc::Status& status, v1::StreamReply& reply) mutable {
         done(status, *reply.mutable_message());
       });
}

void FunctionClient::OnDisconnect(v1::DisconnectEvent event,
                                  Done<v1::DisconnectResponse> done) {
  v1::StreamEvent wrapped;
  const std::string id = event.connection().connection_id();
  *wrapped.mutable_disconnect() = std::move(event);
  Call(EventKind::kDisconnect, id, std::move(wrapped),
       [done = std::move(done)](const grpc::Status& status, v1::StreamReply&) mutable {
         v1::DisconnectResponse empty;
         done(status, empty);
       });
}

void FunctionClient::OnError(v1::ErrorEvent event, Done<v1::ErrorResponse> done) {
  v1::StreamEvent wrapped;
  const std::string id = event.connection().connection_id();
  *wrapped.mutable_error() = std::move(event);
  Call(EventKind::kError, id, std::move(wrapped),
       [done = std::move(done)](const grpc::Status& status, v1::StreamReply&) mutable {
         v1::ErrorResponse empty;
         done(status, empty);
       });
}

bool FunctionClient::Reachable() {
  return channel_->GetState(/*try_to_connect=*/true) == GRPC_CHANNEL_READY;
}

void FunctionClient::Shutdown(std::chrono::milliseconds wait) {
  {
    // First, so that a disconnect the pool fails now is not scheduled again.
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  if (streams_ != nullptr) streams_->Shutdown(wait);
  absl::MutexLock lock(&mu_);
  if (!in_flight_.empty() || !waiting_.empty()) {
    FNGATE_LOG(Warning) << "function " << function_.name << ": cancelling " << in_flight_.size()
                        << " event calls still in flight and " << waiting_.size()
                        << " disconnect events waiting to be sent again";
  }
  for (grpc::ClientContext* context : in_flight_) context->TryCancel();
  for (Redelivery* r : waiting_) r->alarm->Cancel();
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_flight_.empty() && waiting_.empty();
  };
  mu_.AwaitWithTimeout(absl::Condition(&idle), absl::FromChrono(wait));
}

}  // namespace fngate::gateway
