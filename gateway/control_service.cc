#include "gateway/control_service.h"

#include "absl/strings/str_cat.h"
#include "common/completion_queue_thread.h"
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

// One control call on the completion-queue API: asked for (the server fills it when a call of
// its method comes), handled, answered. Its tag is itself: the first completion is the call's
// arrival (or, ok=false, the server shutting down before one came), the second that its answer
// went out (or could not: the client left); then it goes.
template <typename Request, typename Response>
class ControlCall final : public CompletionQueueThread::Tag, public ControlReply {
 public:
  using Ask = void (v1::GatewayControl::AsyncService::*)(
      grpc::ServerContext*, Request*, grpc::ServerAsyncResponseWriter<Response>*,
      grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*);
  using Handle = void (ControlService::*)(grpc::ServerContext*, const Request*, Response*,
                                          ControlReply*);

  // Asks for the next call of one method.
  static void Await(ControlService& service, v1::GatewayControl::AsyncService& async,
                    grpc::ServerCompletionQueue* cq, Ask ask, Handle handle) {
    auto* call = new ControlCall(service, async, cq, ask, handle);
    (async.*ask)(&call->context_, &call->request_, &call->writer_, cq, cq, call);
  }

  void OnComplete(bool ok) override {
    if (answered_ || !ok) {
      delete this;
      return;
    }
    Await(service_, async_, cq_, ask_, handle_);  // The next call finds one waiting.
    (service_.*handle_)(&context_, &request_, &response_, this);
  }

  void Finish(grpc::Status status) override {
    answered_ = true;  // Read on the queue's thread once this completes: ordered by the queue.
    if (status.ok()) {
      writer_.Finish(response_, status, this);
    } else {
      writer_.FinishWithError(status, this);
    }
  }

 private:
  ControlCall(ControlService& service, v1::GatewayControl::AsyncService& async,
              grpc::ServerCompletionQueue* cq, Ask ask, Handle handle)
      : service_(service), async_(async), cq_(cq), ask_(ask), handle_(handle) {}

  ControlService& service_;
  v1::GatewayControl::AsyncService& async_;
  grpc::ServerCompletionQueue* const cq_;
  const Ask ask_;
  const Handle handle_;
  grpc::ServerContext context_;
  Request request_;
  Response response_;
  grpc::ServerAsyncResponseWriter<Response> writer_{&context_};
  bool answered_ = false;
};

template <typename Request, typename Response>
void Await(ControlService& service, v1::GatewayControl::AsyncService& async,
           grpc::ServerCompletionQueue* cq, typename ControlCall<Request, Response>::Ask ask,
           typename ControlCall<Request, Response>::Handle handle) {
  ControlCall<Request, Response>::Await(service, async, cq, ask, handle);
}

}  // namespace

void ControlService::Serve(grpc::ServerCompletionQueue* cq) {
  using Async = v1::GatewayControl::AsyncService;
  Await<v1::SendRequest, v1::SendResponse>(*this, async_, cq, &Async::RequestSend,
                                           &ControlService::Send);
  Await<v1::CloseRequest, v1::CloseResponse>(*this, async_, cq, &Async::RequestClose,
                                             &ControlService::Close);
  Await<v1::EmitRequest, v1::EmitResponse>(*this, async_, cq, &Async::RequestEmit,
                                           &ControlService::Emit);
  Await<v1::GroupsRequest, v1::GroupsResponse>(*this, async_, cq, &Async::RequestJoinGroups,
                                               &ControlService::JoinGroups);
  Await<v1::GroupsRequest, v1::GroupsResponse>(*this, async_, cq, &Async::RequestLeaveGroups,
                                               &ControlService::LeaveGroups);
  Await<v1::BindRequest, v1::BindResponse>(*this, async_, cq, &Async::RequestBindUser,
                                           &ControlService::BindUser);
  Await<v1::GetConnectionRequest, v1::ConnectionInfo>(
      *this, async_, cq, &Async::RequestGetConnection, &ControlService::GetConnection);
  Await<v1::ListConnectionsRequest, v1::ListConnectionsResponse>(
      *this, async_, cq, &Async::RequestListConnections, &ControlService::ListConnections);
  Await<v1::SignUrlRequest, v1::SignUrlResponse>(*this, async_, cq, &Async::RequestSignUrl,
                                                 &ControlService::SignUrl);
}

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

