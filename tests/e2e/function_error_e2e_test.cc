// End to end: a function returning an error status. The gateway reports it to the function's
// error event (failed=message, the gRPC code) and closes the raw client with 1011; the
// connection's disconnect follows, once and last, by ERROR. Other connections are unaffected.
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

constexpr int kGrpcInternal = 13;

TEST(FunctionErrorE2eTest, ErrorEventThenClose1011) {
  absl::StatusOr<Started> worker = StartEchoWorker();
  ASSERT_TRUE(IsOk(worker));
  absl::StatusOr<Started> gateway = StartGateway({FunctionFlag("echo", {&*worker})});
  ASSERT_TRUE(IsOk(gateway));

  WsTestClient failing;
  absl::StatusOr<std::string> id = ConnectAndGetId(failing, *gateway, *worker, "/echo");
  ASSERT_TRUE(IsOk(id));
  WsTestClient bystander;
  absl::StatusOr<std::string> bystander_id = ConnectAndGetId(bystander, *gateway, *worker, "/echo");
  ASSERT_TRUE(IsOk(bystander_id));

  ASSERT_TRUE(IsOk(failing.SendText("fail", kIoTimeout)));  // echo returns INTERNAL for this.
  absl::StatusOr<int> code = failing.WaitForClose(kEventTimeout);
  ASSERT_TRUE(IsOk(code));
  EXPECT_EQ(*code, 1011);
  EXPECT_EQ(failing.DroppedMessages(), 0);

  // The error event names the failed message call and its status code.
  ASSERT_TRUE(IsOk(WaitForEvents(*worker, "error", *id, 1)));
  std::vector<WorkerEvent> errors = Events(*worker, "error", *id);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].Field("failed"), "message") << errors[0].line;
  EXPECT_EQ(errors[0].Field("code"), absl::StrCat(kGrpcInternal)) << errors[0].line;

  // The other connection still echoes.
  ASSERT_TRUE(IsOk(bystander.SendText("unaffected", kIoTimeout)));
  absl::StatusOr<WsMessage> reply = bystander.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(reply));
  EXPECT_EQ(reply->data, "unaffected");
  ASSERT_TRUE(IsOk(bystander.Close(1000, kIoTimeout)));

  // Barrier (see disconnect_e2e_test.cc): after both processes exited, the log is final.
  ASSERT_TRUE(IsOk(WaitForEvents(*worker, "disconnect", *id, 1)));
  EXPECT_TRUE(IsOk(Stop(*gateway)));
  EXPECT_TRUE(IsOk(Stop(*worker)));
  std::vector<WorkerEvent> events = Events(*worker);
  EXPECT_TRUE(HasSingleDisconnect(events, *id, "ERROR", 1011)) << (*worker)->Output();
  EXPECT_EQ(Events(*worker, "error", *bystander_id).size(), 0u);
  // The error event came before the disconnect (the disconnect is last, checked above), and
  // after the message event that failed.
  int message_index = -1;
  int error_index = -1;
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].conn != *id) continue;
    if (events[i].kind == "message") message_index = static_cast<int>(i);
    if (events[i].kind == "error") error_index = static_cast<int>(i);
  }
  EXPECT_GE(message_index, 0);
  EXPECT_GT(error_index, message_index);
}

}  // namespace
}  // namespace fngate::e2e
