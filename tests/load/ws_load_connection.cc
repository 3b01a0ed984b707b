#include "tests/load/ws_load_connection.h"

#include <netinet/in.h>

#include <cstring>
#include <random>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>

namespace fngate::load {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif
// With a source address bound before connect(), let connect() pick the port per destination
// (a source address then serves as many connections as the port range, per server port).
using BindAddressNoPort = net::detail::socket_option::boolean<IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT>;

constexpr uint8_t kOpContinuation = 0x0;
constexpr uint8_t kOpText = 0x1;
constexpr uint8_t kOpBinary = 0x2;
constexpr uint8_t kOpClose = 0x8;
constexpr uint8_t kOpPing = 0x9;
constexpr uint8_t kOpPong = 0xA;

uint32_t RandomNonZero() {
  thread_local std::mt19937 rng{std::random_device{}()};
  uint32_t v = 0;
  while (v == 0) v = rng();
  return v;
}

}  // namespace

WsLoadConnection::WsLoadConnection(net::io_context& ioc, WsLoadHandler& handler,
                                   std::size_t index, std::size_t read_chunk)
    : socket_(ioc), handler_(handler), index_(index), read_chunk_(read_chunk) {
  const uint32_t key = RandomNonZero();
  std::memcpy(mask_, &key, 4);
  mask64_ = (uint64_t{key} << 32) | key;  // mask_ repeated, in memory order
}

void WsLoadConnection::Start(const tcp::endpoint& server,
                             const std::optional<net::ip::address_v4>& source,
                             const std::string& host_header, const std::string& target) {
  pending_.reserve(256 + target.size());
  pending_.append("GET ").append(target).append(" HTTP/1.1\r\nHost: ").append(host_header);
  pending_.append(
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n");
  if (!subprotocol.empty()) {
    pending_.append("Sec-WebSocket-Protocol: ").append(subprotocol).append("\r\n");
  }
  pending_.append("User-Agent: fngate_load\r\n\r\n");
  boost::system::error_code ec;
  socket_.open(tcp::v4(), ec);
  if (!ec && source.has_value()) {
    socket_.set_option(BindAddressNoPort(true), ec);
    if (!ec) socket_.bind(tcp::endpoint(*source, 0), ec);
  }
  if (ec) {
    // Report from a handler, never from inside Start(): callers may be iterating.
    net::post(socket_.get_executor(), [self = shared_from_this(), ec] {
      self->Finish(CloseKind::kConnectFailed, "socket: " + ec.message());
    });
    return;
  }
  socket_.async_connect(server, [self = shared_from_this()](boost::system::error_code ec) {
    self->OnConnect(ec);
  });
}

void WsLoadConnection::OnConnect(boost::system::error_code ec) {
  if (state_ == State::kClosed) return;
  if (ec) return Finish(CloseKind::kConnectFailed, "connect: " + ec.message());
  socket_.set_option(tcp::no_delay(true), ec);
  state_ = State::kUpgrading;
  Flush();  // The upgrade request.
  parser_ = std::make_unique<http::response_parser<http::empty_body>>();
  http::async_read_header(socket_, in_, *parser_,
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                            self->OnUpgradeResponse(ec);
                          });
}

void WsLoadConnection::OnUpgradeResponse(boost::system::error_code ec) {
  if (state_ == State::kClosed) return;
  if (ec) return Finish(CloseKind::kConnectFailed, "upgrade: " + ec.message());
  http_status_ = parser_->get().result_int();
  parser_.reset();
  if (http_status_ != 101) {
    return Finish(CloseKind::kConnectFailed, "upgrade refused: HTTP " + std::to_string(http_status_));
  }
  state_ = State::kOpen;
  handler_.OnOpen(*this);
  // Frames that came with the 101 answer (a first message from the server) are in in_ already.
  if (state_ == State::kClosed || !ParseFrames()) return;
  ReadNext();
}

void WsLoadConnection::ReadNext() {
  socket_.async_read_some(in_.prepare(read_chunk_),
                          [self = shared_from_this()](boost::system::error_code ec,
                                                      std::size_t bytes) {
                            self->OnRead(ec, bytes);
                          });
}

void WsLoadConnection::OnRead(boost::system::error_code ec, std::size_t bytes) {
  if (state_ == State::kClosed) return;
  if (ec) {
    if (close_received_ && (ec == net::error::eof || ec == net::error::connection_reset)) {
      return Finish(CloseKind::kClean, {});
    }
    return Finish(CloseKind::kError, "read: " + ec.message());
  }
  in_.commit(bytes);
  if (!ParseFrames()) return;
  ReadNext();
}

bool WsLoadConnection::ParseFrames() {
  // Messages the handler sends while this read's frames are handled leave in one write, after
  // the loop, instead of the first alone and the rest in a second one.
  in_parse_ = true;
  const bool alive = ParseFramesInner();
  in_parse_ = false;
  if (alive) Flush();
  return alive;
}

