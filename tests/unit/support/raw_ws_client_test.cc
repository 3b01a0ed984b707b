// Unit tests of tests/support/raw_ws_client.h: frames built byte for byte as RFC 6455's own
// examples, and a round trip against an in-process Beast server (which also shows what Beast
// itself answers to a frame with a reserved bit set).
#include "tests/support/raw_ws_client.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace fngate::test_support {
namespace {

namespace net = boost::asio;
namespace websocket = boost::beast::websocket;
using tcp = net::ip::tcp;

constexpr absl::Duration kTimeout = absl::Seconds(5);

// RFC 6455 section 5.7.
TEST(RawFrameTest, BuildsTheRfcExamples) {
  EXPECT_EQ(RawFrame::Build(WsOpcode::kText, "Hello", {.masked = false}),
            std::string("\x81\x05Hello", 7));
  EXPECT_EQ(RawFrame::Build(WsOpcode::kText, "Hello", {.mask_key = 0x37fa213d}),
            std::string("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11));
  EXPECT_EQ(RawFrame::Build(WsOpcode::kText, "Hel", {.fin = false, .masked = false}),
            std::string("\x01\x03Hel", 5));
  const std::string long_frame =
      RawFrame::Build(WsOpcode::kBinary, std::string(256, 'x'), {.masked = false});
  EXPECT_EQ(long_frame.substr(0, 4), std::string("\x82\x7e\x01\x00", 4));
  const std::string huge_frame =
      RawFrame::Build(WsOpcode::kBinary, std::string(65536, 'x'), {.masked = false});
  EXPECT_EQ(huge_frame.substr(0, 10), std::string("\x82\x7f\0\0\0\0\0\x01\0\0", 10));
  EXPECT_EQ(RawFrame::Build(WsOpcode::kPing, "", {.rsv = kRsv1 | kRsv3, .masked = false}),
            std::string("\xd9\x00", 2));
  EXPECT_EQ(RawFrame::ClosePayload(1000, "ok"), std::string("\x03\xe8ok", 4));
}

// Accepts one WebSocket connection and echoes until it fails; then reports the error.
class OneShotServer {
 public:
  OneShotServer() : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] {
      boost::system::error_code ec;
      websocket::stream<tcp::socket> ws(ioc_);
      acceptor_.accept(ws.next_layer(), ec);
      if (!ec) ws.accept(ec);
      boost::beast::flat_buffer buffer;
      while (!ec) {
        ws.read(buffer, ec);
        if (ec) break;
        ws.text(ws.got_text());
        ws.write(buffer.data(), ec);
        buffer.consume(buffer.size());
      }
      error_ = ec;
    });
  }
  ~OneShotServer() { thread_.join(); }
  int port() const { return port_; }
  // Valid once the destructor joined; read in the test after the server object is gone.
  boost::system::error_code error() const { return error_; }

 private:
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  int port_ = 0;
  std::thread thread_;
  boost::system::error_code error_;
};

TEST(RawWsClientTest, UpgradeEchoPingAndProtocolError) {
  OneShotServer server;
  RawWsClient raw;
  ASSERT_TRUE(raw.Connect("127.0.0.1", server.port(), kTimeout).ok());
  absl::StatusOr<HttpHead> head = raw.Upgrade("/", kTimeout);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->status, 101);
  EXPECT_EQ(head->Header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

  ASSERT_TRUE(raw.Write(RawFrame::Build(WsOpcode::kText, "hello"), kTimeout).ok());
  absl::StatusOr<RawFrame> echo = raw.ReadFrame(kTimeout);
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(echo->opcode, static_cast<uint8_t>(WsOpcode::kText));
  EXPECT_FALSE(echo->masked);  // Servers never mask.
  EXPECT_EQ(echo->payload, "hello");

  ASSERT_TRUE(raw.Write(RawFrame::Build(WsOpcode::kPing, "p"), kTimeout).ok());
  absl::StatusOr<RawFrame> pong = raw.ReadFrame(kTimeout);
  ASSERT_TRUE(pong.ok()) << pong.status();
  EXPECT_EQ(pong->opcode, static_cast<uint8_t>(WsOpcode::kPong));
  EXPECT_EQ(pong->payload, "p");

  ASSERT_TRUE(raw.Write(RawFrame::Build(WsOpcode::kText, "x", {.rsv = kRsv2}), kTimeout).ok());
  absl::StatusOr<RawFrame> close = raw.ReadCloseFrame(kTimeout);
  ASSERT_TRUE(close.ok()) << close.status();
  EXPECT_EQ(close->CloseCode(), 1002);
  raw.Close();
}

TEST(RawWsClientTest, WaitForEofSeesTheServerLeave) {
  net::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  RawWsClient raw;
  ASSERT_TRUE(raw.Connect("127.0.0.1", acceptor.local_endpoint().port(), kTimeout).ok());
  tcp::socket peer(ioc);
  acceptor.accept(peer);
  EXPECT_TRUE(absl::IsDeadlineExceeded(raw.WaitForEof(absl::Milliseconds(50))));  // Still open.
  peer.close();
  EXPECT_TRUE(raw.WaitForEof(kTimeout).ok());
}

}  // namespace
}  // namespace fngate::test_support
