// End to end: the envelope protocol (subprotocol fngate.v1, docs/envelope.md) through a real
// gateway and echo worker.
//   - the first frame is `open` with the connection id (the one the worker saw) and user id;
//   - a message with an ack id: the function's reply arrives as a `message` frame, then the
//     `ack`; JSON data reaches the function as JSON and comes back inline;
//   - pushes from the control service: text as a JSON string, JSON inline, binary as binary,
//     Emit as an `event` frame;
//   - ping gets pong; a malformed frame gets an error (or an ack error) and the function is
//     not called;
//   - the worker down: the ack carries the error and the connection stays open;
//   - a raw client on the same function sees untouched payloads.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::WsConnectOptions;
using test_support::WsMessage;
using test_support::WsTestClient;
using ::testing::HasSubstr;

class EnvelopeE2eTest : public EchoClusterTest {
 protected:
  void SetUp() override {
    EchoClusterTest::SetUp();
    if (!HasFatalFailure()) control_ = NewControlStub(gateway_);
  }

  // Connects with the envelope subprotocol and returns the connection id the worker saw.
  std::string ConnectEnvelope(WsTestClient& client, const std::string& target) {
    const int before = static_cast<int>(Events(worker_, "connect").size());
    WsConnectOptions options;
    options.subprotocols = {"fngate.v1"};
    EXPECT_TRUE(IsOk(client.Connect("127.0.0.1", gateway_.ready.Port("ws"), target, kIoTimeout,
                                    options)));
    EXPECT_EQ(client.HandshakeHeader("Sec-WebSocket-Protocol"), "fngate.v1");
    EXPECT_TRUE(IsOk(WaitForEvents(worker_, "connect", "", before + 1)));
    auto connects = Events(worker_, "connect");
    return connects.size() > static_cast<size_t>(before) ? connects[before].conn : "";
  }

  static std::string Next(WsTestClient& client, bool* binary = nullptr,
                          absl::Duration timeout = kIoTimeout) {
    absl::StatusOr<WsMessage> message = client.Read(timeout);
    EXPECT_TRUE(IsOk(message));
    if (!message.ok()) return "";
    if (binary != nullptr) *binary = message->is_binary;
    return message->data;
  }

  void Push(const std::string& id, const v1::Payload& payload) {
    v1::SendRequest request;
    request.mutable_target()->add_connection_ids(id);
    *request.mutable_payload() = payload;
    v1::SendResponse response;
    grpc::ClientContext context;
    SetDeadline(context);
    grpc::Status status = control_->Send(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.delivered(), 1);
  }

  std::unique_ptr<v1::GatewayControl::Stub> control_;
};

TEST_F(EnvelopeE2eTest, OpenFrameCarriesTheConnectionAndUser) {
  WsTestClient client;
  const std::string id = ConnectEnvelope(client, "/echo?user=ann");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Next(client), absl::StrCat(R"({"type":"open","connectionId":")", id,
                                       R"(","userId":"ann"})"));
  WsTestClient anonymous;
  const std::string id2 = ConnectEnvelope(anonymous, "/echo");
  EXPECT_EQ(Next(anonymous),
            absl::StrCat(R"({"type":"open","connectionId":")", id2, R"(","userId":null})"));
}

TEST_F(EnvelopeE2eTest, MessagesAreAnsweredThenAcked) {
  WsTestClient client;
  ConnectEnvelope(client, "/echo");
  Next(client);  // open
  ASSERT_TRUE(IsOk(client.SendText(R"({"type":"message","data":"hi","ack":"a1"})", kIoTimeout)));
  EXPECT_EQ(Next(client), R"({"type":"message","data":"hi"})");
  EXPECT_EQ(Next(client), R"({"type":"ack","id":"a1","ok":true})");
  // JSON data goes to the function as JSON and comes back inline; a numeric ack id stays one.
  ASSERT_TRUE(IsOk(
      client.SendText(R"({"type":"message","data":{"n":[1,2]},"ack":7})", kIoTimeout)));
  EXPECT_EQ(Next(client), R"({"type":"message","data":{"n":[1,2]}})");
  EXPECT_EQ(Next(client), R"({"type":"ack","id":7,"ok":true})");
  // Without an ack id: the reply, and no ack.
  ASSERT_TRUE(IsOk(client.SendText(R"({"type":"message","data":"quiet"})", kIoTimeout)));
  EXPECT_EQ(Next(client), R"({"type":"message","data":"quiet"})");
  ASSERT_TRUE(IsOk(client.SendText(R"({"type":"ping"})", kIoTimeout)));
  EXPECT_EQ(Next(client), R"({"type":"pong"})");  // Not an ack: none was owed.
}

