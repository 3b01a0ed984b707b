#include "gateway/outbound.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "fngate/v1/events.pb.h"

namespace fngate::gateway {

OutboundMessagePtr MessageFromPayload(v1::Payload&& payload) {
  auto message = std::make_shared<OutboundMessage>();
  switch (payload.data_case()) {
    case v1::Payload::kBinary:
      message->kind = OutboundMessage::Kind::kBinary;
      message->data = std::move(*payload.mutable_binary());
      break;
    case v1::Payload::kJson:
      message->kind = OutboundMessage::Kind::kJson;
      message->data = std::move(*payload.mutable_json());
      break;
    default:
      message->data = std::move(*payload.mutable_text());
      break;
  }
  return message;
}

bool IsValidEventName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
           c == '.' || c == ':';
  });
}

OutboundMessagePtr EventMessage(std::string_view name, std::string_view data_json) {
  auto message = std::make_shared<OutboundMessage>();
  message->kind = OutboundMessage::Kind::kEvent;
  message->data = absl::StrCat(R"({"type":"event","name":")",
                               absl::string_view(name.data(), name.size()), R"(","data":)",
                               data_json.empty() ? absl::string_view("null")
                                                 : absl::string_view(data_json.data(),
                                                                     data_json.size()),
                               "}");
  return message;
}

}  // namespace fngate::gateway
