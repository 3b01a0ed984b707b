// File: gateway/control_service.h
// ControlService: fngate.v1.GatewayControl, served on the control port. Anyone with access
// pushes to connections, closes them, emits events, changes identities and groups, and reads
// the online table; every call addresses connections by id, user, group or all (Target).
//
// Every method validates first (INVALID_ARGUMENT naming the field, nothing done), then hands
// the work to the sessions' strands and returns at once; the reactor is finished exactly once,
// from the thread of the last session to answer. Never blocks a gRPC thread.
#pragma once

#include "fngate/v1/control.grpc.pb.h"
#include "gateway/gateway_state.h"

namespace fngate::gateway {

class ControlService final : public v1::GatewayControl::CallbackService {
 public:
  explicit ControlService(GatewayState& state) : state_(state) {}

  // v1::GatewayControl
  grpc::ServerUnaryReactor* Send(grpc::CallbackServerContext* context,
                                 const v1::SendRequest* request,
                                 v1::SendResponse* response) override;
  grpc::ServerUnaryReactor* Close(grpc::CallbackServerContext* context,
                                  const v1::CloseRequest* request,
                                  v1::CloseResponse* response) override;
  grpc::ServerUnaryReactor* Emit(grpc::CallbackServerContext* context,
                                 const v1::EmitRequest* request,
                                 v1::EmitResponse* response) override;
  grpc::ServerUnaryReactor* JoinGroups(grpc::CallbackServerContext* context,
                                       const v1::GroupsRequest* request,
                                       v1::GroupsResponse* response) override;
  grpc::ServerUnaryReactor* LeaveGroups(grpc::CallbackServerContext* context,
                                        const v1::GroupsRequest* request,
                                        v1::GroupsResponse* response) override;
  grpc::ServerUnaryReactor* BindUser(grpc::CallbackServerContext* context,
                                     const v1::BindRequest* request,
                                     v1::BindResponse* response) override;
  grpc::ServerUnaryReactor* GetConnection(grpc::CallbackServerContext* context,
                                          const v1::GetConnectionRequest* request,
                                          v1::ConnectionInfo* response) override;
  grpc::ServerUnaryReactor* ListConnections(grpc::CallbackServerContext* context,
                                            const v1::ListConnectionsRequest* request,
                                            v1::ListConnectionsResponse* response) override;
  // In control_sign_url.cc.
  grpc::ServerUnaryReactor* SignUrl(grpc::CallbackServerContext* context,
                                    const v1::SignUrlRequest* request,
                                    v1::SignUrlResponse* response) override;

 private:
  grpc::ServerUnaryReactor* ChangeGroups(grpc::CallbackServerContext* context,
                                         const v1::GroupsRequest* request,
                                         v1::GroupsResponse* response, bool join);
  grpc::Status ValidateTarget(const v1::Target& target) const;

  GatewayState& state_;
};

}  // namespace fngate::gateway
