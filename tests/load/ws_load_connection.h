// File: tests/load/ws_load_connection.h
// WsLoadConnection: one client WebSocket connection of the load tool, built so that the tool,
// on one core, outruns the server it measures on the other core:
//   - Beast's HTTP parser reads the server's 101 answer; frames are then encoded and parsed
//     here, straight from and into flat buffers (no per-message allocation);
//   - frames sent while a write is in flight leave together in the next write (one system call
//     for many frames), and one read takes every frame the kernel holds;
//   - client frames are masked with a random nonzero key, as RFC 6455 requires: some servers
//     skip unmasking for an all-zero key, which would flatter them.
// It answers pings, follows the close handshake either way, and rejoins fragmented messages.
// No permessage-deflate is offered.
//
// Threads: none of its own. Use a connection only from the thread running its io_context;
// every WsLoadHandler callback runs there.
// Lifetime: create with std::make_shared; pending operations keep it alive. OnClosed is called
// exactly once per Start(), after which the connection does nothing more.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

namespace fngate::load {

class WsLoadConnection;

// How a connection ended.
enum class CloseKind {
  kClean,         // Close handshake done (either side started it) and the TCP stream ended.
  kAborted,       // Abort() was called.
  kConnectFailed, // TCP connect or the HTTP upgrade failed (http_status() tells a refusal).
  kError,         // Read/write error or protocol violation after the upgrade.
};

// What a scenario implements to follow its connections.
class WsLoadHandler {
 public:
  virtual ~WsLoadHandler() = default;
  // The server answered 101: the connection may send.
  virtual void OnOpen(WsLoadConnection& conn) = 0;
  // One whole message. `payload` is valid only during the call.
  virtual void OnMessage(WsLoadConnection& conn, std::string_view payload, bool binary) = 0;
  // Exactly once per Start(). `why` is empty for kClean.
  virtual void OnClosed(WsLoadConnection& conn, CloseKind kind, std::string_view why) = 0;
};

class WsLoadConnection : public std::enable_shared_from_this<WsLoadConnection> {
 public:
  // Largest frame accepted from a server; larger ones end the connection (kError).
  static constexpr uint64_t kMaxFrameBytes = 16 << 20;

  // `read_chunk`: bytes offered to each read (memory per connection in idle scenarios).
  WsLoadConnection(boost::asio::io_context& ioc, WsLoadHandler& handler, std::size_t index,
                   std::size_t read_chunk);
  WsLoadConnection(const WsLoadConnection&) = delete;
  WsLoadConnection& operator=(const WsLoadConnection&) = delete;

  // Connects to `server` (optionally from `source`, the port picked at connect time), sends the
  // upgrade request for `target` ("/echo?x=1") with `host_header`. Call once.
  void Start(const boost::asio::ip::tcp::endpoint& server,
             const std::optional<boost::asio::ip::address_v4>& source,
             const std::string& host_header, const std::string& target);

  // Queues one message; ignored unless open.
  void Send(std::string_view payload, bool binary);
  // Starts the close handshake with `code`; OnClosed(kClean) follows once the server answered
  // and ended the TCP stream. Ignored unless open.
  void Close(uint16_t code = 1000);
  // Closes the socket now; OnClosed(kAborted) runs before this returns (unless already closed).
  void Abort();

  std::size_t index() const { return index_; }
  bool is_open() const { return state_ == State::kOpen; }
  bool is_closed() const { return state_ == State::kClosed; }
  // HTTP status of a refused upgrade (0 if none was read).
  int http_status() const { return http_status_; }

  // The close code of a close the server started (1005 without one); 0 otherwise.
  int close_code() const { return close_code_; }

  // Free for the scenario: e.g. the connection id the server sent first.
  std::string tag;
  bool ready = false;
  // Offered in Sec-WebSocket-Protocol when not empty. Set before Start().
  std::string subprotocol;

 private:
  enum class State { kConnecting, kUpgrading, kOpen, kClosing, kClosed };

  void OnConnect(boost::system::error_code ec);
  void OnUpgradeResponse(boost::system::error_code ec);
  void ReadNext();
  void OnRead(boost::system::error_code ec, std::size_t bytes);
  // Handles every whole frame in in_; false once the connection finished.
  bool ParseFrames();
  bool ParseFramesInner();
  bool HandleFrame(bool fin, uint8_t opcode, char* payload, std::size_t size);
  void AppendFrame(uint8_t opcode, std::string_view payload);
  void Flush();
  void OnWrite(boost::system::error_code ec);
  void Finish(CloseKind kind, std::string_view why);

  boost::asio::ip::tcp::socket socket_;
  WsLoadHandler& handler_;
  const std::size_t index_;
  const std::size_t read_chunk_;
  State state_ = State::kConnecting;
  boost::beast::flat_buffer in_;
  std::unique_ptr<boost::beast::http::response_parser<boost::beast::http::empty_body>> parser_;
  std::string writing_;  // Bytes of the write in flight.
  std::string pending_;  // Frames queued behind it.
  bool write_in_flight_ = false;
  bool in_parse_ = false;  // Handling frames of one read: Send() defers its write.
  std::string fragments_;  // A fragmented message being rejoined.
  bool fragments_binary_ = false;
  bool close_sent_ = false;
  bool close_received_ = false;
  int http_status_ = 0;
  int close_code_ = 0;
  uint8_t mask_[4];
  uint64_t mask64_;
};

}  // namespace fngate::load
