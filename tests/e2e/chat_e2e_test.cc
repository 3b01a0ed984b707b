// End to end: the chat worker (functions/chat) on a real gateway. Rooms are gateway groups, users
// are bound with /login, and the worker keeps no state:
//   - a message reaches the sender's room minus the sender, once, and nobody else;
//   - mistakes (no login, bad names, a second login, unknown commands, binary) answer an error;
//   - a bad room name is refused at the handshake;
//   - /who lists the room's users from the online table, and a connection that ends leaves it;
//   - ForceLogout of a user (GatewayClient over the real control port) sends every device of
//     that user the forceLogout event and closes it, with one disconnect event each.
//
// "Nobody else" is checked by order, not by waiting for silence: each client's next message is
// asserted after a later message that the same gateway fanned out after the first one, so a
// stray or duplicate delivery would be read first.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fngate/runtime/gateway_client.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::WsMessage;
using test_support::WsTestClient;

struct ChatClient {
  std::unique_ptr<WsTestClient> ws = std::make_unique<WsTestClient>();
  std::string id;  // The connection id the worker logged.
};

class ChatE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Started> worker = StartChatWorker();
    ASSERT_TRUE(IsOk(worker));
    worker_ = *std::move(worker);
    absl::StatusOr<Started> gateway = StartGateway({FunctionFlag("chat", {&worker_})});
    ASSERT_TRUE(IsOk(gateway));
    gateway_ = *std::move(gateway);
  }

  // A client in `room`, not logged in.
  ChatClient Open(const std::string& room) {
    ChatClient client;
    absl::StatusOr<std::string> id =
        ConnectAndGetId(*client.ws, gateway_, worker_, absl::StrCat("/chat?room=", room));
    EXPECT_TRUE(IsOk(id)) << "opening a client in room " << room;
    if (id.ok()) client.id = *id;
    return client;
  }

  // A client in `room`, logged in as `user`. Once the answer is read, the gateway holds the
  // user and the room membership.
  ChatClient OpenAs(const std::string& room, const std::string& user) {
    ChatClient client = Open(room);
    EXPECT_TRUE(IsOk(client.ws->SendText(absl::StrCat("/login ", user), kIoTimeout)));
    EXPECT_TRUE(NextIs(client, absl::StrCat("logged in as ", user)));
    return client;
  }

  static ::testing::AssertionResult NextIs(ChatClient& client, const std::string& want) {
    absl::StatusOr<WsMessage> message = client.ws->Read(kIoTimeout);
    if (!message.ok()) {
      return ::testing::AssertionFailure() << "want '" << want << "', got " << message.status();
    }
    if (message->is_binary || message->data != want) {
      return ::testing::AssertionFailure() << "want text '" << want << "', got "
                                           << (message->is_binary ? "binary" : "text") << " '"
                                           << message->data << "'";
    }
    return ::testing::AssertionSuccess();
  }

  static ::testing::AssertionResult Says(ChatClient& client, const std::string& text,
                                         const std::string& answer) {
    absl::Status sent = client.ws->SendText(text, kIoTimeout);
    if (!sent.ok()) return ::testing::AssertionFailure() << "sending '" << text << "': " << sent;
    return NextIs(client, answer);
  }

  // The worker logged the disconnect of `client`: the gateway has dropped it from the online
  // table by then (it does so before it sends the event).
  ::testing::AssertionResult Disconnected(const ChatClient& client) {
    absl::Status logged = WaitForEvents(worker_, "disconnect", client.id, 1);
    if (!logged.ok()) return ::testing::AssertionFailure() << logged;
    return ::testing::AssertionSuccess();
  }

  Started worker_;
  Started gateway_;
};

