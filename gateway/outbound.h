// File: gateway/outbound.h
// What the gateway writes to clients, and the close-code rules shared by reply actions and
// control calls.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace fngate::v1 {
class Payload;
}

namespace fngate::gateway {

// One message to one or many clients. Immutable once built, so a broadcast builds it once
// and every recipient's queue shares it (no copy per recipient).
struct OutboundMessage {
  enum class Kind {
    kText,    // A text frame.
    kBinary,  // A binary frame.
    kJson,    // A text frame holding a JSON value (envelope clients get it inline).
    kEvent,   // A framework event frame: the same JSON text for every client.
  };
  std::string data;
  Kind kind = Kind::kText;
  bool binary() const { return kind == Kind::kBinary; }

  // What an envelope (fngate.v1) client gets: text and JSON wrapped in a `message` frame,
  // binary and event frames as they are. Built on first use, once, and shared by every
  // envelope recipient of a broadcast. Any thread.
  const std::string& EnvelopeData() const;

 private:
  mutable std::once_flag envelope_once_;
  mutable std::string envelope_data_;
};
using OutboundMessagePtr = std::shared_ptr<const OutboundMessage>;

// Takes the payload's bytes (no copy).
OutboundMessagePtr MessageFromPayload(v1::Payload&& payload);
// {"type":"event","name":NAME,"data":DATA}; `name` must be a valid event name and
// `data_json` valid JSON or empty (null).
OutboundMessagePtr EventMessage(std::string_view name, std::string_view data_json);
// Event names: 1-64 bytes of letters, digits, '_', '-', '.', ':' (nothing to escape).
bool IsValidEventName(std::string_view name);

// What Session::Send() did with a message.
enum class SendOutcome {
  kQueued,    // In the connection's outbound queue.
  kGone,      // The connection is closing or closed.
  kOverflow,  // Its outbound queue was full: slow consumer.
};

// Close codes a server may put in a close frame (RFC 6455 section 7.4): 1000-1003,
// 1007-1014, and the application range 3000-4999. 1004-1006 and 1015 are reserved.
inline bool IsSendableCloseCode(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}
inline constexpr size_t kMaxCloseReasonBytes = 123;

// Well-known codes the gateway uses itself.
inline constexpr int kCloseNormal = 1000;
inline constexpr int kCloseGoingAway = 1001;
inline constexpr int kCloseAbnormal = 1006;  // Reported only: never sent on the wire.
inline constexpr int kClosePolicy = 1008;
inline constexpr int kCloseTooBig = 1009;
inline constexpr int kCloseInternalError = 1011;
inline constexpr int kCloseTryAgainLater = 1013;

}  // namespace fngate::gateway
