#include "runtime/src/gateway_client_impl.h"

#include <chrono>
#include <utility>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status_util.h"
#include "runtime/src/convert.h"

namespace fngate::runtime {
namespace {

// Stands in for the gateway when an event named none and the worker has no --gateway: every
// call explains that instead of dialling "".
class NoGatewayClient final : public GatewayClient {
 public:
  // GatewayClient
  absl::StatusOr<SendResult> Send(const To&, Payload) override { return Error(); }
  absl::StatusOr<CloseResult> Close(const To&, int, std::string_view) override { return Error(); }
  absl::StatusOr<v1::ConnectionInfo> GetConnection(std::string_view) override { return Error(); }
  const std::string& address() const override { return address_; }

 private:
  static absl::Status Error() {
    return absl::FailedPreconditionError(
        "no gateway address: the event carried none and the worker has no --gateway");
  }

  const std::string address_;
};

// Process-wide caches. Leaked on purpose: clients handed out by Context::Gateway() may be used
// by threads that outlive main(), and gRPC objects must not be destroyed during static teardown.
struct Caches {
  absl::Mutex mutex;
  absl::flat_hash_map<std::string, std::shared_ptr<grpc::Channel>> channels ABSL_GUARDED_BY(mutex);
  absl::flat_hash_map<std::string, std::unique_ptr<GatewayClient>> clients ABSL_GUARDED_BY(mutex);
};

Caches& GetCaches() {
  static Caches* caches = new Caches;
  return *caches;
}

std::shared_ptr<grpc::Channel> SharedChannelLocked(Caches& caches, const std::string& address)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(caches.mutex) {
  std::shared_ptr<grpc::Channel>& channel = caches.channels[address];
  // Plaintext: the control port is loopback-only until credentials arrive (security issue).
  // Creating a channel does not connect; the first call does.
  if (channel == nullptr) {
    channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  }
  return channel;
}

}  // namespace

GatewayClientImpl::GatewayClientImpl(std::string address, std::shared_ptr<grpc::Channel> channel,
                                     GatewayClientOptions options)
    : address_(std::move(address)),
      options_(options),
      stub_(v1::GatewayControl::NewStub(std::move(channel))) {}

std::unique_ptr<grpc::ClientContext> GatewayClientImpl::NewCallContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoNanoseconds(options_.deadline));
  return context;
}

absl::Status GatewayClientImpl::CallError(const grpc::Status& status) const {
  absl::Status error = FromGrpcStatus(status);
  return absl::Status(error.code(), absl::StrCat("gateway ", address_, ": ", error.message()));
}

absl::StatusOr<SendResult> GatewayClientImpl::Send(const To& to, Payload payload) {
  if (to.empty()) return SendResult{};
  v1::SendRequest request;
  ToProto(to, *request.mutable_target());
  ToProto(std::move(payload), *request.mutable_payload());
  v1::SendResponse response;
  const grpc::Status status = stub_->Send(NewCallContext().get(), request, &response);
  if (!status.ok()) return CallError(status);

  SendResult result;
  result.delivered = response.delivered();
  result.gone_connection_ids.assign(response.gone_connection_ids().begin(),
                                    response.gone_connection_ids().end());
  result.overflowed_connection_ids.assign(response.overflowed_connection_ids().begin(),
                                          response.overflowed_connection_ids().end());
  return result;
}

absl::StatusOr<CloseResult> GatewayClientImpl::Close(const To& to, int code,
                                                     std::string_view reason) {
  if (to.empty()) return CloseResult{};
  v1::CloseRequest request;
  ToProto(to, *request.mutable_target());
  request.set_code(code);
  request.set_reason(std::string(reason));
  v1::CloseResponse response;
  const grpc::Status status = stub_->Close(NewCallContext().get(), request, &response);
  if (!status.ok()) return CallError(status);

  CloseResult result;
  result.closed = response.closed();
  result.gone_connection_ids.assign(response.gone_connection_ids().begin(),
                                    response.gone_connection_ids().end());
  return result;
}

absl::StatusOr<v1::ConnectionInfo> GatewayClientImpl::GetConnection(
    std::string_view connection_id) {
  if (connection_id.empty()) return absl::InvalidArgumentError("connection_id is empty");
  v1::GetConnectionRequest request;
  request.set_connection_id(std::string(connection_id));
  v1::ConnectionInfo response;
  const grpc::Status status = stub_->GetConnection(NewCallContext().get(), request, &response);
  if (!status.ok()) return CallError(status);
  return response;
}

absl::StatusOr<std::unique_ptr<GatewayClient>> GatewayClient::Create(std::string_view address,
                                                                     GatewayClientOptions options) {
  if (address.empty()) return absl::InvalidArgumentError("gateway address is empty");
  std::string key(address);
  Caches& caches = GetCaches();
  std::shared_ptr<grpc::Channel> channel;
  {
    absl::MutexLock lock(&caches.mutex);
    channel = SharedChannelLocked(caches, key);
  }
  return std::make_unique<GatewayClientImpl>(std::move(key), std::move(channel), options);
}

GatewayClient& SharedGatewayClient(const std::string& address) {
  if (address.empty()) {
    static NoGatewayClient* no_gateway = new NoGatewayClient;
    return *no_gateway;
  }
  Caches& caches = GetCaches();
  absl::MutexLock lock(&caches.mutex);
  std::unique_ptr<GatewayClient>& client = caches.clients[address];
  if (client == nullptr) {
    client = std::make_unique<GatewayClientImpl>(address, SharedChannelLocked(caches, address),
                                                 GatewayClientOptions{});
  }
  return *client;
}

}  // namespace fngate::runtime
