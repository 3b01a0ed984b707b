#include "fngate/runtime/context.h"

#include <algorithm>
#include <string>
#include <utility>

#include "runtime/src/convert.h"
#include "runtime/src/gateway_client_impl.h"

namespace fngate::runtime {
namespace {

std::string Lookup(const StringMap& map, std::string_view key, std::string_view fallback) {
  auto it = map.find(std::string(key));
  return it == map.end() ? std::string(fallback) : it->second;
}

}  // namespace

std::string_view ClosedByName(v1::ClosedBy closed_by) {
  switch (closed_by) {
    case v1::CLOSED_BY_CLIENT:
      return "CLIENT";
    case v1::CLOSED_BY_FUNCTION:
      return "FUNCTION";
    case v1::CLOSED_BY_CONTROL:
      return "CONTROL";
    case v1::CLOSED_BY_TIMEOUT:
      return "TIMEOUT";
    case v1::CLOSED_BY_LIMIT:
      return "LIMIT";
    case v1::CLOSED_BY_SHUTDOWN:
      return "SHUTDOWN";
    case v1::CLOSED_BY_NETWORK:
      return "NETWORK";
    case v1::CLOSED_BY_ERROR:
      return "ERROR";
    default:
      return "UNSPECIFIED";
  }
}

std::string_view EventKindName(v1::EventKind kind) {
  switch (kind) {
    case v1::EVENT_KIND_CONNECT:
      return "connect";
    case v1::EVENT_KIND_MESSAGE:
      return "message";
    case v1::EVENT_KIND_DISCONNECT:
      return "disconnect";
    default:
      return "unspecified";
  }
}

// Context

Context::Context(const v1::ConnectionContext& connection, const std::string& request_id,
                 const CallInfo& call)
    : connection_(connection), request_id_(request_id), call_(call) {}

std::string Context::QueryParam(std::string_view key, std::string_view fallback) const {
  return Lookup(query(), key, fallback);
}

std::string Context::Header(std::string_view lower_case_key) const {
  return Lookup(headers(), lower_case_key, {});
}

std::string Context::MetadataValue(std::string_view key) const {
  return Lookup(metadata(), key, {});
}

absl::Time Context::connected_at() const {
  const google::protobuf::Timestamp& at = connection_.connected_at();
  return absl::FromUnixSeconds(at.seconds()) + absl::Nanoseconds(at.nanos());
}

GatewayClient& Context::Gateway() const {
  return SharedGatewayClient(connection_.gateway().empty() ? call_.default_gateway
                                                           : connection_.gateway());
}

// ReplyContext

ReplyContext::ReplyContext(const v1::ConnectionContext& connection, const std::string& request_id,
                           const CallInfo& call,
                           google::protobuf::RepeatedPtrField<v1::Action>& actions,
                           v1::ConnectResponse* connect)
    : Context(connection, request_id, call), actions_(actions), connect_(connect) {}

void ReplyContext::Reply(std::string text) { Reply(Payload::Text(std::move(text))); }

void ReplyContext::ReplyBinary(std::string bytes) { Reply(Payload::Binary(std::move(bytes))); }

void ReplyContext::Reply(Payload payload) {
  // An empty target means "this connection" (fngate.v1.Action.Send).
  ToProto(std::move(payload), *actions_.Add()->mutable_send()->mutable_payload());
}

void ReplyContext::Send(const To& to, Payload payload) {
  // An empty target would mean "this connection": an empty To must send nothing instead. The
  // same holds for every action below that takes a To.
  if (to.empty()) return;
  v1::Action::Send& send = *actions_.Add()->mutable_send();
  ToProto(to, *send.mutable_target());
  ToProto(std::move(payload), *send.mutable_payload());
}

void ReplyContext::Emit(std::string_view name, std::string data_json,
                        const EmitOptions& options) {
  v1::Action::Emit& emit = *actions_.Add()->mutable_emit();
  emit.set_name(std::string(name));
  emit.set_data_json(std::move(data_json));
  if (options.close) {
    emit.set_close(true);
    emit.set_code(options.code);
    emit.set_reason(TruncateCloseReason(options.reason));
  }
}

void ReplyContext::Emit(const To& to, std::string_view name, std::string data_json,
                        const EmitOptions& options) {
  if (to.empty()) return;
  Emit(name, std::move(data_json), options);
  ToProto(to, *actions_.rbegin()->mutable_emit()->mutable_target());
}

void ReplyContext::Close(int code, std::string_view reason) {
  v1::Action::Close& close = *actions_.Add()->mutable_close();
  close.set_code(code);
  close.set_reason(TruncateCloseReason(reason));
}

void ReplyContext::Close(const To& to, int code, std::string_view reason) {
  if (to.empty()) return;
  Close(code, reason);
  ToProto(to, *actions_.rbegin()->mutable_close()->mutable_target());
}

void ReplyContext::Join(std::string group) { ChangeGroups(nullptr, std::move(group), true); }

void ReplyContext::Leave(std::string group) { ChangeGroups(nullptr, std::move(group), false); }

void ReplyContext::Join(const To& to, std::string group) {
  if (!to.empty()) ChangeGroups(&to, std::move(group), true);
}

void ReplyContext::Leave(const To& to, std::string group) {
  if (!to.empty()) ChangeGroups(&to, std::move(group), false);
}

void ReplyContext::ChangeGroups(const To* to, std::string group, bool join) {
  if (to == nullptr && connect_ != nullptr) {
    // A connecting connection has no groups yet (nothing can address it before it is in the
    // online table), so the response's list is the whole truth: edit it in place.
    google::protobuf::RepeatedPtrField<std::string>& groups = *connect_->mutable_groups();
    auto it = std::find(groups.begin(), groups.end(), group);
    if (join && it == groups.end()) groups.Add(std::move(group));
    if (!join && it != groups.end()) groups.erase(it);
    return;
  }
  // Join and Leave have the same shape.
  auto fill = [&](auto& change) {
    if (to != nullptr) ToProto(*to, *change.mutable_target());
    change.add_groups(std::move(group));
  };
  v1::Action& action = *actions_.Add();
  if (join) {
    fill(*action.mutable_join());
  } else {
    fill(*action.mutable_leave());
  }
}

v1::Identity& ReplyContext::SelfIdentity() {
  if (!actions_.empty()) {
    v1::Action& last = *actions_.rbegin();
    if (last.has_bind() && !last.bind().has_target()) {
      return *last.mutable_bind()->mutable_identity();
    }
  }
  return *actions_.Add()->mutable_bind()->mutable_identity();
}

void ReplyContext::BindUser(std::string user_id) {
  if (connect_ != nullptr) return connect_->set_user_id(std::move(user_id));
  SelfIdentity().set_user_id(std::move(user_id));
}

void ReplyContext::SetAppId(std::string app_id) {
  if (connect_ != nullptr) return connect_->set_app_id(std::move(app_id));
  SelfIdentity().set_app_id(std::move(app_id));
}

void ReplyContext::SetChannel(std::string channel) {
  if (connect_ != nullptr) return connect_->set_channel(std::move(channel));
  SelfIdentity().set_channel(std::move(channel));
}

void ReplyContext::SetDeviceId(std::string device_id) {
  if (connect_ != nullptr) return connect_->set_device_id(std::move(device_id));
  SelfIdentity().set_device_id(std::move(device_id));
}

void ReplyContext::SetMetadata(std::string key, std::string value) {
  StringMap& metadata =
      connect_ != nullptr ? *connect_->mutable_metadata() : *SelfIdentity().mutable_metadata();
  metadata[std::move(key)] = std::move(value);
}

void ReplyContext::BindUser(const To& to, const IdentityChange& change) {
  if (to.empty()) return;
  v1::Action::Bind bind;
  ToProto(change, *bind.mutable_identity());
  if (bind.identity().ByteSizeLong() == 0) return;  // Nothing to change.
  ToProto(to, *bind.mutable_target());
  *actions_.Add()->mutable_bind() = std::move(bind);
}

// ConnectContext

ConnectContext::ConnectContext(const v1::ConnectEvent& event, v1::ConnectResponse& response,
                               const CallInfo& call)
    : ReplyContext(event.connection(), event.request_id(), call, *response.mutable_actions(),
                   &response),
      event_(event),
      response_(response) {}

void ConnectContext::Reject(int http_status, std::string_view reason) {
  v1::ConnectResponse::Reject& reject = *response_.mutable_reject();
  reject.set_http_status(http_status);
  reject.set_reason(std::string(reason));
}

bool ConnectContext::AcceptSubprotocol(std::string_view name) {
  for (const std::string& offered : event_.subprotocols()) {
    if (offered == name) {
      response_.set_subprotocol(offered);
      return true;
    }
  }
  return false;
}

// MessageContext

MessageContext::MessageContext(const v1::MessageEvent& event, v1::MessageResponse& response,
                               const CallInfo& call)
    : ReplyContext(event.connection(), event.request_id(), call, *response.mutable_actions(),
                   nullptr),
      event_(event) {}

const std::string& MessageContext::data() const {
  const v1::Payload& payload = event_.payload();
  switch (payload.data_case()) {
    case v1::Payload::kBinary:
      return payload.binary();
    case v1::Payload::kJson:
      return payload.json();
    default:
      return payload.text();
  }
}

Payload MessageContext::payload() const {
  if (is_binary()) return Payload::Binary(data());
  return is_json() ? Payload::Json(data()) : Payload::Text(data());
}

// DisconnectContext

DisconnectContext::DisconnectContext(const v1::DisconnectEvent& event, const CallInfo& call)
    : Context(event.connection(), event.request_id(), call), event_(event) {}

// ErrorContext

ErrorContext::ErrorContext(const v1::ErrorEvent& event, const CallInfo& call)
    : Context(event.connection(), event.request_id(), call), event_(event) {}

}  // namespace fngate::runtime
