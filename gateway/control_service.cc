#include "gateway/control_service.h"

#include "absl/strings/str_cat.h"
#include "gateway/control_auth.h"
#include "gateway/fanout.h"
#include "gateway/outbound.h"
#include "gateway/session.h"

namespace fngate::gateway {
namespace {

// More ids than this in one call is a mistake or an attack; either way, bounded work.
constexpr int kMaxTargetIds = 100000;

grpc::Status Invalid(const std::string& field, absl::string_view problem) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat(field, ": ", problem));
}

grpc::Status ValidateTarget(const v1::Target& target) {
  if (target.connection_ids().empty()) {
    return Invalid("target.connection_ids", "at least one connection id is required");
  }
  if (target.connection_ids_size() > kMaxTargetIds) {
    return Invalid("target.connection_ids", absl::StrCat("at most ", kMaxTargetIds, " ids"));
  }
  for (int i = 0; i < target.connection_ids_size(); ++i) {
    if (target.connection_ids(i).empty()) {
      return Invalid(absl::StrCat("target.connection_ids[", i, "]"), "empty connection id");
    }
  }
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, grpc::Status status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* ControlService::Send(grpc::CallbackServerContext* context,
                                               const v1::SendRequest* request,
                                               v1::SendResponse* response) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return Finish(context, s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (grpc::Status s = ValidateTarget(request->target()); !s.ok()) return Finish(context, s);
  if (request->payload().data_case() == v1::Payload::DATA_NOT_SET) {
    return Finish(context, Invalid("payload", "text or binary is required"));
  }
  // Serialised once here; every recipient's queue shares this one buffer.
  auto message = std::make_shared<OutboundMessage>();
  message->binary = request->payload().has_binary();
  message->data = message->binary ? request->payload().binary() : request->payload().text();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  SendToConnections(state_.registry(), request->target().connection_ids(), std::move(message),
                    [reactor, response](FanoutResult result) {
                      response->set_delivered(result.reached);
                      for (std::string& id : result.gone) {
                        response->add_gone_connection_ids(std::move(id));
                      }
                      for (std::string& id : result.overflowed) {
                        response->add_overflowed_connection_ids(std::move(id));
                      }
                      reactor->Finish(grpc::Status::OK);
                    });
  return reactor;
}

grpc::ServerUnaryReactor* ControlService::Close(grpc::CallbackServerContext* context,
                                                const v1::CloseRequest* request,
                                                v1::CloseResponse* response) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return Finish(context, s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (grpc::Status s = ValidateTarget(request->target()); !s.ok()) return Finish(context, s);
  const int code = request->code() == 0 ? kCloseNormal : request->code();
  if (!IsSendableCloseCode(code)) {
    return Finish(context, Invalid("code", absl::StrCat(code, " is not a close code a server may "
                                                          "send (1000-1003, 1007-1014, "
                                                          "3000-4999)")));
  }
  if (request->reason().size() > kMaxCloseReasonBytes) {
    return Finish(context, Invalid("reason", absl::StrCat("at most ", kMaxCloseReasonBytes,
                                                          " bytes, got ",
                                                          request->reason().size())));
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  CloseConnections(state_.registry(), request->target().connection_ids(), code,
                   request->reason(), v1::CLOSED_BY_CONTROL,
                   [reactor, response](FanoutResult result) {
                     response->set_closed(result.reached);
                     for (std::string& id : result.gone) {
                       response->add_gone_connection_ids(std::move(id));
                     }
                     reactor->Finish(grpc::Status::OK);
                   });
  return reactor;
}

grpc::ServerUnaryReactor* ControlService::GetConnection(grpc::CallbackServerContext* context,
                                                        const v1::GetConnectionRequest* request,
                                                        v1::ConnectionInfo* response) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return Finish(context, s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (request->connection_id().empty()) {
    return Finish(context, Invalid("connection_id", "required"));
  }
  std::shared_ptr<Session> session = state_.registry().Find(request->connection_id());
  if (session == nullptr) {
    // A normal race, not a bug: the client may have left while the caller was thinking.
    return Finish(context, grpc::Status(grpc::StatusCode::NOT_FOUND,
                                        "connection_id: no such connection on this gateway"));
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  session->Describe([reactor, response](v1::ConnectionInfo info) {
    *response = std::move(info);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace fngate::gateway
