// End to end: the control service (gRPC GatewayControl) of a real gateway.
//   - GetConnection of a live id describes it; of an unknown id is NOT_FOUND.
//   - Send without a target is INVALID_ARGUMENT naming the field.
//   - Send to a batch where some ids are gone: the reply lists exactly those, the others get it.
//   - Send to a batch of 1,000 connections reaches all 1,000.
#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::WsMessage;
using test_support::WsTestClient;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

class ControlE2eTest : public EchoClusterTest {
 protected:
  void SetUp() override {
    EchoClusterTest::SetUp();
    if (!HasFatalFailure()) control_ = NewControlStub(gateway_);
  }

  grpc::Status Send(const std::vector<std::string>& ids, const v1::Payload& payload,
                    v1::SendResponse* response, absl::Duration timeout = kIoTimeout) {
    v1::SendRequest request;
    for (const std::string& id : ids) request.mutable_target()->add_connection_ids(id);
    *request.mutable_payload() = payload;
    grpc::ClientContext context;
    SetDeadline(context, timeout);
    return control_->Send(&context, request, response);
  }

  grpc::Status GetConnection(const std::string& id, v1::ConnectionInfo* info) {
    v1::GetConnectionRequest request;
    request.set_connection_id(id);
    grpc::ClientContext context;
    SetDeadline(context);
    return control_->GetConnection(&context, request, info);
  }

  static v1::Payload Text(const std::string& text) {
    v1::Payload payload;
    payload.set_text(text);
    return payload;
  }

  std::unique_ptr<v1::GatewayControl::Stub> control_;
};

std::string Describe(const grpc::Status& status) {
  return absl::StrCat("grpc code ", status.error_code(), ": ", status.error_message());
}

TEST_F(ControlE2eTest, GetConnectionDescribesALiveConnection) {
  WsTestClient client;
  absl::StatusOr<std::string> id = ConnectAndGetId(client, gateway_, worker_, "/echo?room=x");
  ASSERT_TRUE(IsOk(id));

  v1::ConnectionInfo info;
  grpc::Status status = GetConnection(*id, &info);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(info.connection().connection_id(), *id);
  EXPECT_EQ(info.connection().function(), "echo");
  EXPECT_EQ(info.connection().path(), "/echo");
}

// The connect reply binds a user and metadata (echo does for ?user=); the gateway keeps them on
// the connection: later events carry them, and the online table shows them.
TEST_F(ControlE2eTest, IdentityFromConnectReplyStaysWithTheConnection) {
  WsTestClient client;
  absl::StatusOr<std::string> id = ConnectAndGetId(client, gateway_, worker_, "/echo?user=alice");
  ASSERT_TRUE(IsOk(id));
  ASSERT_TRUE(IsOk(client.SendText("whoami", kIoTimeout)));
  absl::StatusOr<WsMessage> reply = client.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(reply));
  EXPECT_EQ(reply->data, "user=alice via=echo");  // What the message event carried.

  v1::ConnectionInfo info;
  grpc::Status status = GetConnection(*id, &info);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(info.connection().user_id(), "alice");
  EXPECT_EQ(info.connection().metadata().at("via"), "echo");
  EXPECT_EQ(info.messages_in(), 1u);  // Counted when read, before the event call.
  // "Out" is counted once the socket write completes, which may be just after the client has
  // the reply: wait for it, bounded.
  PollUntil(
      [&] { return GetConnection(*id, &info).ok() && info.messages_out() >= 1; }, kEventTimeout);
  EXPECT_EQ(info.messages_out(), 1u);
}

TEST_F(ControlE2eTest, GetConnectionOfUnknownIdIsNotFound) {
  v1::ConnectionInfo info;
  grpc::Status status = GetConnection("no-such-connection", &info);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(status);
}

