// End to end: permessage-deflate (RFC 7692), enabled per function. A Beast client that offers
// it gets it on /zip and not on /echo; compressed messages make the round trip; and
// max_message_bytes applies to the message after decompression, so a small compressed frame
// that inflates past the limit (a decompression bomb) is closed with 1009.
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/e2e/limits_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::WsConnectOptions;
using test_support::WsTestClient;

class DeflateE2eTest : public LimitsClusterTest {
 protected:
  void SetUp() override {
    StartCluster({}, {{"zip", {"permessage_deflate=true", "limits.max_message_bytes=65536"}}});
  }
  static WsConnectOptions Deflate() {
    WsConnectOptions options;
    options.permessage_deflate = true;
    return options;
  }
};

TEST_F(DeflateE2eTest, CompressedMessagesMakeTheRoundTrip) {
  WsTestClient client;
  ASSERT_TRUE(IsOk(client.Connect("127.0.0.1", ws_port(), "/zip", kIoTimeout, Deflate())));
  EXPECT_TRUE(absl::StrContains(client.HandshakeHeader("Sec-WebSocket-Extensions"),
                                "permessage-deflate"))
      << "'" << client.HandshakeHeader("Sec-WebSocket-Extensions") << "'";
  std::string text;
  while (text.size() < 60000) text += "the same words again and again, ";
  ExpectEchoes(client, text);
  ExpectEchoes(client, "short");
  ASSERT_TRUE(IsOk(client.SendBinary(std::string("\x00\x01\x02", 3), kIoTimeout)));
  absl::StatusOr<test_support::WsMessage> reply = client.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(reply));
  EXPECT_TRUE(reply->is_binary);
  EXPECT_EQ(reply->data, std::string("\x00\x01\x02", 3));
  ExpectBystanderEchoes();
}

TEST_F(DeflateE2eTest, NotNegotiatedWhereTheFunctionDoesNotEnableIt) {
  WsTestClient client;
  ASSERT_TRUE(IsOk(client.Connect("127.0.0.1", ws_port(), "/echo", kIoTimeout, Deflate())));
  EXPECT_EQ(client.HandshakeHeader("Sec-WebSocket-Extensions"), "");
  ExpectEchoes(client, "plain");
}

// A decompression bomb: one compressed frame of a few KiB, far under the 64 KiB limit on the
// wire, that inflates to 4 MiB. Sent by hand, so the frame is exactly one and the client has
// finished writing it when the gateway answers.
TEST_F(DeflateE2eTest, DecompressionBombIsClosed1009) {
  const std::string bomb = test_support::RawFrame::Deflate(std::string(4 << 20, 'a'));
  ASSERT_LT(bomb.size(), 65536u);
  test_support::RawWsClient raw;
  ConnectRaw(raw);
  const int before = test_support::CountWorkerEvents(worker_->Output(), "connect");
  absl::StatusOr<test_support::HttpHead> head =
      raw.Upgrade("/zip", kIoTimeout, {"Sec-WebSocket-Extensions: permessage-deflate"});
  ASSERT_TRUE(IsOk(head));
  ASSERT_EQ(head->status, 101);
  ASSERT_TRUE(absl::StrContains(head->Header("sec-websocket-extensions"), "permessage-deflate"));
  ASSERT_TRUE(IsOk(WaitForEvents(worker_, "connect", "", before + 1)));
  const std::string id = Events(worker_, "connect")[before].conn;

  // First a small compressed message, to show the frame building is right.
  ASSERT_TRUE(IsOk(raw.Write(test_support::RawFrame::Build(
                                 test_support::WsOpcode::kText,
                                 test_support::RawFrame::Deflate("squeezed"),
                                 {.rsv = test_support::kRsv1}),
                             kIoTimeout)));
  absl::StatusOr<test_support::RawFrame> echo = raw.ReadFrame(kEventTimeout);
  ASSERT_TRUE(IsOk(echo));
  EXPECT_EQ(echo->rsv, test_support::kRsv1) << "the echo comes compressed too";

  ASSERT_TRUE(IsOk(raw.Write(test_support::RawFrame::Build(test_support::WsOpcode::kText, bomb,
                                                           {.rsv = test_support::kRsv1}),
                             kIoTimeout)));
  absl::StatusOr<test_support::RawFrame> close = raw.ReadCloseFrame(kEventTimeout);
  ASSERT_TRUE(IsOk(close));
  EXPECT_EQ(close->CloseCode(), 1009);
  EXPECT_TRUE(IsOk(raw.WaitForEof(kEventTimeout)));
  ExpectDisconnect(id, "LIMIT", 1009);
  EXPECT_EQ(WaitForLimitHits("zip", "message_size", 1), 1u);
  EXPECT_EQ(Events(worker_, "message", id).size(), 1u) << "only the small message arrived";
  ExpectBystanderEchoes();
}

}  // namespace
}  // namespace fngate::e2e
