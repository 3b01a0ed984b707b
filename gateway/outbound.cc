#include "gateway/outbound.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "fngate/v1/events.pb.h"
#include "gateway/envelope.h"

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

const std::string& OutboundMessage::EnvelopeData() const {
  if (kind == Kind::kBinary || kind == Kind::kEvent) return data;
  std::call_once(envelope_once_, [this] {
    envelope_data_.reserve(data.size() + 32);
    envelope_data_ = R"({"type":"message","data":)";
    if (kind == Kind::kJson) {
      envelope_data_ += data.empty() ? "null" : data;
    } else {
      envelope::AppendJsonString(envelope_data_, data);
    }
    envelope_data_ += '}';
  });
  return envelope_data_;
}

OutboundMessagePtr EventMessage(std::string_view name, std::string_view data_json) {
  auto message = std::make_shared<OutboundMessage>();
  message->kind = OutboundMessage::Kind::kEvent;
  message->data = envelope::EventFrame(name, data_json);
  return message;
}

}  // namespace fngate::gateway
