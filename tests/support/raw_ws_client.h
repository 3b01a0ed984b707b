// File: tests/support/raw_ws_client.h
// RawWsClient: a plain TCP socket that does the HTTP upgrade and the WebSocket framing by hand,
// so tests can send what a well-behaved client never would -- half a request, a huge header,
// frames with reserved bits, unknown opcodes, unmasked or fragmented control frames, close
// frames with invalid codes -- and read back exactly what the server answered, frame by frame
// (pings are not answered unless the test does it).
//
//   RawWsClient raw;
//   ASSERT_TRUE(raw.Connect("127.0.0.1", port, kTimeout).ok());
//   absl::StatusOr<HttpHead> head = raw.Upgrade("/echo", kTimeout);  // head->status == 101
//   raw.Write(RawFrame::Build(WsOpcode::kText, "hi", {.rsv = kRsv2}), kTimeout);
//   absl::StatusOr<RawFrame> close = raw.ReadCloseFrame(kTimeout);   // close->CloseCode() == 1002
//
// Errors (absl::Status codes): DEADLINE_EXCEEDED when the call timed out (the socket stays
// open); UNAVAILABLE when the peer closed (EOF) or reset the connection, or the socket failed;
// INVALID_ARGUMENT for a response that is not HTTP.
//
// Thread safety: none; one thread at a time. The destructor closes the socket.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fngate::test_support {

// RFC 6455 section 5.2 opcodes, plus any 4-bit value a test wants (3-7, 11-15 are reserved).
enum class WsOpcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Bits of FrameOptions::rsv.
inline constexpr uint8_t kRsv1 = 0x4;
inline constexpr uint8_t kRsv2 = 0x2;
inline constexpr uint8_t kRsv3 = 0x1;

struct FrameOptions {
  bool fin = true;
  uint8_t rsv = 0;      // kRsv1 | kRsv2 | kRsv3
  bool masked = true;   // Clients must mask (RFC 6455 5.1); false builds a violation.
  uint32_t mask_key = 0x37fa213d;
};

struct RawFrame {
  bool fin = true;
  uint8_t rsv = 0;
  uint8_t opcode = 0;
  bool masked = false;
  std::string payload;  // Unmasked.

  // One frame on the wire. `opcode` is any 4-bit value.
  static std::string Build(uint8_t opcode, absl::string_view payload,
                           const FrameOptions& options = {});
  static std::string Build(WsOpcode opcode, absl::string_view payload,
                           const FrameOptions& options = {}) {
    return Build(static_cast<uint8_t>(opcode), payload, options);
  }
  // `data` compressed as one permessage-deflate message (RFC 7692 7.2.1: raw DEFLATE, sync
  // flush, the trailing 00 00 ff ff removed). Send it in a frame with kRsv1 set.
  static std::string Deflate(absl::string_view data);
  // A close frame's payload: the code, big-endian, then the reason.
  static std::string ClosePayload(int code, absl::string_view reason = "");

  bool IsClose() const { return opcode == static_cast<uint8_t>(WsOpcode::kClose); }
  // For a close frame: its code, 1005 when it carried none.
  int CloseCode() const;
  std::string CloseReason() const { return payload.size() > 2 ? payload.substr(2) : ""; }
};

// The status line and headers of an HTTP response, with its body (by Content-Length).
struct HttpHead {
  int status = 0;
  std::map<std::string, std::string> headers;  // Lower-case names.
  std::string body;
  std::string Header(const std::string& lower_name) const;
};

struct RawConnectOptions {
  // SO_RCVBUF before connecting (0: the system's default). A small one makes the server's
  // writes back up quickly, as with a slow reader.
  int receive_buffer_bytes = 0;
};

class RawWsClient {
 public:
  RawWsClient() = default;
  ~RawWsClient();
  RawWsClient(const RawWsClient&) = delete;
  RawWsClient& operator=(const RawWsClient&) = delete;

  // TCP connect only (host is an IP address).
  absl::Status Connect(absl::string_view host, int port, absl::Duration timeout,
                       const RawConnectOptions& options = {});

  // Writes `bytes` as they are.
  absl::Status Write(absl::string_view bytes, absl::Duration timeout);

  // The upgrade request for `target` (with `extra_headers`, each "Name: value"), then the
  // response head (and body, unless it is 101). Bytes after the head stay for ReadFrame().
  absl::StatusOr<HttpHead> Upgrade(absl::string_view target, absl::Duration timeout,
                                   const std::vector<std::string>& extra_headers = {});
  // The upgrade request text Upgrade() sends.
  static std::string UpgradeRequest(absl::string_view target,
                                    const std::vector<std::string>& extra_headers = {});
  // Reads one HTTP response (after writing a request with Write()).
  absl::StatusOr<HttpHead> ReadHttpResponse(absl::Duration timeout);

  // The next frame from the server, whatever it is.
  absl::StatusOr<RawFrame> ReadFrame(absl::Duration timeout);
  // Reads frames until a close frame and returns it; with `answer_pings` each ping gets its
  // pong. Data frames on the way are dropped (counted in SkippedFrames()).
  absl::StatusOr<RawFrame> ReadCloseFrame(absl::Duration timeout, bool answer_pings = false);
  // Reads (and drops) everything until the server ends the TCP connection (OK on EOF or
  // reset), then closes the socket: a server that finished a close handshake waits for that.
  absl::Status WaitForEof(absl::Duration timeout);

  int SkippedFrames() const { return skipped_frames_; }
  void Close();

 private:
  // Reads until `in_` holds at least `size` bytes.
  absl::Status Fill(size_t size, absl::Time deadline);
  // One recv() into `in_`, waiting until `deadline`.
  absl::Status ReadSome(absl::Time deadline);

  int fd_ = -1;
  int port_ = 0;
  std::string in_;  // Received, not yet consumed.
  int skipped_frames_ = 0;
};

}  // namespace fngate::test_support
