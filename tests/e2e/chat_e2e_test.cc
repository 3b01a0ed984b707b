// End to end: the chat worker's rooms. Three clients in room "a", one in room "b". A message in
// a room reaches every member of it, the sender included, once, and nobody else.
//
// "Nobody else" is checked by order, not by waiting for silence: each client's next message is
// asserted after a later message that the same gateway fanned out after the first one, so a
// stray or duplicate delivery would be read first.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::WsMessage;
using test_support::WsTestClient;

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

  // Opens a client in `room`; membership is taken in the connect event, which completes before
  // the handshake does.
  std::unique_ptr<WsTestClient> Join(const std::string& room) {
    auto client = std::make_unique<WsTestClient>();
    absl::StatusOr<std::string> id =
        ConnectAndGetId(*client, gateway_, worker_, absl::StrCat("/chat?room=", room));
    EXPECT_TRUE(IsOk(id)) << "joining room " << room;
    return client;
  }

  static ::testing::AssertionResult NextIs(WsTestClient& client, const std::string& want) {
    absl::StatusOr<WsMessage> message = client.Read(kIoTimeout);
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

  Started worker_;
  Started gateway_;
};

TEST_F(ChatE2eTest, RoomMembersSeeExactlyTheirRoom) {
  std::vector<std::unique_ptr<WsTestClient>> a;
  for (int i = 0; i < 3; ++i) a.push_back(Join("a"));
  std::unique_ptr<WsTestClient> b = Join("b");
  ASSERT_FALSE(HasFailure());

  // 1. From a[0]: all of room a, the sender included.
  ASSERT_TRUE(IsOk(a[0]->SendText("a-1 from a0", kIoTimeout)));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(NextIs(*a[i], "a-1 from a0")) << "a[" << i << "]";

  // 2. From b: b's next message is its own, so a-1 (fanned out earlier) never reached it.
  ASSERT_TRUE(IsOk(b->SendText("b-1 from b", kIoTimeout)));
  EXPECT_TRUE(NextIs(*b, "b-1 from b"));

  // 3. From a[1]: each of a reads a-2 next, so none got b-1 nor a second copy of a-1.
  ASSERT_TRUE(IsOk(a[1]->SendText("a-2 from a1", kIoTimeout)));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(NextIs(*a[i], "a-2 from a1")) << "a[" << i << "]";

  // 4. b again: still nothing from room a in between.
  ASSERT_TRUE(IsOk(b->SendText("b-2 from b", kIoTimeout)));
  EXPECT_TRUE(NextIs(*b, "b-2 from b"));
}

TEST_F(ChatE2eTest, LeavingMemberIsDroppedFromTheRoom) {
  std::vector<std::unique_ptr<WsTestClient>> a;
  for (int i = 0; i < 3; ++i) a.push_back(Join("a"));
  ASSERT_FALSE(HasFailure());

  const std::vector<test_support::WorkerEvent> connects = Events(worker_, "connect");
  ASSERT_EQ(connects.size(), 3u);
  ASSERT_TRUE(IsOk(a[2]->Close(1000, kIoTimeout)));
  ASSERT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", connects[2].conn, 1)));

  // The remaining two still talk; the room is intact without the leaver.
  ASSERT_TRUE(IsOk(a[0]->SendText("after the leave", kIoTimeout)));
  EXPECT_TRUE(NextIs(*a[0], "after the leave"));
  EXPECT_TRUE(NextIs(*a[1], "after the leave"));
}

}  // namespace
}  // namespace fngate::e2e
