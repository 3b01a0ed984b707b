// The reply contexts record actions into response protos the test owns (as a Function's own
// tests would), and GatewayClient::ForceLogout is Emit with the documented close.
#include "fngate/runtime/context.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fngate::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::ConnectEvent NewConnectEvent() {
  v1::ConnectEvent event;
  event.mutable_connection()->set_connection_id("c1");
  event.mutable_connection()->set_function("chat");
  event.set_request_id("c1-1");
  return event;
}

v1::MessageEvent NewMessageEvent() {
  v1::MessageEvent event;
  v1::ConnectionContext& c = *event.mutable_connection();
  c.set_connection_id("c1");
  c.set_user_id("alice");
  c.set_app_id("shop");
  c.set_channel("ios");
  c.set_device_id("phone-1");
  event.set_request_id("c1-2");
  event.set_sequence(1);
  event.mutable_payload()->set_text("hi");
  return event;
}

TEST(ConnectContextTest, IdentityAndGroupsFillTheConnectResponse) {
  const v1::ConnectEvent event = NewConnectEvent();
  v1::ConnectResponse response;
  ConnectContext ctx(event, response);
  ctx.BindUser("alice");
  ctx.SetAppId("shop");
  ctx.SetChannel("ios");
  ctx.SetDeviceId("phone-1");
  ctx.SetMetadata("k", "v");
  ctx.Join("room:a");
  ctx.Join("room:b");
  ctx.Join("room:a");  // Already there.
  ctx.Leave("room:b");
  ctx.Leave("room:never");

  EXPECT_EQ(response.user_id(), "alice");
  EXPECT_EQ(response.app_id(), "shop");
  EXPECT_EQ(response.channel(), "ios");
  EXPECT_EQ(response.device_id(), "phone-1");
  EXPECT_EQ(response.metadata().at("k"), "v");
  EXPECT_THAT(response.groups(), ElementsAre("room:a"));
  EXPECT_THAT(response.actions(), IsEmpty());  // Nothing left to run after the open.
}

TEST(ConnectContextTest, ActionsForOthersRunAfterTheOpen) {
  const v1::ConnectEvent event = NewConnectEvent();
  v1::ConnectResponse response;
  ConnectContext ctx(event, response);
  ctx.Join(To::User("bob"), "room:a");
  ctx.Emit(To::Group("room:a").Except(ctx.connection_id()), "joined", R"({"id":"c1"})");

  ASSERT_EQ(response.actions_size(), 2);
  const v1::Action::Join& join = response.actions(0).join();
  EXPECT_THAT(join.target().user_ids(), ElementsAre("bob"));
  EXPECT_THAT(join.groups(), ElementsAre("room:a"));
  const v1::Action::Emit& emit = response.actions(1).emit();
  EXPECT_THAT(emit.target().groups(), ElementsAre("room:a"));
  EXPECT_THAT(emit.target().exclude_connection_ids(), ElementsAre("c1"));
  EXPECT_EQ(emit.name(), "joined");
  EXPECT_EQ(emit.data_json(), R"({"id":"c1"})");
  EXPECT_FALSE(emit.close());
  EXPECT_TRUE(response.groups().empty());
}

TEST(MessageContextTest, GettersReadTheConnection) {
  const v1::MessageEvent event = NewMessageEvent();
  v1::MessageResponse response;
  MessageContext ctx(event, response);
  EXPECT_EQ(ctx.user_id(), "alice");
  EXPECT_EQ(ctx.app_id(), "shop");
  EXPECT_EQ(ctx.channel(), "ios");
  EXPECT_EQ(ctx.device_id(), "phone-1");
  EXPECT_TRUE(ctx.is_text());
  EXPECT_FALSE(ctx.is_json());
}

TEST(MessageContextTest, JsonMessageIsTextAndEchoesAsJson) {
  v1::MessageEvent event = NewMessageEvent();
  event.mutable_payload()->set_json(R"({"a":1})");
  v1::MessageResponse response;
  MessageContext ctx(event, response);
  EXPECT_TRUE(ctx.is_text());
  EXPECT_TRUE(ctx.is_json());
  EXPECT_EQ(ctx.data(), R"({"a":1})");
  ctx.Reply(ctx.payload());
  ASSERT_EQ(response.actions_size(), 1);
  EXPECT_EQ(response.actions(0).send().payload().json(), R"({"a":1})");
}

