#include "gateway/control_service.h"

#include "absl/strings/str_cat.h"
#include "gateway/control_auth.h"
#include "gateway/envelope.h"
#include "gateway/fanout.h"
#include "gateway/identity.h"
#include "gateway/outbound.h"
#include "gateway/session.h"

namespace fngate::gateway {
namespace {

// More names than this in one call is a mistake or an attack; either way, bounded work.
constexpr int kMaxTargetNames = 100000;
// JSON payloads are checked once here, never again per recipient; gRPC's own message limit
// (4 MiB by default) bounds them before this does.
constexpr size_t kMaxJsonBytes = 64 << 20;

grpc::Status Invalid(const std::string& field, absl::string_view problem) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat(field, ": ", problem));
}

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, grpc::Status status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

grpc::Status ValidateNames(const google::protobuf::RepeatedPtrField<std::string>& names,
                           const std::string& field, bool groups) {
  for (int i = 0; i < names.size(); ++i) {
    if (groups ? !IsValidGroupName(names[i]) : names[i].empty()) {
      return Invalid(absl::StrCat(field, "[", i, "]"),
                     groups ? "a group name is 1-128 bytes of letters, digits and . _ - : @ /"
                            : "must not be empty");
    }
  }
  return grpc::Status::OK;
}

grpc::Status ValidateClose(int32_t code, const std::string& reason) {
  const int effective = code == 0 ? kCloseNormal : code;
  if (!IsSendableCloseCode(effective)) {
    return Invalid("code", absl::StrCat(effective, " is not a close code a server may send "
                                                   "(1000-1003, 1007-1014, 3000-4999)"));
  }
  if (reason.size() > kMaxCloseReasonBytes) {
    return Invalid("reason", absl::StrCat("at most ", kMaxCloseReasonBytes, " bytes, got ",
                                          reason.size()));
  }
  return grpc::Status::OK;
}

void AddIds(std::vector<std::string>& ids, google::protobuf::RepeatedPtrField<std::string>* out) {
  for (std::string& id : ids) out->Add(std::move(id));
}

}  // namespace

