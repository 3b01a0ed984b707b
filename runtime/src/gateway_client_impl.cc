#include "runtime/src/gateway_client_impl.h"

#include <chrono>
#include <utility>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status_util.h"
#include "runtime/src/convert.h"

namespace fngate::runtime {
namespace {

// Stands in for a gateway that cannot be called: every call returns `error` instead (an event
// that named no gateway on a worker without --gateway).
class FailingGatewayClient final : public GatewayClient {
 public:
  FailingGatewayClient(std::string address, absl::Status error)
      : address_(std::move(address)), error_(std::move(error)) {}

  // GatewayClient
  absl::StatusOr<SendResult> Send(const To&, Payload) override { return error_; }
  absl::StatusOr<CloseResult> Close(const To&, int, std::string_view) override { return error_; }
  absl::StatusOr<v1::ConnectionInfo> GetConnection(std::string_view) override { return error_; }
  const std::string& address() const override { return address_; }

 private:
  const std::string address_;
  const absl::Status error_;
};

// GatewayCredentials with the files read: what a channel is made of.
struct ChannelSecurity {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string server_name;
  // Tells channels with different TLS apart in the cache (file names, not contents).
  std::string cache_key;
};

absl::Status ReadPemFile(const char* what, const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot read '", path, "': ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  out = text.str();
  return absl::OkStatus();
}

absl::StatusOr<ChannelSecurity> MakeChannelSecurity(const GatewayCredentials& c) {
  ChannelSecurity security;
  if (c.tls_ca_file.empty() && c.tls_cert_file.empty() && c.tls_key_file.empty()) {
    // Plaintext: the gateway's control port is on loopback (or a trusted network).
    security.credentials = grpc::InsecureChannelCredentials();
    return security;
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "gateway TLS: a client certificate and its key go together (tls_cert_file, "
        "tls_key_file)");
  }
  grpc::SslCredentialsOptions options;  // An empty CA: gRPC's default roots.
  if (!c.tls_ca_file.empty()) {
    if (absl::Status s = ReadPemFile("gateway TLS CA", c.tls_ca_file, options.pem_root_certs);
        !s.ok()) {
      return s;
    }
  }
  if (!c.tls_cert_file.empty()) {
    if (absl::Status s = ReadPemFile("gateway TLS certificate", c.tls_cert_file,
                                     options.pem_cert_chain);
        !s.ok()) {
      return s;
    }
    if (absl::Status s =
            ReadPemFile("gateway TLS key", c.tls_key_file, options.pem_private_key);
        !s.ok()) {
      return s;
    }
  }
  security.credentials = grpc::SslCredentials(options);
  security.server_name = c.tls_server_name;
  security.cache_key = absl::StrCat("tls:", c.tls_ca_file, "|", c.tls_cert_file, "|",
                                    c.tls_key_file, "|", c.tls_server_name);
  return security;
}

// Process-wide caches. Leaked on purpose: clients handed out by Context::Gateway() may be used
// by threads that outlive main(), and gRPC objects must not be destroyed during static teardown.
struct Caches {
  absl::Mutex mutex;
  absl::flat_hash_map<std::string, std::shared_ptr<grpc::Channel>> channels ABSL_GUARDED_BY(mutex);
  absl::flat_hash_map<std::string, std::unique_ptr<GatewayClient>> clients ABSL_GUARDED_BY(mutex);
  // The shared clients' credentials (SetSharedGatewayCredentials).
  GatewayCredentials shared_credentials ABSL_GUARDED_BY(mutex);
  ChannelSecurity shared_security ABSL_GUARDED_BY(mutex){grpc::InsecureChannelCredentials(), "",
                                                          ""};
};

Caches& GetCaches() {
  static Caches* caches = new Caches;
  return *caches;
}

std::shared_ptr<grpc::Channel> SharedChannelLocked(Caches& caches, const std::string& address,
                                                   const ChannelSecurity& security)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(caches.mutex) {
  std::shared_ptr<grpc::Channel>& channel =
      caches.channels[absl::StrCat(address, "\n", security.cache_key)];
  // Creating a channel does not connect; the first call does.
  if (channel == nullptr) {
    grpc::ChannelArguments args;
    if (!security.server_name.empty()) args.SetSslTargetNameOverride(security.server_name);
    channel = grpc::CreateCustomChannel(address, security.credentials, args);
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
  if (!options_.credentials.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.credentials.token));
  }
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
  absl::StatusOr<ChannelSecurity> security = MakeChannelSecurity(options.credentials);
  if (!security.ok()) return security.status();
  Caches& caches = GetCaches();
  std::shared_ptr<grpc::Channel> channel;
  {
    absl::MutexLock lock(&caches.mutex);
    channel = SharedChannelLocked(caches, key, *security);
  }
  return std::make_unique<GatewayClientImpl>(std::move(key), std::move(channel), options);
}

GatewayClient& SharedGatewayClient(const std::string& address) {
  if (address.empty()) {
    static FailingGatewayClient* no_gateway = new FailingGatewayClient(
        "", absl::FailedPreconditionError(
                "no gateway address: the event carried none and the worker has no --gateway"));
    return *no_gateway;
  }
  Caches& caches = GetCaches();
  absl::MutexLock lock(&caches.mutex);
  std::unique_ptr<GatewayClient>& client = caches.clients[address];
  if (client == nullptr) {
    GatewayClientOptions options;
    options.credentials = caches.shared_credentials;
    client = std::make_unique<GatewayClientImpl>(
        address, SharedChannelLocked(caches, address, caches.shared_security), options);
  }
  return *client;
}

absl::Status SetSharedGatewayCredentials(const GatewayCredentials& credentials) {
  absl::StatusOr<ChannelSecurity> security = MakeChannelSecurity(credentials);
  if (!security.ok()) return security.status();
  Caches& caches = GetCaches();
  absl::MutexLock lock(&caches.mutex);
  caches.shared_credentials = credentials;
  caches.shared_security = *std::move(security);
  return absl::OkStatus();
}

}  // namespace fngate::runtime
