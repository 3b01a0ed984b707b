// End to end: 1,000 messages on one connection reach the worker in order (the gateway's
// sequence numbers 1..1000) and their echoes come back in order.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::WorkerEvent;
using test_support::WsMessage;
using test_support::WsTestClient;

constexpr int kMessages = 1000;

TEST(OrderingE2eTest, ThousandMessagesInOrderBothWays) {
  absl::StatusOr<Started> worker = StartEchoWorker();
  ASSERT_TRUE(IsOk(worker));
  absl::StatusOr<Started> gateway = StartGateway({FunctionFlag("echo", {&*worker})});
  ASSERT_TRUE(IsOk(gateway));

  WsTestClient client;
  absl::StatusOr<std::string> id = ConnectAndGetId(client, *gateway, *worker, "/echo");
  ASSERT_TRUE(IsOk(id));

  // All sends first, so the gateway holds many messages of the connection at once.
  for (int i = 1; i <= kMessages; ++i) {
    ASSERT_TRUE(IsOk(client.SendText(absl::StrCat("m", i), kIoTimeout))) << "message " << i;
  }
  for (int i = 1; i <= kMessages; ++i) {
    absl::StatusOr<WsMessage> reply = client.Read(kIoTimeout);
    ASSERT_TRUE(IsOk(reply)) << "reply " << i;
    ASSERT_EQ(reply->data, absl::StrCat("m", i)) << "reply " << i << " out of order";
  }

  ASSERT_TRUE(IsOk(WaitForEvents(*worker, "message", *id, kMessages)));
  std::vector<WorkerEvent> messages = Events(*worker, "message", *id);
  ASSERT_EQ(messages.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(messages[i].Field("seq"), absl::StrCat(i + 1))
        << "event " << i << " of the worker log: '" << messages[i].line << "'";
  }
}

}  // namespace
}  // namespace fngate::e2e