TEST_F(ControlE2eTest, SendWithoutTargetIsInvalidArgument) {
  // A live connection that must not receive anything from the rejected call.
  WsTestClient client;
  ASSERT_TRUE(IsOk(ConnectAndGetId(client, gateway_, worker_, "/echo")));

  v1::SendResponse response;
  grpc::Status status = Send({}, Text("to nobody"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
  EXPECT_THAT(status.error_message(), HasSubstr("target"));

  // Nothing was done: the client's next message is the echo of its own.
  ASSERT_TRUE(IsOk(client.SendText("mine", kIoTimeout)));
  absl::StatusOr<WsMessage> next = client.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(next));
  EXPECT_EQ(next->data, "mine");
}

TEST_F(ControlE2eTest, BatchSendReportsGoneIdsAndReachesTheOthers) {
  constexpr int kClients = 5;
  std::vector<std::unique_ptr<WsTestClient>> clients;
  std::vector<std::string> ids;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<WsTestClient>());
    absl::StatusOr<std::string> id = ConnectAndGetId(*clients.back(), gateway_, worker_, "/echo");
    ASSERT_TRUE(IsOk(id)) << "client " << i;
    ids.push_back(*id);
  }
  // Clients 1 and 3 leave; once their disconnect reached the worker they are gone for good.
  std::vector<std::string> gone = {ids[1], ids[3], "never-existed"};
  for (int i : {1, 3}) {
    ASSERT_TRUE(IsOk(clients[i]->Close(1000, kIoTimeout)));
    ASSERT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", ids[i], 1)));
  }

  std::vector<std::string> targets = ids;
  targets.push_back("never-existed");
  v1::SendResponse response;
  grpc::Status status = Send(targets, Text("to the batch"), &response);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(response.delivered(), 3);
  EXPECT_THAT(response.gone_connection_ids(), UnorderedElementsAreArray(gone));
  EXPECT_EQ(response.overflowed_connection_ids_size(), 0);

  // A binary push to the same batch stays binary.
  v1::Payload binary;
  binary.set_binary(std::string("\x00\x01\xff", 3));
  v1::SendResponse binary_response;
  status = Send(targets, binary, &binary_response);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(binary_response.delivered(), 3);

  for (int i : {0, 2, 4}) {
    absl::StatusOr<WsMessage> text = clients[i]->Read(kIoTimeout);
    ASSERT_TRUE(IsOk(text)) << "client " << i;
    EXPECT_FALSE(text->is_binary);
    EXPECT_EQ(text->data, "to the batch");
    absl::StatusOr<WsMessage> bytes = clients[i]->Read(kIoTimeout);
    ASSERT_TRUE(IsOk(bytes)) << "client " << i;
    EXPECT_TRUE(bytes->is_binary);
    EXPECT_EQ(bytes->data, std::string("\x00\x01\xff", 3));
  }
}

// 1,000 client sockets here plus 1,000 in the gateway (its own process, same inherited limit),
// each client also owning an io_context (epoll, eventfd, timerfd).
TEST(ControlE2eBatchTest, ThousandConnectionBatchSendReachesAll) {
  constexpr int kClients = 1000;
  ASSERT_TRUE(IsOk(EnsureFileLimit(8192)));

  absl::StatusOr<Started> worker = StartEchoWorker();
  ASSERT_TRUE(IsOk(worker));
  absl::StatusOr<Started> gateway = StartGateway({FunctionFlag("echo", {&*worker})});
  ASSERT_TRUE(IsOk(gateway));
  const int ws_port = gateway->ready.Port("ws");

  std::vector<std::unique_ptr<WsTestClient>> clients;
  clients.reserve(kClients);
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<WsTestClient>());
    ASSERT_TRUE(IsOk(clients.back()->Connect("127.0.0.1", ws_port, "/echo", kIoTimeout)))
        << "client " << i;
  }
  ASSERT_TRUE(IsOk(WaitForEvents(*worker, "connect", "", kClients)));
  std::vector<std::string> ids;
  for (const test_support::WorkerEvent& event : Events(*worker, "connect")) ids.push_back(event.conn);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kClients));
  ASSERT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size()) << "duplicate ids";

  v1::SendRequest request;
  for (const std::string& id : ids) request.mutable_target()->add_connection_ids(id);
  request.mutable_payload()->set_text("to all one thousand");
  v1::SendResponse response;
  grpc::ClientContext context;
  SetDeadline(context, kEventTimeout);
  std::unique_ptr<v1::GatewayControl::Stub> control = NewControlStub(*gateway);
  grpc::Status status = control->Send(&context, request, &response);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(response.delivered(), kClients);
  EXPECT_EQ(response.gone_connection_ids_size(), 0);
  EXPECT_EQ(response.overflowed_connection_ids_size(), 0);

  // One deadline for all reads: if pushes are missing, the test fails in seconds, not hours.
  const absl::Time deadline = absl::Now() + kEventTimeout;
  int received = 0;
  std::vector<std::string> failures;
  for (int i = 0; i < kClients; ++i) {
    absl::StatusOr<WsMessage> message =
        clients[i]->Read(std::max(deadline - absl::Now(), absl::Milliseconds(1)));
    if (message.ok() && message->data == "to all one thousand") {
      ++received;
    } else if (failures.size() < 5) {
      failures.push_back(absl::StrCat("client ", i, ": ",
                                      message.ok() ? message->data : message.status().ToString()));
    }
  }
  EXPECT_TRUE(failures.empty()) << absl::StrJoin(failures, "\n");
  EXPECT_EQ(received, kClients);
}

}  // namespace
}  // namespace fngate::e2e