bool WsLoadConnection::ParseFramesInner() {
  while (true) {
    const std::size_t avail = in_.size();
    if (avail < 2) break;
    auto* p = static_cast<unsigned char*>(in_.data().data());
    const bool fin = (p[0] & 0x80) != 0;
    const uint8_t opcode = p[0] & 0x0F;
    const bool masked = (p[1] & 0x80) != 0;
    uint64_t size = p[1] & 0x7F;
    std::size_t header = 2;
    if (size == 126) {
      if (avail < 4) break;
      size = (uint64_t{p[2]} << 8) | p[3];
      header = 4;
    } else if (size == 127) {
      if (avail < 10) break;
      size = 0;
      for (int i = 2; i < 10; ++i) size = (size << 8) | p[i];
      header = 10;
    }
    if (size > kMaxFrameBytes) {
      Finish(CloseKind::kError, "frame larger than kMaxFrameBytes");
      return false;
    }
    const std::size_t mask_at = header;
    if (masked) header += 4;
    if (avail < header + size) break;
    char* payload = reinterpret_cast<char*>(p + header);
    if (masked) {  // Servers must not mask; tolerate it anyway.
      for (std::size_t i = 0; i < size; ++i) payload[i] ^= p[mask_at + (i & 3)];
    }
    const bool alive = HandleFrame(fin, opcode, payload, static_cast<std::size_t>(size));
    if (!alive || state_ == State::kClosed) return false;
    in_.consume(header + static_cast<std::size_t>(size));
  }
  return true;
}

bool WsLoadConnection::HandleFrame(bool fin, uint8_t opcode, char* payload, std::size_t size) {
  switch (opcode) {
    case kOpText:
    case kOpBinary:
      if (fin) {
        if (state_ == State::kOpen) handler_.OnMessage(*this, {payload, size}, opcode == kOpBinary);
      } else {
        fragments_.assign(payload, size);
        fragments_binary_ = opcode == kOpBinary;
      }
      return true;
    case kOpContinuation:
      fragments_.append(payload, size);
      if (fin && state_ == State::kOpen) {
        handler_.OnMessage(*this, fragments_, fragments_binary_);
        fragments_.clear();
      }
      return true;
    case kOpPing:
      AppendFrame(kOpPong, {payload, size});
      Flush();
      return true;
    case kOpPong:
      return true;
    case kOpClose:
      close_received_ = true;
      if (!close_sent_) {  // The server started it: answer with its code, then wait for EOF.
        close_code_ = size >= 2 ? (static_cast<uint8_t>(payload[0]) << 8) |
                                      static_cast<uint8_t>(payload[1])
                                : 1005;
        close_sent_ = true;
        AppendFrame(kOpClose, {payload, size >= 2 ? std::size_t{2} : std::size_t{0}});
        Flush();
      }
      state_ = State::kClosing;
      return true;
    default:
      Finish(CloseKind::kError, "bad opcode from server");
      return false;
  }
}

void WsLoadConnection::AppendFrame(uint8_t opcode, std::string_view payload) {
  const std::size_t size = payload.size();
  unsigned char header[14];
  std::size_t h = 0;
  header[h++] = 0x80 | opcode;
  if (size < 126) {
    header[h++] = 0x80 | static_cast<unsigned char>(size);
  } else if (size < 65536) {
    header[h++] = 0x80 | 126;
    header[h++] = static_cast<unsigned char>(size >> 8);
    header[h++] = static_cast<unsigned char>(size);
  } else {
    header[h++] = 0x80 | 127;
    for (int shift = 56; shift >= 0; shift -= 8) {
      header[h++] = static_cast<unsigned char>(static_cast<uint64_t>(size) >> shift);
    }
  }
  std::memcpy(header + h, mask_, 4);
  h += 4;
  const std::size_t at = pending_.size();
  pending_.resize(at + h + size);
  char* out = pending_.data() + at;
  std::memcpy(out, header, h);
  out += h;
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {  // The key repeats every 4 bytes: mask 8 at a time.
    uint64_t word;
    std::memcpy(&word, payload.data() + i, 8);
    word ^= mask64_;
    std::memcpy(out + i, &word, 8);
  }
  for (; i < size; ++i) out[i] = static_cast<char>(payload[i] ^ mask_[i & 3]);
}

void WsLoadConnection::Send(std::string_view payload, bool binary) {
  if (state_ != State::kOpen) return;
  AppendFrame(binary ? kOpBinary : kOpText, payload);
  if (!in_parse_) Flush();
}

void WsLoadConnection::Close(uint16_t code) {
  if (state_ != State::kOpen) return;
  const char body[2] = {static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  close_sent_ = true;
  state_ = State::kClosing;
  AppendFrame(kOpClose, {body, 2});
  Flush();
}

void WsLoadConnection::Abort() {
  if (state_ != State::kClosed) Finish(CloseKind::kAborted, "aborted");
}

void WsLoadConnection::Flush() {
  if (write_in_flight_ || pending_.empty() || state_ == State::kClosed) return;
  writing_.swap(pending_);
  pending_.clear();
  write_in_flight_ = true;
  net::async_write(socket_, net::buffer(writing_),
                   [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                     self->OnWrite(ec);
                   });
}

void WsLoadConnection::OnWrite(boost::system::error_code ec) {
  write_in_flight_ = false;
  writing_.clear();
  if (state_ == State::kClosed) return;
  if (ec) {
    // After the close handshake started, the server may already have gone: not an error.
    if (close_received_) return Finish(CloseKind::kClean, {});
    return Finish(CloseKind::kError, "write: " + ec.message());
  }
  Flush();
}

void WsLoadConnection::Finish(CloseKind kind, std::string_view why) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  boost::system::error_code ignored;
  socket_.close(ignored);
  pending_.clear();
  pending_.shrink_to_fit();
  in_ = beast::flat_buffer();  // Memory back now: idle scenarios hold many finished ones.
  handler_.OnClosed(*this, kind, why);
}

}  // namespace fngate::load