void ControlService::Send(grpc::ServerContext* context, const v1::SendRequest* request,
                          v1::SendResponse* response, ControlReply* reply) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return reply->Finish(s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (grpc::Status s = ValidateTarget(request->target()); !s.ok()) return reply->Finish(s);
  if (request->payload().data_case() == v1::Payload::DATA_NOT_SET) {
    return reply->Finish(Invalid("payload", "text, binary or json is required"));
  }
  if (request->payload().has_json()) {
    absl::Status json = envelope::ValidateJson(request->payload().json(), kMaxJsonBytes);
    if (!json.ok()) return reply->Finish(Invalid("payload.json", json.message()));
  }
  // Serialised once here; every recipient's queue shares this one buffer.
  OutboundMessagePtr message = MessageFromPayload(v1::Payload(request->payload()));
  SendToTargets(state_.table().Resolve(request->target()), std::move(message), nullptr,
                [reply, response](FanoutResult result) {
                  response->set_delivered(result.reached);
                  AddIds(result.gone, response->mutable_gone_connection_ids());
                  AddIds(result.overflowed, response->mutable_overflowed_connection_ids());
                  reply->Finish(grpc::Status::OK);
                });
}

void ControlService::Close(grpc::ServerContext* context, const v1::CloseRequest* request,
                           v1::CloseResponse* response, ControlReply* reply) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return reply->Finish(s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (grpc::Status s = ValidateTarget(request->target()); !s.ok()) return reply->Finish(s);
  if (grpc::Status s = ValidateClose(request->code(), request->reason()); !s.ok()) {
    return reply->Finish(s);
  }
  auto order = std::make_shared<CloseOrder>(
      CloseOrder{request->code() == 0 ? kCloseNormal : request->code(), request->reason(),
                 v1::CLOSED_BY_CONTROL});
  CloseTargets(state_.table().Resolve(request->target()), std::move(order),
               [reply, response](FanoutResult result) {
                 response->set_closed(result.reached);
                 AddIds(result.gone, response->mutable_gone_connection_ids());
                 reply->Finish(grpc::Status::OK);
               });
}

void ControlService::Emit(grpc::ServerContext* context, const v1::EmitRequest* request,
                          v1::EmitResponse* response, ControlReply* reply) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return reply->Finish(s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (grpc::Status s = ValidateTarget(request->target()); !s.ok()) return reply->Finish(s);
  if (!IsValidEventName(request->name())) {
    return reply->Finish(Invalid("name", "1-64 bytes of letters, digits, _ - . :"));
  }
  if (!request->data_json().empty()) {
    absl::Status json = envelope::ValidateJson(request->data_json(), kMaxJsonBytes);
    if (!json.ok()) return reply->Finish(Invalid("data_json", json.message()));
  }
  std::shared_ptr<CloseOrder> order;
  if (request->close()) {
    if (grpc::Status s = ValidateClose(request->code(), request->reason()); !s.ok()) {
      return reply->Finish(s);
    }
    order = std::make_shared<CloseOrder>(
        CloseOrder{request->code() == 0 ? kCloseNormal : request->code(), request->reason(),
                   v1::CLOSED_BY_CONTROL});
  }
  SendToTargets(state_.table().Resolve(request->target()),
                EventMessage(request->name(), request->data_json()), std::move(order),
                [reply, response](FanoutResult result) {
                  response->set_delivered(result.reached);
                  AddIds(result.gone, response->mutable_gone_connection_ids());
                  AddIds(result.overflowed, response->mutable_overflowed_connection_ids());
                  reply->Finish(grpc::Status::OK);
                });
}