TEST_F(ChatE2eTest, MessageReachesTheRoomMinusTheSender) {
  ChatClient alice = OpenAs("a", "alice");
  ChatClient bob = OpenAs("a", "bob");
  ChatClient carol = OpenAs("a", "carol");
  ChatClient dave = OpenAs("b", "dave");
  ASSERT_FALSE(HasFailure());

  // 1. From alice: bob and carol.
  ASSERT_TRUE(IsOk(alice.ws->SendText("hi all", kIoTimeout)));
  EXPECT_TRUE(NextIs(bob, "alice: hi all"));
  EXPECT_TRUE(NextIs(carol, "alice: hi all"));

  // 2. From dave, alone in room b: nobody. His own next message is his /who answer, so neither
  //    his own line nor alice's reached him.
  ASSERT_TRUE(IsOk(dave.ws->SendText("anyone?", kIoTimeout)));
  EXPECT_TRUE(Says(dave, "/who", R"({"room":"b","users":["dave"]})"));

  // 3. From bob: alice's next message is bob's, so she never got her own line; carol's too, so
  //    she got neither a copy of alice's nor dave's.
  ASSERT_TRUE(IsOk(bob.ws->SendText("hi alice", kIoTimeout)));
  EXPECT_TRUE(NextIs(alice, "bob: hi alice"));
  EXPECT_TRUE(NextIs(carol, "bob: hi alice"));

  // 4. From carol: alice and bob, each once (bob did not get his own line in between).
  ASSERT_TRUE(IsOk(carol.ws->SendText("bye", kIoTimeout)));
  EXPECT_TRUE(NextIs(alice, "carol: bye"));
  EXPECT_TRUE(NextIs(bob, "carol: bye"));
}

TEST_F(ChatE2eTest, MistakesAnswerAnErrorAndKeepTheConnection) {
  ChatClient alice = OpenAs("a", "alice");
  ChatClient bob = OpenAs("a", "bob");
  ChatClient guest = Open("a");
  ASSERT_FALSE(HasFailure());

  // A guest is not in the room yet: alice's line, fanned out before bob read it, never reaches
  // it (its next message is the answer to its own).
  ASSERT_TRUE(IsOk(alice.ws->SendText("psst", kIoTimeout)));
  ASSERT_TRUE(NextIs(bob, "alice: psst"));
  EXPECT_TRUE(Says(guest, "hello?", "error: log in first: /login NAME"));
  EXPECT_TRUE(Says(guest, "/who", "error: log in first: /login NAME"));
  const std::string bad_name = "error: /login NAME, with 1-64 letters, digits, _ - .";
  EXPECT_TRUE(Says(guest, "/login", bad_name));
  EXPECT_TRUE(Says(guest, "/login bad name", bad_name));
  EXPECT_TRUE(Says(guest, absl::StrCat("/login ", std::string(65, 'x')), bad_name));
  EXPECT_TRUE(Says(guest, "/loginalice", "error: log in first: /login NAME"));
  ASSERT_TRUE(IsOk(guest.ws->SendBinary("\x01\x02", kIoTimeout)));
  EXPECT_TRUE(NextIs(guest, "error: text messages only"));

  EXPECT_TRUE(Says(guest, "/login  gus ", "logged in as gus"));
  EXPECT_TRUE(Says(guest, "/login other", "error: already logged in as gus"));
  EXPECT_TRUE(Says(guest, "/kick alice", "error: unknown command (try /who)"));
  // Logged in, it is in the room now.
  ASSERT_TRUE(IsOk(guest.ws->SendText("hi", kIoTimeout)));
  EXPECT_TRUE(NextIs(alice, "gus: hi"));
  EXPECT_TRUE(NextIs(bob, "gus: hi"));
  EXPECT_TRUE(Says(alice, "/who", R"({"room":"a","users":["alice","bob","gus"]})"));
}

TEST_F(ChatE2eTest, BadRoomNameIsRefusedAtTheHandshake) {
  const std::vector<std::string> targets = {"/chat?room=", "/chat?room=no%20spaces",
                                            absl::StrCat("/chat?room=", std::string(65, 'r'))};
  for (const std::string& target : targets) {
    WsTestClient client;
    absl::Status connected = client.Connect("127.0.0.1", gateway_.ready.Port("ws"), target,
                                            kIoTimeout);
    EXPECT_EQ(connected.code(), absl::StatusCode::kFailedPrecondition)
        << target << ": " << connected;
    EXPECT_EQ(client.HandshakeStatus(), 400) << target;
  }
}