TEST(MessageContextTest, IdentitySettersBecomeOrderedBindActions) {
  const v1::MessageEvent event = NewMessageEvent();
  v1::MessageResponse response;
  MessageContext ctx(event, response);
  ctx.BindUser("bob");
  ctx.SetAppId("shop2");  // Shares the Bind action right before it.
  ctx.Send(To::User("bob"), Payload::Text("hello bob"));
  ctx.SetChannel("");     // After the send: a Bind action of its own. Empty clears.
  ctx.SetMetadata("k", "");

  ASSERT_EQ(response.actions_size(), 3);
  const v1::Action::Bind& first = response.actions(0).bind();
  EXPECT_FALSE(first.has_target());  // This connection.
  EXPECT_EQ(first.identity().user_id(), "bob");
  EXPECT_EQ(first.identity().app_id(), "shop2");
  EXPECT_FALSE(first.identity().has_channel());
  EXPECT_TRUE(response.actions(1).has_send());
  const v1::Action::Bind& second = response.actions(2).bind();
  EXPECT_TRUE(second.identity().has_channel());
  EXPECT_EQ(second.identity().channel(), "");
  EXPECT_FALSE(second.identity().has_user_id());
  EXPECT_EQ(second.identity().metadata().at("k"), "");
}

TEST(MessageContextTest, JoinAndLeaveThisConnectionOrOthers) {
  const v1::MessageEvent event = NewMessageEvent();
  v1::MessageResponse response;
  MessageContext ctx(event, response);
  ctx.Join("room:a");
  ctx.Leave("room:b");
  ctx.Join(To::Connections({"c2", "c3"}), "room:a");
  ctx.Leave(To::User("bob").InFunction("chat"), "room:a");

  ASSERT_EQ(response.actions_size(), 4);
  EXPECT_FALSE(response.actions(0).join().has_target());
  EXPECT_THAT(response.actions(0).join().groups(), ElementsAre("room:a"));
  EXPECT_FALSE(response.actions(1).leave().has_target());
  EXPECT_THAT(response.actions(1).leave().groups(), ElementsAre("room:b"));
  EXPECT_THAT(response.actions(2).join().target().connection_ids(), ElementsAre("c2", "c3"));
  const v1::Target& leave = response.actions(3).leave().target();
  EXPECT_THAT(leave.user_ids(), ElementsAre("bob"));
  EXPECT_THAT(leave.functions(), ElementsAre("chat"));
}

TEST(MessageContextTest, EmitAndCloseToThisConnectionOrATarget) {
  const v1::MessageEvent event = NewMessageEvent();
  v1::MessageResponse response;
  MessageContext ctx(event, response);
  ctx.Emit("tick", "");
  ctx.Emit(To::User("bob"), "forceLogout", R"({"by":"alice"})",
           EmitOptions{true, 4001, std::string(200, 'r')});
  ctx.Close(To::Group("room:a"), 4000, "room closed");
  ctx.Close();

  ASSERT_EQ(response.actions_size(), 4);
  const v1::Action::Emit& self = response.actions(0).emit();
  EXPECT_FALSE(self.has_target());
  EXPECT_EQ(self.name(), "tick");
  EXPECT_FALSE(self.close());
  const v1::Action::Emit& other = response.actions(1).emit();
  EXPECT_THAT(other.target().user_ids(), ElementsAre("bob"));
  EXPECT_TRUE(other.close());
  EXPECT_EQ(other.code(), 4001);
  EXPECT_EQ(other.reason().size(), 123u);
  const v1::Action::Close& close = response.actions(2).close();
  EXPECT_THAT(close.target().groups(), ElementsAre("room:a"));
  EXPECT_EQ(close.code(), 4000);
  EXPECT_EQ(close.reason(), "room closed");
  EXPECT_FALSE(response.actions(3).close().has_target());
  EXPECT_EQ(response.actions(3).close().code(), 1000);
}

TEST(MessageContextTest, BindOthers) {
  const v1::MessageEvent event = NewMessageEvent();
  v1::MessageResponse response;
  MessageContext ctx(event, response);
  IdentityChange change;
  change.device_id = "tablet";
  ctx.BindUser(To::Connection("c2"), change);
  ctx.BindUser(To::Connection("c2"), IdentityChange{});  // Nothing to change: no action.

  ASSERT_EQ(response.actions_size(), 1);
  const v1::Action::Bind& bind = response.actions(0).bind();
  EXPECT_THAT(bind.target().connection_ids(), ElementsAre("c2"));
  EXPECT_EQ(bind.identity().device_id(), "tablet");
  EXPECT_FALSE(bind.identity().has_user_id());
}

