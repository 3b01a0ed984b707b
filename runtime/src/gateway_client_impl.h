// File: runtime/src/gateway_client_impl.h
// GatewayClientImpl: GatewayClient over the generated GatewayControl stub, and the process-wide
// caches behind GatewayClient::Create() (one channel per address) and Context::Gateway() (one
// client per address). A deployment has a handful of gateways, so the caches stay small.
// Everything here is thread-safe; cached objects are never destroyed, so
// references to them stay valid until the process exits.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/channel.h>

#include "fngate/runtime/gateway_client.h"
#include "fngate/v1/control.grpc.pb.h"

namespace fngate::runtime {

class GatewayClientImpl final : public GatewayClient {
 public:
  // `options.credentials` serve only for the token here: `channel` already carries the TLS.
  GatewayClientImpl(std::string address, std::shared_ptr<grpc::Channel> channel,
                    GatewayClientOptions options);

  // GatewayClient
  absl::StatusOr<SendResult> Send(const To& to, Payload payload) override;
  absl::StatusOr<CloseResult> Close(const To& to, int code, std::string_view reason) override;
  absl::StatusOr<EmitResult> Emit(const To& to, std::string_view name,
                                  std::string_view data_json,
                                  const EmitOptions& options) override;
  absl::StatusOr<ChangeResult> JoinGroups(const To& to,
                                          const std::vector<std::string>& groups) override;
  absl::StatusOr<ChangeResult> LeaveGroups(const To& to,
                                           const std::vector<std::string>& groups) override;
  absl::StatusOr<ChangeResult> BindUser(const To& to, const IdentityChange& change) override;
  absl::StatusOr<v1::ConnectionInfo> GetConnection(std::string_view connection_id) override;
  absl::StatusOr<ConnectionPage> ListConnections(const ListOptions& options) override;
  absl::StatusOr<SignedUrl> SignUrl(const SignUrlOptions& options) override;
  const std::string& address() const override { return address_; }

 private:
  // A fresh ClientContext carrying this client's deadline.
  std::unique_ptr<grpc::ClientContext> NewCallContext() const;
  // The failed call's status with the address in front of its message.
  absl::Status CallError(const grpc::Status& status) const;
  // JoinGroups (join) or LeaveGroups.
  absl::StatusOr<ChangeResult> ChangeGroups(const To& to, const std::vector<std::string>& groups,
                                            bool join);

  const std::string address_;
  const GatewayClientOptions options_;
  // Thread-safe: gRPC stubs and channels may be used from any number of threads.
  const std::unique_ptr<v1::GatewayControl::Stub> stub_;
};

// The shared client of `address` (default deadline, the shared credentials), created on first
// use. For an empty address, a client whose calls all fail with FAILED_PRECONDITION.
GatewayClient& SharedGatewayClient(const std::string& address);

// The credentials of the shared clients, from now on (clients made before keep theirs).
// INVALID_ARGUMENT, naming the file, if a TLS file cannot be read.
absl::Status SetSharedGatewayCredentials(const GatewayCredentials& credentials);

}  // namespace fngate::runtime
