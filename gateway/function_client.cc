#include "gateway/function_client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "common/log.h"

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
struct FunctionClient::Call {
  grpc::ClientContext context;
  Request request;
  Response response;
  Done<Response> done;
  std::chrono::steady_clock::time_point started;
};

FunctionClient::FunctionClient(const FunctionSettings& function,
                               const DeadlineSettings& deadlines, uint64_t max_message_bytes,
                               FunctionMetrics& metrics)
    : function_(function), deadlines_(deadlines), metrics_(metrics) {
  grpc::ChannelArguments args;
  // Every address the target resolves to is a replica; spread calls over the ready ones.
  args.SetServiceConfigJSON(R"({"loadBalancingConfig": [{"round_robin": {}}]})");
  // A reply may carry several client-sized messages.
  const uint64_t max_reply = std::max<uint64_t>(4u << 20, 4 * max_message_bytes + (64 << 10));
  args.SetMaxReceiveMessageSize(static_cast<int>(std::min<uint64_t>(max_reply, INT32_MAX)));
  args.SetMaxSendMessageSize(-1);
  // A restarted worker is found again within a second or two, not gRPC's default two minutes.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  channel_ = grpc::CreateCustomChannel(function.target, grpc::InsecureChannelCredentials(), args);
  stub_ = v1::FunctionService::NewStub(channel_);
}

FunctionClient::~FunctionClient() { Shutdown(std::chrono::seconds(5)); }

template <typename Request, typename Response, typename StartFn>
void FunctionClient::Start(EventKind kind, Request&& request, Done<Response> done,
                           StartFn start) {
  auto* call = new Call<Request, Response>();
  call->request = std::move(request);
  call->done = std::move(done);
  std::chrono::milliseconds deadline = deadlines_.message;
  switch (kind) {
    case EventKind::kConnect: deadline = deadlines_.connect; break;
    case EventKind::kMessage: deadline = deadlines_.message; break;
    case EventKind::kDisconnect: deadline = deadlines_.disconnect; break;
    case EventKind::kError: deadline = deadlines_.error; break;
  }
  call->context.set_deadline(std::chrono::system_clock::now() + deadline);
  call->started = std::chrono::steady_clock::now();
  {
    absl::MutexLock lock(&mu_);
    in_flight_.insert(&call->context);
  }
  start(stub_->async(), &call->context, &call->request, &call->response,
        [this, call, kind](grpc::Status status) {
          const int k = static_cast<int>(kind);
          metrics_.call_latency[k].Observe(std::chrono::steady_clock::now() - call->started);
          if (!status.ok()) {
            metrics_.call_errors[k][static_cast<int>(Classify(status))].fetch_add(
                1, std::memory_order_relaxed);
          }
          call->done(status, call->response);
          {
            absl::MutexLock lock(&mu_);
            in_flight_.erase(&call->context);
          }
          delete call;
        });
}

void FunctionClient::OnConnect(v1::ConnectEvent event, Done<v1::ConnectResponse> done) {
  Start<v1::ConnectEvent, v1::ConnectResponse>(
      EventKind::kConnect, std::move(event), std::move(done),
      [](auto* async, auto* context, auto* request, auto* response, auto callback) {
        async->OnConnect(context, request, response, std::move(callback));
      });
}

void FunctionClient::OnMessage(v1::MessageEvent event, Done<v1::MessageResponse> done) {
  Start<v1::MessageEvent, v1::MessageResponse>(
      EventKind::kMessage, std::move(event), std::move(done),
      [](auto* async, auto* context, auto* request, auto* response, auto callback) {
        async->OnMessage(context, request, response, std::move(callback));
      });
}

void FunctionClient::OnDisconnect(v1::DisconnectEvent event,
                                  Done<v1::DisconnectResponse> done) {
  Start<v1::DisconnectEvent, v1::DisconnectResponse>(
      EventKind::kDisconnect, std::move(event), std::move(done),
      [](auto* async, auto* context, auto* request, auto* response, auto callback) {
        async->OnDisconnect(context, request, response, std::move(callback));
      });
}

void FunctionClient::OnError(v1::ErrorEvent event, Done<v1::ErrorResponse> done) {
  Start<v1::ErrorEvent, v1::ErrorResponse>(
      EventKind::kError, std::move(event), std::move(done),
      [](auto* async, auto* context, auto* request, auto* response, auto callback) {
        async->OnError(context, request, response, std::move(callback));
      });
}

bool FunctionClient::Reachable() {
  return channel_->GetState(/*try_to_connect=*/true) == GRPC_CHANNEL_READY;
}

void FunctionClient::Shutdown(std::chrono::milliseconds wait) {
  absl::MutexLock lock(&mu_);
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