void ControlService::ChangeGroups(grpc::ServerContext* context,
                                  const v1::GroupsRequest* request,
                                  v1::GroupsResponse* response, bool join, ControlReply* reply) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return reply->Finish(s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (grpc::Status s = ValidateTarget(request->target()); !s.ok()) return reply->Finish(s);
  if (request->groups().empty()) return reply->Finish(Invalid("groups", "at least one group"));
  if (grpc::Status s = ValidateNames(request->groups(), "groups", true); !s.ok()) {
    return reply->Finish(s);
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
  return reply->Finish(grpc::Status::OK);
}

void ControlService::JoinGroups(grpc::ServerContext* context, const v1::GroupsRequest* request,
                                v1::GroupsResponse* response, ControlReply* reply) {
  ChangeGroups(context, request, response, /*join=*/true, reply);
}

void ControlService::LeaveGroups(grpc::ServerContext* context,
                                 const v1::GroupsRequest* request,
                                 v1::GroupsResponse* response, ControlReply* reply) {
  ChangeGroups(context, request, response, /*join=*/false, reply);
}

void ControlService::BindUser(grpc::ServerContext* context, const v1::BindRequest* request,
                              v1::BindResponse* response, ControlReply* reply) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return reply->Finish(s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (grpc::Status s = ValidateTarget(request->target()); !s.ok()) return reply->Finish(s);
  if (absl::Status s = ValidateIdentity(request->identity()); !s.ok()) {
    return reply->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                        std::string(s.message())));
  }
  std::vector<std::string> gone;
  response->set_affected(state_.table().Modify(
      request->target(),
      [&](v1::ConnectionContext& c) { return ApplyIdentity(request->identity(), c); }, &gone));
  AddIds(gone, response->mutable_gone_connection_ids());
  return reply->Finish(grpc::Status::OK);
}

void ControlService::GetConnection(grpc::ServerContext* context,
                                   const v1::GetConnectionRequest* request,
                                   v1::ConnectionInfo* response, ControlReply* reply) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return reply->Finish(s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (request->connection_id().empty()) {
    return reply->Finish(Invalid("connection_id", "required"));
  }
  if (!state_.table().Describe(request->connection_id(), *response)) {
    // A normal race, not a bug: the client may have left while the caller was thinking.
    return reply->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                        "connection_id: no such connection on this gateway"));
  }
  return reply->Finish(grpc::Status::OK);
}

void ControlService::ListConnections(grpc::ServerContext* context,
                                     const v1::ListConnectionsRequest* request,
                                     v1::ListConnectionsResponse* response,
                                     ControlReply* reply) {
  if (auto s = AuthorizeControlCall(*context, state_); !s.ok()) return reply->Finish(s);
  state_.metrics().control_calls.fetch_add(1, std::memory_order_relaxed);
  if (request->page_size() < 0 || request->page_size() > 1000) {
    return reply->Finish(Invalid("page_size", "1-1000, or 0 for 100"));
  }
  if (!request->group().empty() && !IsValidGroupName(request->group())) {
    return reply->Finish(Invalid("group", "a group name is 1-128 bytes of letters, digits "
                                            "and . _ - : @ /"));
  }
  OnlineTable::ListFilter filter{request->function(), request->user_id(), request->group(),
                                 request->app_id(), request->channel()};
  OnlineTable::Page page = state_.table().List(
      filter, request->page_size() == 0 ? 100 : request->page_size(), request->page_token());
  response->mutable_connections()->Reserve(static_cast<int>(page.rows.size()));
  for (v1::ConnectionInfo& row : page.rows) response->add_connections()->Swap(&row);
  response->set_next_page_token(std::move(page.next_token));
  return reply->Finish(grpc::Status::OK);
}

}  // namespace fngate::gateway
