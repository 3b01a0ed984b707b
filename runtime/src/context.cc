#include "fngate/runtime/context.h"

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
                           google::protobuf::RepeatedPtrField<v1::Action>& actions)
    : Context(connection, request_id, call), actions_(actions) {}

void ReplyContext::Reply(std::string text) { Reply(Payload::Text(std::move(text))); }

void ReplyContext::ReplyBinary(std::string bytes) { Reply(Payload::Binary(std::move(bytes))); }

void ReplyContext::Reply(Payload payload) {
  // An empty target means "this connection" (fngate.v1.Action.Send).
  ToProto(std::move(payload), *actions_.Add()->mutable_send()->mutable_payload());
}

void ReplyContext::Send(const To& to, Payload payload) {
  // An empty target would mean "this connection": an empty batch must send nothing instead.
  if (to.empty()) return;
  v1::Action::Send& send = *actions_.Add()->mutable_send();
  ToProto(to, *send.mutable_target());
  ToProto(std::move(payload), *send.mutable_payload());
}

void ReplyContext::Close(int code, std::string_view reason) {
  v1::Action::Close& close = *actions_.Add()->mutable_close();
  close.set_code(code);
  close.set_reason(TruncateCloseReason(reason));
}

// ConnectContext

ConnectContext::ConnectContext(const v1::ConnectEvent& event, v1::ConnectResponse& response,
                               const CallInfo& call)
    : ReplyContext(event.connection(), event.request_id(), call, *response.mutable_actions()),
      event_(event),
      response_(response) {}

void ConnectContext::Reject(int http_status, std::string_view reason) {
  v1::ConnectResponse::Reject& reject = *response_.mutable_reject();
  reject.set_http_status(http_status);
  reject.set_reason(std::string(reason));
}

void ConnectContext::BindUser(std::string user_id) { response_.set_user_id(std::move(user_id)); }

void ConnectContext::SetMetadata(std::string key, std::string value) {
  (*response_.mutable_metadata())[std::move(key)] = std::move(value);
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
    : ReplyContext(event.connection(), event.request_id(), call, *response.mutable_actions()),
      event_(event) {}

const std::string& MessageContext::data() const {
  return is_binary() ? event_.payload().binary() : event_.payload().text();
}

Payload MessageContext::payload() const {
  return is_binary() ? Payload::Binary(data()) : Payload::Text(data());
}

// DisconnectContext

DisconnectContext::DisconnectContext(const v1::DisconnectEvent& event, const CallInfo& call)
    : Context(event.connection(), event.request_id(), call), event_(event) {}

// ErrorContext

ErrorContext::ErrorContext(const v1::ErrorEvent& event, const CallInfo& call)
    : Context(event.connection(), event.request_id(), call), event_(event) {}

}  // namespace fngate::runtime
