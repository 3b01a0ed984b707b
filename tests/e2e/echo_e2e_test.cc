// End to end: echo of text, binary and 1 MiB messages through the real gateway and a real echo
// worker process.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::WsMessage;
using test_support::WsTestClient;

class EchoE2eTest : public EchoClusterTest {
 protected:
  // Sends `data` and expects it back, byte for byte and of the same kind.
  void ExpectEcho(WsTestClient& client, const std::string& data, bool binary) {
    ASSERT_TRUE(IsOk(binary ? client.SendBinary(data, kIoTimeout) : client.SendText(data, kIoTimeout)));
    absl::StatusOr<WsMessage> reply = client.Read(kIoTimeout);
    ASSERT_TRUE(IsOk(reply));
    EXPECT_EQ(reply->is_binary, binary);
    ASSERT_EQ(reply->data.size(), data.size());
    EXPECT_TRUE(reply->data == data) << "payload differs";  // No 1 MiB diff in the log.
  }

};

TEST_F(EchoE2eTest, TextComesBackAsText) {
  WsTestClient client;
  absl::StatusOr<std::string> id = ConnectAndGetId(client, gateway_, worker_, "/echo");
  ASSERT_TRUE(IsOk(id));
  ExpectEcho(client, "hello, fngate", /*binary=*/false);
  // It went through the worker: one message event, the connection's first.
  ASSERT_TRUE(IsOk(WaitForEvents(worker_, "message", *id, 1)));
  std::vector<test_support::WorkerEvent> messages = Events(worker_, "message", *id);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].Field("seq"), "1");
}

TEST_F(EchoE2eTest, BinaryComesBackAsBinary) {
  WsTestClient client;
  ASSERT_TRUE(IsOk(client.Connect("127.0.0.1", gateway_.ready.Port("ws"), "/echo", kIoTimeout)));
  // Not valid UTF-8: only survives if it stays binary end to end.
  const std::string bytes("\x00\xff\xfe\x80\x01\x02 binary \xc3\x28", 16);
  ExpectEcho(client, bytes, /*binary=*/true);
  ExpectEcho(client, "text after binary", /*binary=*/false);
}

TEST_F(EchoE2eTest, OneMebibyteMessages) {
  WsTestClient client;
  ASSERT_TRUE(IsOk(client.Connect("127.0.0.1", gateway_.ready.Port("ws"), "/echo", kIoTimeout)));
  std::string text(1 << 20, ' ');
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + (i * 7 + i / 1000) % 26);
  ExpectEcho(client, text, /*binary=*/false);
  std::string binary(1 << 20, '\0');
  for (size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>((i * 31 + i / 251) & 0xff);
  ExpectEcho(client, binary, /*binary=*/true);
}

}  // namespace
}  // namespace fngate::e2e