// An empty To would mean "this connection" on the wire; in the API it means nobody.
TEST(MessageContextTest, EmptyToRecordsNothing) {
  const v1::MessageEvent event = NewMessageEvent();
  v1::MessageResponse response;
  MessageContext ctx(event, response);
  const To nobody = To::Connections({}).Except("c9");
  IdentityChange change;
  change.user_id = "x";
  ctx.Send(nobody, Payload::Text("x"));
  ctx.Emit(nobody, "e", "1");
  ctx.Close(nobody, 1000, "");
  ctx.Join(nobody, "g");
  ctx.Leave(nobody, "g");
  ctx.BindUser(nobody, change);
  EXPECT_THAT(response.actions(), IsEmpty());
}

// Records the last Emit; every other call fails.
class FakeGatewayClient final : public GatewayClient {
 public:
  // GatewayClient
  absl::StatusOr<SendResult> Send(const To&, Payload) override { return Unused(); }
  absl::StatusOr<CloseResult> Close(const To&, int, std::string_view) override {
    return Unused();
  }
  absl::StatusOr<EmitResult> Emit(const To& to, std::string_view name, std::string_view data_json,
                                  const EmitOptions& options) override {
    emitted_to = to.user_ids();
    emitted_name = std::string(name);
    emitted_data = std::string(data_json);
    emitted_options = options;
    EmitResult result;
    result.delivered = 2;
    return result;
  }
  absl::StatusOr<ChangeResult> JoinGroups(const To&, const std::vector<std::string>&) override {
    return Unused();
  }
  absl::StatusOr<ChangeResult> LeaveGroups(const To&, const std::vector<std::string>&) override {
    return Unused();
  }
  absl::StatusOr<ChangeResult> BindUser(const To&, const IdentityChange&) override {
    return Unused();
  }
  absl::StatusOr<v1::ConnectionInfo> GetConnection(std::string_view) override { return Unused(); }
  absl::StatusOr<ConnectionPage> ListConnections(const ListOptions&) override { return Unused(); }
  absl::StatusOr<SignedUrl> SignUrl(const SignUrlOptions&) override { return Unused(); }
  const std::string& address() const override { return address_; }

  std::vector<std::string> emitted_to;
  std::string emitted_name;
  std::string emitted_data;
  EmitOptions emitted_options;

 private:
  static absl::Status Unused() { return absl::UnimplementedError("fake"); }
  const std::string address_ = "fake:1";
};

TEST(GatewayClientTest, ForceLogoutIsEmitThenClose) {
  FakeGatewayClient gateway;
  absl::StatusOr<EmitResult> result = gateway.ForceLogout(To::User("alice"), R"({"why":"x"})");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->delivered, 2);
  EXPECT_THAT(gateway.emitted_to, ElementsAre("alice"));
  EXPECT_EQ(gateway.emitted_name, "forceLogout");
  EXPECT_EQ(gateway.emitted_data, R"({"why":"x"})");
  EXPECT_TRUE(gateway.emitted_options.close);
  EXPECT_EQ(gateway.emitted_options.code, 1000);
  EXPECT_EQ(gateway.emitted_options.reason, "force logout");
}

// An event that names no gateway, in a worker without --gateway: every call explains why.
TEST(GatewayClientTest, NoGatewayAddressFailsEveryCallWithFailedPrecondition) {
  const v1::MessageEvent event = NewMessageEvent();
  v1::MessageResponse response;
  MessageContext ctx(event, response);
  GatewayClient& gateway = ctx.Gateway();
  EXPECT_EQ(gateway.ListConnections({}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(gateway.ForceLogout(To::User("a")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(gateway.JoinGroups(To::User("a"), {"g"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(gateway.SignUrl({}).status().code(), absl::StatusCode::kFailedPrecondition);
}

// Checks that need no gateway answer without calling it (the address serves nothing).
TEST(GatewayClientTest, SignUrlRejectsANegativeTtlWithoutCallingTheGateway) {
  GatewayClientOptions client_options;
  client_options.deadline = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<GatewayClient>> gateway =
      GatewayClient::Create("127.0.0.1:1", client_options);
  ASSERT_TRUE(gateway.ok());
  SignUrlOptions options;
  options.function = "chat";
  options.ttl = -absl::Seconds(1);
  absl::StatusOr<SignedUrl> url = (*gateway)->SignUrl(options);
  EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(url.status().message()), ::testing::HasSubstr("ttl"));
  // Empty To: an empty result, no call (so no UNAVAILABLE either).
  absl::StatusOr<ChangeResult> none = (*gateway)->LeaveGroups(To::Users({}), {"g"});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->affected, 0);
}

}  // namespace
}  // namespace fngate::runtime
