// File: tests/support/ws_test_client.h
// WsTestClient: a blocking WebSocket client for tests, built on Boost.Beast. Every call takes a
// timeout and returns in about that time at most: each runs Beast's async operation on the
// client's private io_context until it completes or the deadline passes.
//
//   WsTestClient client;
//   ASSERT_TRUE(client.Connect("127.0.0.1", ws_port, "/echo?x=1", absl::Seconds(5)).ok());
//   ASSERT_TRUE(client.SendText("hello", absl::Seconds(5)).ok());
//   absl::StatusOr<WsMessage> reply = client.Read(absl::Seconds(5));
//
// wss://: set WsConnectOptions::tls_ca_file; the server's certificate must be signed by that CA
// and name the host connected to; PeerCertificatePem() then shows what the server presented.
//
// Errors (absl::Status codes):
//   DEADLINE_EXCEEDED    the call timed out; the TCP socket is then closed (the client is done).
//   FAILED_PRECONDITION  Connect: the server answered the handshake with a non-101 response
//                        (see HandshakeStatus()/HandshakeBody()). Other calls: the connection is
//                        closed; after the peer's close frame, CloseCode()/CloseReason() say why.
//   UNAVAILABLE          the TCP connection failed or broke without a close frame; CloseCode()
//                        is then 1006 (RFC 6455 "abnormal closure").
//
// The socket runs with TCP_NODELAY; incoming messages may be up to kMaxMessageBytes.
// Each client owns an io_context (about 3 file descriptors) plus its socket: 1,000 clients need
// a descriptor limit of well over 4,000.
//
// Thread safety: none; use one client from one thread at a time. The destructor closes the
// socket without a close frame (as Abort() does, minus the reset): call Close() for a clean end.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fngate::test_support {

// One whole WebSocket message.
struct WsMessage {
  bool is_binary = false;
  std::string data;
};

struct WsConnectOptions {
  // Offered in Sec-WebSocket-Protocol, in this order. Empty: header not sent.
  std::vector<std::string> subprotocols;
  // Extra request headers (name, value), e.g. {"Origin", "https://example.com"}.
  std::vector<std::pair<std::string, std::string>> headers;
  // Offer permessage-deflate (RFC 7692); used if the server accepts it. Messages are then sent
  // compressed and HandshakeHeader("Sec-WebSocket-Extensions") says what was agreed.
  bool permessage_deflate = false;
  // wss://: TLS trusting the CA certificates in this PEM file. Empty: plain ws://.
  std::string tls_ca_file;
  // wss:// with a client certificate (mutual TLS): PEM files, both or neither.
  std::string tls_cert_file;
  std::string tls_key_file;
};

class WsTestClient {
 public:
  static constexpr size_t kMaxMessageBytes = 8 << 20;

  WsTestClient();
  ~WsTestClient();
  WsTestClient(const WsTestClient&) = delete;
  WsTestClient& operator=(const WsTestClient&) = delete;

  // TCP connect to host:port (an IP address) and the WebSocket handshake for `target`
  // ("/echo?deny=1"). On a non-101 answer: FAILED_PRECONDITION, with HandshakeStatus() set.
  absl::Status Connect(absl::string_view host, int port, absl::string_view target,
                       absl::Duration timeout, const WsConnectOptions& options = {});

  // The HTTP status of the handshake response (101 when accepted), 0 if none was received.
  int HandshakeStatus() const { return handshake_status_; }
  // The body of a refusing handshake response (e.g. "denied").
  const std::string& HandshakeBody() const { return handshake_body_; }
  // A header of the handshake response ("" if absent), e.g. "Sec-WebSocket-Protocol".
  std::string HandshakeHeader(absl::string_view name) const;
  // wss://: the certificate the server presented, PEM ("" for ws:// or before Connect()).
  std::string PeerCertificatePem() const;

  absl::Status SendText(absl::string_view text, absl::Duration timeout);
  absl::Status SendBinary(absl::string_view data, absl::Duration timeout);

  // The next whole message. When the peer closes instead: FAILED_PRECONDITION naming the close
  // code and reason (also in CloseCode()/CloseReason()); UNAVAILABLE if the connection broke.
  absl::StatusOr<WsMessage> Read(absl::Duration timeout);

  // Reads (and drops) messages until the connection ends; returns the peer's close code (1005
  // if its close frame had none, 1006 if it broke without one). The dropped messages are
  // counted in DroppedMessages().
  absl::StatusOr<int> WaitForClose(absl::Duration timeout);

  // The clean close handshake: sends a close frame with `code` and `reason`, waits for the
  // peer's close frame and the end of the TCP connection.
  absl::Status Close(int code, absl::string_view reason, absl::Duration timeout);
  absl::Status Close(int code, absl::Duration timeout) { return Close(code, "", timeout); }

  // Vanish: reset the TCP connection (SO_LINGER 0, close) without a close frame.
  void Abort();

  // True between a successful Connect() and the end of the connection.
  bool IsOpen() const;
  // The close code received from the peer (1006 when the connection broke without a close
  // frame); nullopt while open or when we closed it ourselves first.
  std::optional<int> CloseCode() const { return close_code_; }
  const std::string& CloseReason() const { return close_reason_; }
  int DroppedMessages() const { return dropped_messages_; }

 private:
  struct Impl;

  absl::Status Send(absl::string_view data, bool binary, absl::Duration timeout);

  std::unique_ptr<Impl> impl_;
  int handshake_status_ = 0;
  std::string handshake_body_;
  std::optional<int> close_code_;
  std::string close_reason_;
  int dropped_messages_ = 0;
};

}  // namespace fngate::test_support
