// File: gateway/ws_codec.h
// The WebSocket wire format (RFC 6455) and permessage-deflate (RFC 7692), server side, with
// no I/O: the handshake's keys and extension answer, frame headers for what the gateway
// sends, and FrameReader, which turns a client's bytes into messages and control frames.
//
// Why our own and not Beast's websocket::stream: an idle Beast stream costs more than 3 KB
// (a 1.5 KB inline read buffer, timers, a pending composed read), and it writes one frame per
// call. The session (gateway/session.h) keeps only what a connection needs while idle, and
// writes every queued frame in one system call; this file is the part of that which can be
// tested without a socket (tests/unit/gateway/ws_codec_test.cc).
//
//   FrameReader reader(/*max_message_bytes=*/1 << 20, /*deflate=*/false);
//   size_t used = 0;
//   switch (reader.Parse(bytes, size, used)) {       // Consumes what it can, frame by frame.
//     case FrameReader::Result::kMessage: Deliver(reader.TakeMessage(), reader.binary()); ...
//     case FrameReader::Result::kError:   Close(reader.error_code(), reader.error_reason());
//   }
//
// Thread safety: none; one reader per connection, used on its strand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace fngate::gateway::ws {

enum class Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// ---- The opening handshake ----------------------------------------------------------------

// Sec-WebSocket-Key: base64 of 16 bytes (24 characters, the last two "==").
bool IsValidClientKey(std::string_view key);

// Sec-WebSocket-Accept for a client key: base64(SHA-1(key + the RFC's GUID)).
std::string AcceptKey(std::string_view client_key);

// permessage-deflate: given every Sec-WebSocket-Extensions value of the request (joined with
// ", "), the value to answer with when the client offered an acceptable permessage-deflate,
// else nullopt. The answer always asks for no context takeover both ways, so that no
// compression state outlives a message (an idle connection holds no zlib memory).
std::optional<std::string> NegotiateDeflate(std::string_view extensions);

// ---- Frames the gateway sends ----------------------------------------------------------------

inline constexpr size_t kMaxFrameHeaderBytes = 10;  // Server frames are never masked.
inline constexpr size_t kMaxControlPayloadBytes = 125;

// Writes the header of one final, unmasked frame into `out` (room for kMaxFrameHeaderBytes)
// and returns its length. `compressed` sets RSV1 (a permessage-deflate data frame).
size_t WriteFrameHeader(Opcode opcode, uint64_t payload_bytes, bool compressed, uint8_t* out);

// `reason` cut to the 123 bytes a close frame holds, on a UTF-8 boundary.
std::string_view FitCloseReason(std::string_view reason);

// A close frame's payload: the code, big-endian, then the reason (FitCloseReason). Empty for
// code 1005 (no code).
std::string ClosePayload(int code, std::string_view reason);

// One message compressed as permessage-deflate with no context takeover: raw deflate, the
// final 00 00 ff ff taken off (RFC 7692 section 7.2.1).
std::string DeflateMessage(std::string_view message);

// Whether `text` is valid UTF-8 (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
bool IsValidUtf8(std::string_view text);

// ---- Frames a client sends ---------------------------------------------------------------------

class FrameReader {
 public:
  enum class Result {
    kNeedMore,  // Every byte given was used (or is an incomplete frame header left for later).
    kMessage,   // A whole text or binary message: TakeMessage(), binary().
    kPing,      // control_payload() holds the ping's payload (answer with a pong).
    kPong,      // control_payload() holds it.
    kClose,     // The client's close: close_code() (1005 when it sent none), close_reason().
    kError,     // The stream broke a rule: close with error_code(), error_reason(); the
                // reader is spent (every later Parse returns kError).
  };

  // `max_message_bytes` bounds a message (after decompression when `deflate`); `deflate`:
  // permessage-deflate was negotiated, so RSV1 marks a compressed message.
  FrameReader(uint64_t max_message_bytes, bool deflate);
  ~FrameReader();
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  // Reads from `data` up to the end of the next message or control frame, and sets `used` to
  // the bytes it took (the caller keeps the rest and calls again). An incomplete frame header
  // is not taken (`used` stops before it: give it again with more bytes); payload bytes are
  // taken as they come.
  Result Parse(const uint8_t* data, size_t size, size_t& used);

  // After kMessage. The reader is ready for the next message.
  std::string TakeMessage();
  bool binary() const { return binary_; }

  // After kPing or kPong: the payload (at most 125 bytes), valid until the next Parse.
  std::string_view control_payload() const { return control_; }

  // After kClose: the code (1005 when the frame had none) and the reason, valid until the next
  // Parse.
  int close_code() const { return close_code_; }
  std::string_view close_reason() const {
    return control_.size() > 2 ? std::string_view(control_).substr(2) : std::string_view();
  }

  // After kError: 1002 (protocol error), 1007 (invalid UTF-8 or corrupt compressed data) or
  // 1009 (message over the limit), and a short reason for the close frame.
  int error_code() const { return error_code_; }
  std::string_view error_reason() const { return error_reason_; }

 private:
  struct Inflater;  // zlib state, made for a compressed message and freed after it.

  Result Fail(int code, const char* reason);
  Result ReadHeader(const uint8_t* data, size_t size, size_t& header_bytes);
  Result ReadPayload(const uint8_t* data, size_t size);
  Result FinishFrame();

  const uint64_t max_message_bytes_;
  const bool deflate_;

  // The frame being read.
  uint64_t frame_left_ = 0;  // Payload bytes of the current frame not read yet.
  uint8_t opcode_ = 0;
  bool in_frame_ = false;
  bool fin_ = false;
  uint8_t mask_[4] = {0, 0, 0, 0};
  uint8_t mask_offset_ = 0;

  // The message being read (data frames, possibly fragmented).
  bool in_message_ = false;
  bool binary_ = false;
  bool compressed_ = false;
  uint64_t message_wire_bytes_ = 0;  // Payload bytes so far as sent: compressed ones count too.
  std::string message_;
  std::unique_ptr<Inflater> inflater_;

  std::string control_;  // Payload of the control frame being read.
  int close_code_ = 1005;
  int error_code_ = 0;
  const char* error_reason_ = "";
};

}  // namespace fngate::gateway::ws
