#include "runtime/src/gateway_client_impl.h"

#include <chrono>
#include <cstdint>
#include <limits>
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
  absl::StatusOr<EmitResult> Emit(const To&, std::string_view, std::string_view,
                                  const EmitOptions&) override {
    return error_;
  }
  absl::StatusOr<ChangeResult> JoinGroups(const To&, const std::vector<std::string>&) override {
    return error_;
  }
  absl::StatusOr<ChangeResult> LeaveGroups(const To&, const std::vector<std::string>&) override {
    return error_;
  }
  absl::StatusOr<ChangeResult> BindUser(const To&, const IdentityChange&) override {
    return error_;
  }
  absl::StatusOr<v1::ConnectionInfo> GetConnection(std::string_view) override { return error_; }
  absl::StatusOr<ConnectionPage> ListConnections(const ListOptions&) override { return error_; }
  absl::StatusOr<SignedUrl> SignUrl(const SignUrlOptions&) override { return error_; }
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

void CopyIds(const google::protobuf::RepeatedPtrField<std::string>& from,
             std::vector<std::string>& to) {
  to.assign(from.begin(), from.end());
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

absl::StatusOr<EmitResult> GatewayClientImpl::Emit(const To& to, std::string_view name,
                                                   std::string_view data_json,
                                                   const EmitOptions& options) {
  if (to.empty()) return EmitResult{};
  v1::EmitRequest request;
  ToProto(to, *request.mutable_target());
  request.set_name(std::string(name));
  request.set_data_json(std::string(data_json));
  if (options.close) {
    request.set_close(true);
    request.set_code(options.code);
    request.set_reason(options.reason);
  }
  v1::EmitResponse response;
  const grpc::Status status = stub_->Emit(NewCallContext().get(), request, &response);
  if (!status.ok()) return CallError(status);

  EmitResult result;
  result.delivered = response.delivered();
  CopyIds(response.gone_connection_ids(), result.gone_connection_ids);
  CopyIds(response.overflowed_connection_ids(), result.overflowed_connection_ids);
  return result;
}

absl::StatusOr<ChangeResult> GatewayClientImpl::ChangeGroups(
    const To& to, const std::vector<std::string>& groups, bool join) {
  if (to.empty()) return ChangeResult{};
  v1::GroupsRequest request;
  ToProto(to, *request.mutable_target());
  request.mutable_groups()->Add(groups.begin(), groups.end());
  v1::GroupsResponse response;
  const grpc::Status status =
      join ? stub_->JoinGroups(NewCallContext().get(), request, &response)
           : stub_->LeaveGroups(NewCallContext().get(), request, &response);
  if (!status.ok()) return CallError(status);
  ChangeResult result;
  result.affected = response.affected();
  CopyIds(response.gone_connection_ids(), result.gone_connection_ids);
  return result;
}

absl::StatusOr<ChangeResult> GatewayClientImpl::JoinGroups(const To& to,
                                                           const std::vector<std::string>& groups) {
  return ChangeGroups(to, groups, /*join=*/true);
}

absl::StatusOr<ChangeResult> GatewayClientImpl::LeaveGroups(
    const To& to, const std::vector<std::string>& groups) {
  return ChangeGroups(to, groups, /*join=*/false);
}

absl::StatusOr<ChangeResult> GatewayClientImpl::BindUser(const To& to,
                                                         const IdentityChange& change) {
  if (to.empty()) return ChangeResult{};
  v1::BindRequest request;
  ToProto(to, *request.mutable_target());
  ToProto(change, *request.mutable_identity());
  v1::BindResponse response;
  const grpc::Status status = stub_->BindUser(NewCallContext().get(), request, &response);
  if (!status.ok()) return CallError(status);
  ChangeResult result;
  result.affected = response.affected();
  CopyIds(response.gone_connection_ids(), result.gone_connection_ids);
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

absl::StatusOr<ConnectionPage> GatewayClientImpl::ListConnections(const ListOptions& options) {
  v1::ListConnectionsRequest request;
  request.set_function(options.function);
  request.set_user_id(options.user_id);
  request.set_group(options.group);
  request.set_app_id(options.app_id);
  request.set_channel(options.channel);
  request.set_page_size(options.page_size);
  request.set_page_token(options.page_token);
  v1::ListConnectionsResponse response;
  const grpc::Status status = stub_->ListConnections(NewCallContext().get(), request, &response);
  if (!status.ok()) return CallError(status);
  ConnectionPage page;
  page.connections.reserve(response.connections_size());
  for (v1::ConnectionInfo& row : *response.mutable_connections()) {
    page.connections.push_back(std::move(row));
  }
  page.next_page_token = std::move(*response.mutable_next_page_token());
  return page;
}

absl::StatusOr<SignedUrl> GatewayClientImpl::SignUrl(const SignUrlOptions& options) {
  if (options.ttl < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ttl: must not be negative");
  }
  // Whole seconds, rounded up, so that a URL never lives shorter than asked.
  const int64_t ttl_seconds = absl::ToInt64Seconds(absl::Ceil(options.ttl, absl::Seconds(1)));
  if (ttl_seconds > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("ttl: too long");
  }
  v1::SignUrlRequest request;
  request.set_function(options.function);
  request.mutable_query()->insert(options.query.begin(), options.query.end());
  request.set_user_id(options.user_id);
  request.set_ttl_seconds(static_cast<uint32_t>(ttl_seconds));
  v1::SignUrlResponse response;
  const grpc::Status status = stub_->SignUrl(NewCallContext().get(), request, &response);
  if (!status.ok()) return CallError(status);
  SignedUrl url;
  url.url = std::move(*response.mutable_url());
  url.expires_at = absl::FromUnixSeconds(response.expires_at().seconds()) +
                   absl::Nanoseconds(response.expires_at().nanos());
  url.key_id = std::move(*response.mutable_key_id());
  return url;
}

absl::StatusOr<EmitResult> GatewayClient::ForceLogout(const To& to, std::string_view data_json) {
  EmitOptions close;
  close.close = true;
  close.code = kForceLogoutCloseCode;
  close.reason = std::string(kForceLogoutCloseReason);
  return Emit(to, kForceLogoutEvent, data_json, close);
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
