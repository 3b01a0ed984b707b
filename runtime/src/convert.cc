#include "runtime/src/convert.h"

#include <utility>

namespace fngate::runtime {
namespace {

void Append(const std::vector<std::string>& from,
            google::protobuf::RepeatedPtrField<std::string>* to) {
  to->Add(from.begin(), from.end());
}

}  // namespace

void ToProto(const To& to, v1::Target& target) {
  Append(to.connection_ids(), target.mutable_connection_ids());
  Append(to.user_ids(), target.mutable_user_ids());
  Append(to.groups(), target.mutable_groups());
  if (to.all()) target.set_all(true);
  Append(to.functions(), target.mutable_functions());
  if (!to.app_id().empty()) target.set_app_id(to.app_id());
  if (!to.channel().empty()) target.set_channel(to.channel());
  Append(to.excluded_connection_ids(), target.mutable_exclude_connection_ids());
}

void ToProto(Payload&& payload, v1::Payload& proto) {
  if (payload.binary) {
    proto.set_binary(std::move(payload.data));
  } else if (payload.json) {
    proto.set_json(std::move(payload.data));
  } else {
    proto.set_text(std::move(payload.data));
  }
}

void ToProto(const IdentityChange& change, v1::Identity& identity) {
  if (change.user_id) identity.set_user_id(*change.user_id);
  if (change.app_id) identity.set_app_id(*change.app_id);
  if (change.channel) identity.set_channel(*change.channel);
  if (change.device_id) identity.set_device_id(*change.device_id);
  for (const auto& [key, value] : change.metadata) (*identity.mutable_metadata())[key] = value;
}

std::string TruncateCloseReason(std::string_view reason) {
  if (reason.size() <= kMaxCloseReasonBytes) return std::string(reason);
  size_t end = kMaxCloseReasonBytes;
  // Back up over continuation bytes (10xxxxxx) so the cut falls before a character's first byte.
  while (end > 0 && (static_cast<unsigned char>(reason[end]) & 0xC0) == 0x80) --end;
  return std::string(reason.substr(0, end));
}

}  // namespace fngate::runtime
