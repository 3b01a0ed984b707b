// End to end: every way a connection ends gives exactly one disconnect event, last, saying who
// ended it: the client (close frame), the function (Close action), the control service, the
// network (client vanished without a close frame) and the gateway's SIGTERM.
//
// "Exactly once" is checked after a full barrier: the gateway is stopped (SIGTERM; it delivers
// every disconnect before it exits), then the worker (its output is complete once it exited),
// and only then are the worker's EVENT lines counted.
#include <signal.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::WsMessage;
using test_support::WsTestClient;

class DisconnectE2eTest : public EchoClusterTest {
 protected:
  // Opens a connection and proves it works with one echo; returns its id.
  std::string OpenWorkingConnection(WsTestClient& client) {
    absl::StatusOr<std::string> id = ConnectAndGetId(client, gateway_, worker_, "/echo");
    EXPECT_TRUE(IsOk(id));
    if (!id.ok()) return "";
    EXPECT_TRUE(IsOk(client.SendText("ping", kIoTimeout)));
    absl::StatusOr<WsMessage> reply = client.Read(kIoTimeout);
    EXPECT_TRUE(IsOk(reply));
    return *id;
  }

  // Stops the gateway, then the worker; both must exit 0. Afterwards the worker's output is final.
  void StopAll() {
    EXPECT_TRUE(IsOk(Stop(gateway_))) << "gateway did not exit 0 after SIGTERM";
    EXPECT_TRUE(IsOk(Stop(worker_))) << "worker did not exit 0 after SIGTERM";
  }

};

TEST_F(DisconnectE2eTest, ClientCloseIsByClient) {
  WsTestClient client;
  std::string id = OpenWorkingConnection(client);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(IsOk(client.Close(1000, "client leaves", kIoTimeout)));
  ASSERT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", id, 1)));
  StopAll();
  EXPECT_TRUE(HasSingleDisconnect(Events(worker_), id, "CLIENT", 1000)) << worker_->Output();
}

TEST_F(DisconnectE2eTest, FunctionCloseIsByFunction) {
  WsTestClient client;
  std::string id = OpenWorkingConnection(client);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(IsOk(client.SendText("close", kIoTimeout)));  // echo answers with Close(1000, "bye").
  absl::StatusOr<int> code = client.WaitForClose(kEventTimeout);
  ASSERT_TRUE(IsOk(code));
  EXPECT_EQ(*code, 1000);
  EXPECT_EQ(client.CloseReason(), "bye");
  ASSERT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", id, 1)));
  StopAll();
  EXPECT_TRUE(HasSingleDisconnect(Events(worker_), id, "FUNCTION", 1000)) << worker_->Output();
}

TEST_F(DisconnectE2eTest, ControlCloseIsByControl) {
  WsTestClient client;
  std::string id = OpenWorkingConnection(client);
  ASSERT_FALSE(id.empty());

  std::unique_ptr<v1::GatewayControl::Stub> control = NewControlStub(gateway_);
  v1::CloseRequest request;
  request.mutable_target()->add_connection_ids(id);
  request.set_code(4001);
  request.set_reason("kicked by test");
  v1::CloseResponse response;
  grpc::ClientContext context;
  SetDeadline(context);
  grpc::Status status = control->Close(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  EXPECT_EQ(response.closed(), 1);
  EXPECT_EQ(response.gone_connection_ids_size(), 0);

  absl::StatusOr<int> code = client.WaitForClose(kEventTimeout);
  ASSERT_TRUE(IsOk(code));
  EXPECT_EQ(*code, 4001);
  EXPECT_EQ(client.CloseReason(), "kicked by test");
  ASSERT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", id, 1)));
  StopAll();
  EXPECT_TRUE(HasSingleDisconnect(Events(worker_), id, "CONTROL", 4001)) << worker_->Output();
}

TEST_F(DisconnectE2eTest, VanishedClientIsByNetwork) {
  WsTestClient client;
  std::string id = OpenWorkingConnection(client);
  ASSERT_FALSE(id.empty());
  client.Abort();  // TCP reset, no close frame.
  ASSERT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", id, 1)));
  StopAll();
  EXPECT_TRUE(HasSingleDisconnect(Events(worker_), id, "NETWORK", 1006)) << worker_->Output();
}

TEST_F(DisconnectE2eTest, GatewaySigtermIsByShutdown) {
  WsTestClient first;
  WsTestClient second;
  std::string first_id = OpenWorkingConnection(first);
  std::string second_id = OpenWorkingConnection(second);
  ASSERT_FALSE(first_id.empty());
  ASSERT_FALSE(second_id.empty());

  ASSERT_TRUE(IsOk(gateway_->Signal(SIGTERM)));
  for (WsTestClient* client : {&first, &second}) {
    absl::StatusOr<int> code = client->WaitForClose(kEventTimeout);
    ASSERT_TRUE(IsOk(code));
    EXPECT_EQ(*code, 1001);
  }
  absl::StatusOr<int> exit_code = gateway_->Wait(kExitTimeout);
  ASSERT_TRUE(IsOk(exit_code)) << gateway_->OutputTail();
  EXPECT_EQ(*exit_code, 0) << gateway_->OutputTail();
  // The gateway delivered both disconnects before exiting.
  EXPECT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", first_id, 1)));
  EXPECT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", second_id, 1)));
  StopAll();
  EXPECT_TRUE(HasSingleDisconnect(Events(worker_), first_id, "SHUTDOWN", 1001)) << worker_->Output();
  EXPECT_TRUE(HasSingleDisconnect(Events(worker_), second_id, "SHUTDOWN", 1001)) << worker_->Output();
}

// A client that stops reading (a stalled phone, a frozen tab) never answers the gateway's 1001
// close frame. Draining must not depend on it: the gateway still reports its disconnect, by
// SHUTDOWN, and exits 0 within its drain grace.
TEST_F(DisconnectE2eTest, GatewaySigtermReportsClientThatNeverAnswers) {
  WsTestClient silent;
  std::string id = OpenWorkingConnection(silent);
  ASSERT_FALSE(id.empty());
  // From here on `silent` is never read again until the gateway is gone.

  ASSERT_TRUE(IsOk(gateway_->Signal(SIGTERM)));
  absl::StatusOr<int> exit_code = gateway_->Wait(kExitTimeout);
  ASSERT_TRUE(IsOk(exit_code)) << gateway_->OutputTail();
  EXPECT_EQ(*exit_code, 0) << gateway_->OutputTail();
  EXPECT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", id, 1)))
      << "gateway output:\n" << gateway_->OutputTail();
  StopAll();
  EXPECT_TRUE(HasSingleDisconnect(Events(worker_), id, "SHUTDOWN", 1001)) << worker_->Output();
}

}  // namespace
}  // namespace fngate::e2e
