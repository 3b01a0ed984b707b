#include "gateway/function_client.h"

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

}  // namespace

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
                               FunctionMetrics& metrics, EventStreamPool::Defer defer,
                               const ClientTlsSettings& tls)
    : function_(function), deadlines_(deadlines), metrics_(metrics) {
  grpc::ChannelArguments args;
  // Every address the target resolves to is a replica; spread calls (and streams) over the
  // ready ones.
  args.SetServiceConfigJSON(R"({"loadBalancingConfig": [{"round_robin": {}}]})");
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
        std::move(defer));
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
  StreamDone measured = [this, kind, started, done = std::move(done)](
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
    done(status, reply);
  };
  const auto deadline = std::chrono::system_clock::now() + DeadlineFor(kind);
  if (streams_ != nullptr && !streams_->unimplemented()) {
    // One connection, one stream: its events stay in order on the wire.
    streams_->Submit(absl::HashOf(connection_id), std::move(event), deadline,
                     std::move(measured));
  } else {
    CallUnary(std::move(event), deadline, std::move(measured));
  }
}

template <typename Request, typename Response, typename StartFn>
void FunctionClient::StartUnary(Request&& request, std::chrono::system_clock::time_point deadline,
                                StreamDone done, StartFn start) {
  auto* call = new UnaryCall<Request, Response>();
  call->request = std::move(request);
  call->done = std::move(done);
  call->context.set_deadline(deadline);
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
  if (streams_ != nullptr) streams_->Shutdown(wait);
  absl::MutexLock lock(&mu_);
  closed_ = true;
  if (!in_flight_.empty()) {
    FNGATE_LOG(Warning) << "function " << function_.name << ": cancelling " << in_flight_.size()
                        << " event calls still in flight";
  }
  for (grpc::ClientContext* context : in_flight_) context->TryCancel();
  mu_.AwaitWithTimeout(absl::Condition(
                           +[](absl::flat_hash_set<grpc::ClientContext*>* s) { return s->empty(); },
                           &in_flight_),
                       absl::FromChrono(wait));
}

}  // namespace fngate::gateway