grpc::Status ControlService::ValidateTarget(const v1::Target& target) const {
  if (IsEmptyTarget(target)) {
    return Invalid("target", "name connection_ids, user_ids, groups, or set all");
  }
  const int names = target.connection_ids_size() + target.user_ids_size() +
                    target.groups_size() + target.exclude_connection_ids_size();
  if (names > kMaxTargetNames) {
    return Invalid("target", absl::StrCat("at most ", kMaxTargetNames, " names in one call"));
  }
  grpc::Status s = ValidateNames(target.connection_ids(), "target.connection_ids", false);
  if (s.ok()) s = ValidateNames(target.user_ids(), "target.user_ids", false);
  if (s.ok()) s = ValidateNames(target.groups(), "target.groups", true);
  if (s.ok()) s = ValidateNames(target.exclude_connection_ids(),
                                "target.exclude_connection_ids", false);
  if (!s.ok()) return s;
  for (int i = 0; i < target.functions_size(); ++i) {
    if (state_.FindFunction(target.functions(i)) < 0) {
      return Invalid(absl::StrCat("target.functions[", i, "]"),
                     absl::StrCat("no function named '", target.functions(i), "'"));
    }
  }
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* ControlService::Send(grpc::CallbackServerContext* context,
                                               const v1::SendRequest* request,
                                               v1::SendResponse* response) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return Finish(context, s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (grpc::Status s = ValidateTarget(request->target()); !s.ok()) return Finish(context, s);
  if (request->payload().data_case() == v1::Payload::DATA_NOT_SET) {
    return Finish(context, Invalid("payload", "text, binary or json is required"));
  }
  if (request->payload().has_json()) {
    absl::Status json = envelope::ValidateJson(request->payload().json(), kMaxJsonBytes);
    if (!json.ok()) return Finish(context, Invalid("payload.json", json.message()));
  }
  // Serialised once here; every recipient's queue shares this one buffer.
  OutboundMessagePtr message = MessageFromPayload(v1::Payload(request->payload()));
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  SendToTargets(state_.table().Resolve(request->target()), std::move(message), nullptr,
                [reactor, response](FanoutResult result) {
                  response->set_delivered(result.reached);
                  AddIds(result.gone, response->mutable_gone_connection_ids());
                  AddIds(result.overflowed, response->mutable_overflowed_connection_ids());
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
  if (grpc::Status s = ValidateClose(request->code(), request->reason()); !s.ok()) {
    return Finish(context, s);
  }
  auto order = std::make_shared<CloseOrder>(
      CloseOrder{request->code() == 0 ? kCloseNormal : request->code(), request->reason(),
                 v1::CLOSED_BY_CONTROL});
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  CloseTargets(state_.table().Resolve(request->target()), std::move(order),
               [reactor, response](FanoutResult result) {
                 response->set_closed(result.reached);
                 AddIds(result.gone, response->mutable_gone_connection_ids());
                 reactor->Finish(grpc::Status::OK);
               });
  return reactor;
}

grpc::ServerUnaryReactor* ControlService::Emit(grpc::CallbackServerContext* context,
                                               const v1::EmitRequest* request,
                                               v1::EmitResponse* response) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return Finish(context, s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (grpc::Status s = ValidateTarget(request->target()); !s.ok()) return Finish(context, s);
  if (!IsValidEventName(request->name())) {
    return Finish(context, Invalid("name", "1-64 bytes of letters, digits, _ - . :"));
  }
  if (!request->data_json().empty()) {
    absl::Status json = envelope::ValidateJson(request->data_json(), kMaxJsonBytes);
    if (!json.ok()) return Finish(context, Invalid("data_json", json.message()));
  }
  std::shared_ptr<CloseOrder> order;
  if (request->close()) {
    if (grpc::Status s = ValidateClose(request->code(), request->reason()); !s.ok()) {
      return Finish(context, s);
    }
    order = std::make_shared<CloseOrder>(
        CloseOrder{request->code() == 0 ? kCloseNormal : request->code(), request->reason(),
                   v1::CLOSED_BY_CONTROL});
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  SendToTargets(state_.table().Resolve(request->target()),
                EventMessage(request->name(), request->data_json()), std::move(order),
                [reactor, response](FanoutResult result) {
                  response->set_delivered(result.reached);
                  AddIds(result.gone, response->mutable_gone_connection_ids());
                  AddIds(result.overflowed, response->mutable_overflowed_connection_ids());
                  reactor->Finish(grpc::Status::OK);
                });
  return reactor;
}

grpc::ServerUnaryReactor* ControlService::ChangeGroups(grpc::CallbackServerContext* context,
                                                       const v1::GroupsRequest* request,
                                                       v1::GroupsResponse* response,
                                                       bool join) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return Finish(context, s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (grpc::Status s = ValidateTarget(request->target()); !s.ok()) return Finish(context, s);
  if (request->groups().empty()) return Finish(context, Invalid("groups", "at least one group"));
  if (grpc::Status s = ValidateNames(request->groups(), "groups", true); !s.ok()) {
    return Finish(context, s);
  }
  std::vector<std::string> gone;
  // The table changes under its lock: a Send to the group right after this returns sees it.
  response->set_affected(state_.table().Modify(
      request->target(),
      [&](v1::ConnectionContext& c) {
        return join ? gateway::JoinGroups(request->groups(), c)
                    : gateway::LeaveGroups(request->groups(), c);
      },
      &gone));
  AddIds(gone, response->mutable_gone_connection_ids());
  return Finish(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ControlService::JoinGroups(grpc::CallbackServerContext* context,
                                                     const v1::GroupsRequest* request,
                                                     v1::GroupsResponse* response) {
  return ChangeGroups(context, request, response, /*join=*/true);
}

grpc::ServerUnaryReactor* ControlService::LeaveGroups(grpc::CallbackServerContext* context,
                                                      const v1::GroupsRequest* request,
                                                      v1::GroupsResponse* response) {
  return ChangeGroups(context, request, response, /*join=*/false);
}

grpc::ServerUnaryReactor* ControlService::BindUser(grpc::CallbackServerContext* context,
                                                   const v1::BindRequest* request,
                                                   v1::BindResponse* response) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return Finish(context, s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (grpc::Status s = ValidateTarget(request->target()); !s.ok()) return Finish(context, s);
  if (absl::Status s = ValidateIdentity(request->identity()); !s.ok()) {
    return Finish(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                        std::string(s.message())));
  }
  std::vector<std::string> gone;
  response->set_affected(state_.table().Modify(
      request->target(),
      [&](v1::ConnectionContext& c) { return ApplyIdentity(request->identity(), c); }, &gone));
  AddIds(gone, response->mutable_gone_connection_ids());
  return Finish(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ControlService::GetConnection(grpc::CallbackServerContext* context,
                                                        const v1::GetConnectionRequest* request,
                                                        v1::ConnectionInfo* response) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return Finish(context, s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (request->connection_id().empty()) {
    return Finish(context, Invalid("connection_id", "required"));
  }
  if (!state_.table().Describe(request->connection_id(), *response)) {
    // A normal race, not a bug: the client may have left while the caller was thinking.
    return Finish(context, grpc::Status(grpc::StatusCode::NOT_FOUND,
                                        "connection_id: no such connection on this gateway"));
  }
  return Finish(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ControlService::ListConnections(
    grpc::CallbackServerContext* context, const v1::ListConnectionsRequest* request,
    v1::ListConnectionsResponse* response) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return Finish(context, s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (request->page_size() < 0 || request->page_size() > 1000) {
    return Finish(context, Invalid("page_size", "1-1000, or 0 for 100"));
  }
  if (!request->group().empty() && !IsValidGroupName(request->group())) {
    return Finish(context, Invalid("group", "a group name is 1-128 bytes of letters, digits "
                                            "and . _ - : @ /"));
  }
  OnlineTable::ListFilter filter{request->function(), request->user_id(), request->group(),
                                 request->app_id(), request->channel()};
  OnlineTable::Page page = state_.table().List(
      filter, request->page_size() == 0 ? 100 : request->page_size(), request->page_token());
  response->mutable_connections()->Reserve(static_cast<int>(page.rows.size()));
  for (v1::ConnectionInfo& row : page.rows) response->add_connections()->Swap(&row);
  response->set_next_page_token(std::move(page.next_token));
  return Finish(context, grpc::Status::OK);
}

}  // namespace fngate::gateway
