// End to end: the connect event decides the handshake. The function's rejection reaches the
// client as its HTTP status; an unknown function path is a 404 that never reaches a worker.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::CountWorkerEvents;
using test_support::WsTestClient;
using ::testing::HasSubstr;

class ConnectE2eTest : public EchoClusterTest {
 protected:
  int ws_port() const { return gateway_.ready.Port("ws"); }
};

TEST_F(ConnectE2eTest, FunctionRejectionIsTheHttpAnswer) {
  WsTestClient denied;
  absl::Status status = denied.Connect("127.0.0.1", ws_port(), "/echo?deny=1", kIoTimeout);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_EQ(denied.HandshakeStatus(), 403);
  EXPECT_THAT(denied.HandshakeBody(), HasSubstr("denied"));
  EXPECT_FALSE(denied.IsOpen());
  // The function saw it: the rejection came from the worker, not the gateway.
  ASSERT_TRUE(IsOk(WaitForEvents(worker_, "connect", "", 1)));
  const std::string denied_id = Events(worker_, "connect")[0].conn;

  // An accepted connection on the same worker, opened and closed after the rejected one. Once
  // its disconnect arrived, a disconnect of the refused connection would have arrived too (it
  // was never accepted, so it must have none).
  WsTestClient accepted;
  absl::StatusOr<std::string> id = ConnectAndGetId(accepted, gateway_, worker_, "/echo");
  ASSERT_TRUE(IsOk(id));
  ASSERT_TRUE(IsOk(accepted.Close(1000, kIoTimeout)));
  ASSERT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", *id, 1)));
  EXPECT_EQ(CountWorkerEvents(worker_->Output(), "disconnect", denied_id), 0)
      << worker_->Output();
  EXPECT_EQ(CountWorkerEvents(worker_->Output(), "message", denied_id), 0);
}

TEST_F(ConnectE2eTest, QueryWithoutDenyIsAccepted) {
  WsTestClient client;
  ASSERT_TRUE(IsOk(client.Connect("127.0.0.1", ws_port(), "/echo?deny=0&x=1", kIoTimeout)));
  EXPECT_EQ(client.HandshakeStatus(), 101);
  ASSERT_TRUE(IsOk(client.SendText("still here", kIoTimeout)));
  absl::StatusOr<test_support::WsMessage> reply = client.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(reply));
  EXPECT_EQ(reply->data, "still here");
}

TEST_F(ConnectE2eTest, UnknownFunctionIs404AndNeverReachesAWorker) {
  for (const char* target : {"/nosuch", "/nosuch?deny=1", "/echoes"}) {
    WsTestClient client;
    absl::Status status = client.Connect("127.0.0.1", ws_port(), target, kIoTimeout);
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << target << ": " << status;
    EXPECT_EQ(client.HandshakeStatus(), 404) << target;
  }
  // A valid connection afterwards: its connect event is the worker's first and only one.
  WsTestClient client;
  absl::StatusOr<std::string> id = ConnectAndGetId(client, gateway_, worker_, "/echo");
  ASSERT_TRUE(IsOk(id));
  EXPECT_EQ(CountWorkerEvents(worker_->Output(), "connect"), 1) << worker_->Output();
}

}  // namespace
}  // namespace fngate::e2e
