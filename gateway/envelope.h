// File: gateway/envelope.h
// The envelope protocol (subprotocol "fngate.v1", SPEC section 1; client's view in
// docs/envelope.md): building the JSON text frames the gateway sends to envelope clients, and
// parsing the frames they send. A pure codec: no sockets, no state, no logging.
//
// Server -> client (each built once per push and shared by every recipient):
//   {"type":"open","connectionId":"c1","userId":"u1"}         userId null when unbound
//   {"type":"message","data":<JSON>}                          a function push
//   {"type":"event","name":"forceLogout","data":<JSON>}       a framework event (Emit)
//   {"type":"ack","id":<id>,"ok":true}
//   {"type":"ack","id":<id>,"ok":false,"error":{"code":"UNAVAILABLE","message":"..."}}
//   {"type":"error","message":"..."}                          a bad frame without a usable ack id
//   {"type":"pong"}                                           the answer to a ping
// Client -> server:
//   {"type":"message","data":<JSON>,"ack":<id>}               "ack" optional
//   {"type":"ping"}
// <id> is a string (1-64 bytes) or an integer (at most 64 characters), echoed back as it came.
//
// Strings the gateway puts into frames (ids, names, messages, Payload.text) are escaped here;
// bytes that are not valid UTF-8 become U+FFFD, so a frame is always valid JSON and valid
// UTF-8 (a browser closes the connection on a text frame that is not). JSON the functions
// supply (Payload.json, Emit data_json) is inlined as it is, unparsed: the control service and
// the reply path check it once with ValidateJson(), not once per recipient.
//
// Parsing uses Boost.JSON, bounded in size (the caller's message limit) and nesting depth
// (kMaxJsonDepth).
//
// Thread safety: every function is pure and may be called from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "fngate/v1/events.pb.h"

namespace fngate::gateway::envelope {

// The WebSocket subprotocol a client offers to speak the envelope protocol.
inline constexpr std::string_view kSubprotocol = "fngate.v1";

// Deepest nesting of arrays and objects accepted in client frames and in ValidateJson();
// deeper input is refused rather than parsed (it only costs memory and stack).
inline constexpr size_t kMaxJsonDepth = 64;

// Longest ack id: a string's decoded bytes, or an integer's digits and sign.
inline constexpr size_t kMaxAckIdBytes = 64;

// ---------------------------------------------------------------------------------------------
// Server -> client frames. Each returns the text of one text frame.

// The first frame on an envelope connection. An empty `user_id` is sent as null.
std::string OpenFrame(std::string_view connection_id, std::string_view user_id);

// What an envelope client gets for a pushed payload is built by OutboundMessage::EnvelopeData()
// (gateway/outbound.h) with AppendJsonString(): JSON inline, text as a JSON string, binary as
// a binary frame, unwrapped.

// A framework event (Emit): {"type":"event","name":"<name>","data":<data_json>}. An empty
// `data_json` is null; otherwise it must have passed ValidateJson(). Raw clients get the
// same text as a text frame, so this is also the raw-mode Emit text.
std::string EventFrame(std::string_view name, std::string_view data_json);

// The answer to a client message that carried `ack_id` (ClientFrame::ack_id, non-empty):
// {"type":"ack","id":<id>,"ok":true} for OK; otherwise ok:false with
// "error":{"code":"<absl status code name, e.g. UNAVAILABLE>","message":"<status message>"}.
std::string AckFrame(std::string_view ack_id, const absl::Status& status);

// A client frame that could not be handled and carried no readable ack id:
// {"type":"error","message":"<message>"}.
std::string ErrorFrame(std::string_view message);

// The answer to {"type":"ping"}: {"type":"pong"}. The gateway answers it itself; the function
// is not called. Browsers can neither send WebSocket pings nor see the server's, so an SDK
// that wants to notice a dead connection (or keep a proxy's idle timer happy) needs this.
std::string PongFrame();

// ---------------------------------------------------------------------------------------------
// Client -> server frames.

enum class ClientFrameType {
  kMessage,  // Goes to the function as a message event.
  kPing,     // Answer with PongFrame().
};

struct ClientFrame {
  // OK, or INVALID_ARGUMENT with a text fit to send back to the client (in AckFrame when
  // ack_id is set, else in ErrorFrame).
  absl::Status status;
  ClientFrameType type = ClientFrameType::kMessage;
  // kMessage: "data" as a payload. A JSON string becomes `text` (decoded); any other JSON
  // value becomes `json`: the client's own text of it without the whitespace between tokens,
  // so numbers and escapes arrive exactly as sent (not re-serialised: Boost.JSON 1.81 may read
  // a double one unit in the last place off).
  v1::Payload data;
  // The ack id as JSON, ready to echo in AckFrame(): "\"a1\"" for a string, "7" for an
  // integer. Empty when the frame had none (or null). Set even when `status` is an error, as
  // long as the ack id itself was readable and valid.
  std::string ack_id;
};

// Parses one text frame of an envelope client. Frames larger than `max_bytes` are refused
// without parsing. Keys other than type, data and ack are ignored (room for later versions); a
// repeated key takes its last value, as JSON.parse does.
ClientFrame ParseClientFrame(std::string_view text, size_t max_bytes);

// ---------------------------------------------------------------------------------------------
// JSON checks and escaping, for the control service and the reply path.

// OK if `text` is exactly one JSON value (surrounding whitespace allowed) of at most
// `max_bytes`, nested at most kMaxJsonDepth deep, with valid UTF-8 in its strings; else
// INVALID_ARGUMENT saying what is wrong and at which byte. Empty text is invalid.
absl::Status ValidateJson(std::string_view text, size_t max_bytes);

// Appends `text` as a quoted JSON string. Control characters, '"' and '\' are escaped; each
// maximal invalid UTF-8 sequence becomes U+FFFD (as the WHATWG decoder does); valid UTF-8,
// including non-ASCII, is copied as it is.
void AppendJsonString(std::string& out, std::string_view text);

}  // namespace fngate::gateway::envelope
