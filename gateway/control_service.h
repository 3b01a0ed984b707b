// File: gateway/control_service.h
// ControlService: fngate.v1.GatewayControl, served on the control port. Anyone with access
// pushes to connections, closes them, emits events, changes identities and groups, and reads
// the online table; every call addresses connections by id, user, group or all (Target).
//
// Every method validates first (INVALID_ARGUMENT naming the field, nothing done), then hands
// the work to the sessions' strands and returns at once; the reply is finished exactly once,
// from the thread of the last session to answer. Never blocks a gRPC thread.
//
// Served on gRPC's completion-queue API (not the callback API): the calls complete on the
// gateway's one CompletionQueueThread, with the event streams (see completion_queue_thread.h).
#pragma once

#include "fngate/v1/control.grpc.pb.h"
#include "gateway/gateway_state.h"

namespace fngate::gateway {

// The answer to one control call: finish it exactly once, from any thread.
class ControlReply {
 public:
  virtual void Finish(grpc::Status status) = 0;

 protected:
  ~ControlReply() = default;
};

class ControlService final {
 public:
  explicit ControlService(GatewayState& state) : state_(state) {}

  // What the control server's builder registers.
  grpc::Service* service() { return &async_; }
  // Takes calls from `cq` (the server's, polled by a CompletionQueueThread), once the server
  // started: one call of each method is asked for, and each call that comes asks for the next.
  // A method of the proto not asked for here would leave its callers waiting: add each new one.
  void Serve(grpc::ServerCompletionQueue* cq);

  // v1::GatewayControl, one method each.
  void Send(grpc::ServerContext* context, const v1::SendRequest* request,
            v1::SendResponse* response, ControlReply* reply);
  void Close(grpc::ServerContext* context, const v1::CloseRequest* request,
             v1::CloseResponse* response, ControlReply* reply);
  void Emit(grpc::ServerContext* context, const v1::EmitRequest* request,
            v1::EmitResponse* response, ControlReply* reply);
  void JoinGroups(grpc::ServerContext* context, const v1::GroupsRequest* request,
                  v1::GroupsResponse* response, ControlReply* reply);
  void LeaveGroups(grpc::ServerContext* context, const v1::GroupsRequest* request,
                   v1::GroupsResponse* response, ControlReply* reply);
  void BindUser(grpc::ServerContext* context, const v1::BindRequest* request,
                v1::BindResponse* response, ControlReply* reply);
  void GetConnection(grpc::ServerContext* context, const v1::GetConnectionRequest* request,
                     v1::ConnectionInfo* response, ControlReply* reply);
  void ListConnections(grpc::ServerContext* context, const v1::ListConnectionsRequest* request,
                       v1::ListConnectionsResponse* response, ControlReply* reply);
  // In control_sign_url.cc.
  void SignUrl(grpc::ServerContext* context, const v1::SignUrlRequest* request,
               v1::SignUrlResponse* response, ControlReply* reply);

 private:
  void ChangeGroups(grpc::ServerContext* context, const v1::GroupsRequest* request,
                    v1::GroupsResponse* response, bool join, ControlReply* reply);
  grpc::Status ValidateTarget(const v1::Target& target) const;

  GatewayState& state_;
  v1::GatewayControl::AsyncService async_;
};

}  // namespace fngate::gateway