TEST_F(ChatE2eTest, WhoListsTheRoomAndForgetsConnectionsThatEnd) {
  ChatClient alice_phone = OpenAs("a", "alice");
  ChatClient alice_laptop = OpenAs("a", "alice");
  ChatClient bob = OpenAs("a", "bob");
  ChatClient carol = OpenAs("b", "carol");
  ASSERT_FALSE(HasFailure());

  // alice is on two devices and listed once; carol is in another room.
  EXPECT_TRUE(Says(bob, "/who", R"({"room":"a","users":["alice","bob"]})"));
  EXPECT_TRUE(Says(carol, "/who", R"({"room":"b","users":["carol"]})"));

  // One of alice's devices leaves: she is still there on the other.
  ASSERT_TRUE(IsOk(alice_phone.ws->Close(1000, kIoTimeout)));
  ASSERT_TRUE(Disconnected(alice_phone));
  EXPECT_TRUE(Says(bob, "/who", R"({"room":"a","users":["alice","bob"]})"));

  // The other one vanishes without a close frame: alice is gone from the room.
  alice_laptop.ws->Abort();
  ASSERT_TRUE(Disconnected(alice_laptop));
  EXPECT_TRUE(Says(bob, "/who", R"({"room":"a","users":["bob"]})"));
}

TEST_F(ChatE2eTest, ForceLogoutClosesEveryDeviceOfTheUser) {
  ChatClient alice_phone = OpenAs("a", "alice");
  ChatClient alice_laptop = OpenAs("b", "alice");
  ChatClient bob = OpenAs("a", "bob");
  ASSERT_FALSE(HasFailure());

  absl::StatusOr<std::unique_ptr<runtime::GatewayClient>> gateway = runtime::GatewayClient::Create(
      absl::StrCat("127.0.0.1:", gateway_.ready.Port("control")));
  ASSERT_TRUE(IsOk(gateway));
  absl::StatusOr<runtime::EmitResult> result =
      (*gateway)->ForceLogout(runtime::To::User("alice"), R"({"why":"admin"})");
  ASSERT_TRUE(IsOk(result));
  EXPECT_EQ(result->delivered, 2);
  EXPECT_TRUE(result->gone_connection_ids.empty());

  for (ChatClient* device : {&alice_phone, &alice_laptop}) {
    EXPECT_TRUE(NextIs(*device, R"({"type":"event","name":"forceLogout","data":{"why":"admin"}})"))
        << device->id;
    absl::StatusOr<int> code = device->ws->WaitForClose(kIoTimeout);
    ASSERT_TRUE(IsOk(code)) << device->id;
    EXPECT_EQ(*code, 1000);
    EXPECT_EQ(device->ws->CloseReason(), "force logout");
    EXPECT_EQ(device->ws->DroppedMessages(), 0);
    ASSERT_TRUE(Disconnected(*device));
  }
  const std::vector<test_support::WorkerEvent> events = Events(worker_);
  EXPECT_TRUE(HasSingleDisconnect(events, alice_phone.id, "CONTROL", 1000));
  EXPECT_TRUE(HasSingleDisconnect(events, alice_laptop.id, "CONTROL", 1000));

  // bob stays, alone in his room now; logging out a user nobody is reaches nobody.
  EXPECT_TRUE(Says(bob, "/who", R"({"room":"a","users":["bob"]})"));
  absl::StatusOr<runtime::EmitResult> none =
      (*gateway)->ForceLogout(runtime::To::User("nobody"), "");
  ASSERT_TRUE(IsOk(none));
  EXPECT_EQ(none->delivered, 0);
  EXPECT_TRUE(Says(bob, "/who", R"({"room":"a","users":["bob"]})"));
}

}  // namespace
}  // namespace fngate::e2e