TEST_F(EnvelopeE2eTest, PushesAreWrappedBinaryStaysBinary) {
  WsTestClient client;
  const std::string id = ConnectEnvelope(client, "/echo");
  Next(client);  // open
  v1::Payload text;
  text.set_text("say \"hi\"\n");
  Push(id, text);
  v1::Payload json;
  json.set_json(R"({"score":3})");
  Push(id, json);
  v1::Payload binary;
  binary.set_binary(std::string("\x00\x01\xff", 3));
  Push(id, binary);
  EXPECT_EQ(Next(client), R"({"type":"message","data":"say \"hi\"\n"})");
  EXPECT_EQ(Next(client), R"({"type":"message","data":{"score":3}})");
  bool is_binary = false;
  EXPECT_EQ(Next(client, &is_binary), std::string("\x00\x01\xff", 3));
  EXPECT_TRUE(is_binary);

  v1::EmitRequest emit;
  emit.mutable_target()->add_connection_ids(id);
  emit.set_name("invalidToken");
  emit.set_data_json(R"({"retry":false})");
  v1::EmitResponse emitted;
  grpc::ClientContext context;
  SetDeadline(context);
  ASSERT_TRUE(control_->Emit(&context, emit, &emitted).ok());
  EXPECT_EQ(Next(client), R"({"type":"event","name":"invalidToken","data":{"retry":false}})");
}

TEST_F(EnvelopeE2eTest, MalformedFramesGetAnErrorAndNeverReachTheFunction) {
  WsTestClient client;
  const std::string id = ConnectEnvelope(client, "/echo");
  Next(client);  // open
  ASSERT_TRUE(IsOk(client.SendText("not json", kIoTimeout)));
  EXPECT_THAT(Next(client), HasSubstr(R"("type":"error")"));
  ASSERT_TRUE(IsOk(client.SendText(R"({"type":"message","ack":"x9"})", kIoTimeout)));
  const std::string ack = Next(client);
  EXPECT_THAT(ack, HasSubstr(R"("type":"ack","id":"x9","ok":false)"));
  EXPECT_THAT(ack, HasSubstr("INVALID_ARGUMENT"));
  // The connection still works, and the function saw only this one message.
  ASSERT_TRUE(IsOk(client.SendText(R"({"type":"message","data":"ok","ack":"a"})", kIoTimeout)));
  EXPECT_EQ(Next(client), R"({"type":"message","data":"ok"})");
  EXPECT_EQ(Next(client), R"({"type":"ack","id":"a","ok":true})");
  EXPECT_EQ(Events(worker_, "message", id).size(), 1u);
}

TEST_F(EnvelopeE2eTest, FailedMessagesAreAckedWithTheErrorAndTheClientStays) {
  WsTestClient client;
  ConnectEnvelope(client, "/echo");
  Next(client);  // open
  // "fail" makes the echo function return INTERNAL.
  ASSERT_TRUE(IsOk(client.SendText(R"({"type":"message","data":"fail","ack":"f1"})",
                                   kIoTimeout)));
  const std::string failed = Next(client);
  EXPECT_THAT(failed, HasSubstr(R"("type":"ack","id":"f1","ok":false)"));
  EXPECT_THAT(failed, HasSubstr("INTERNAL"));

  // The worker goes away: the next message waits for one until its deadline (10 s by
  // default), then its ack says UNAVAILABLE; the connection stays.
  worker_ = Started();
  ASSERT_TRUE(IsOk(client.SendText(R"({"type":"message","data":"x","ack":"d1"})", kIoTimeout)));
  const std::string down = Next(client, nullptr, absl::Seconds(20));
  EXPECT_THAT(down, HasSubstr(R"("type":"ack","id":"d1","ok":false)"));
  EXPECT_THAT(down, HasSubstr("UNAVAILABLE"));
  EXPECT_TRUE(client.IsOpen());
  ASSERT_TRUE(IsOk(client.SendText(R"({"type":"ping"})", kIoTimeout)));
  EXPECT_EQ(Next(client), R"({"type":"pong"})");
}

TEST_F(EnvelopeE2eTest, RawClientsOnTheSameFunctionSeeUntouchedPayloads) {
  WsTestClient raw;
  absl::StatusOr<std::string> id = ConnectAndGetId(raw, gateway_, worker_, "/echo");
  ASSERT_TRUE(IsOk(id));
  EXPECT_EQ(raw.HandshakeHeader("Sec-WebSocket-Protocol"), "");
  ASSERT_TRUE(IsOk(raw.SendText(R"({"type":"message","data":"hi","ack":"a1"})", kIoTimeout)));
  EXPECT_EQ(Next(raw), R"({"type":"message","data":"hi","ack":"a1"})");  // Echoed as it was.
  v1::Payload json;
  json.set_json(R"({"score":3})");
  Push(*id, json);
  EXPECT_EQ(Next(raw), R"({"score":3})");
}

}  // namespace
}  // namespace fngate::e2e
