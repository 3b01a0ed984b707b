// End to end: addressing by connection, user, group and all through the control service of a
// real gateway, with two functions ("echo" and "alt", both served by one echo worker).
//   - a user with three connections (two functions, two channels) gets a Send to the user on
//     all three; narrowed by channel, on one; Close by user closes all three, each with one
//     disconnect event;
//   - groups: join/leave by connection and by user; a group send with the sender excluded; a
//     connection that ends is gone from its groups;
//   - Send to all across two functions reaches every connection; narrowed by function, only
//     that function's;
//   - Emit with close (forceLogout) reaches every device as an event frame, then closes it;
//   - ListConnections in pages of 100 returns each of 1,000 connections exactly once while
//     other connections open and close during the paging;
//   - every malformed request is INVALID_ARGUMENT naming the field, and changes nothing.
//
// "Nobody else got it" is checked by order, not by waiting for silence: after the call under
// test, a marker is sent to each connection by id, and the next message each one reads must be
// what it should have got, then the marker.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::WsMessage;
using test_support::WsTestClient;
using ::testing::HasSubstr;

struct Conn {
  std::unique_ptr<WsTestClient> client = std::make_unique<WsTestClient>();
  std::string id;
};

class AddressingE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Started> worker = StartEchoWorker();
    ASSERT_TRUE(IsOk(worker));
    worker_ = *std::move(worker);
    absl::StatusOr<Started> gateway =
        StartGateway({FunctionFlag("echo", {&worker_}), FunctionFlag("alt", {&worker_})});
    ASSERT_TRUE(IsOk(gateway));
    gateway_ = *std::move(gateway);
    control_ = NewControlStub(gateway_);
  }

  // Opens a connection to `target`; its id is the one the worker logged.
  Conn Open(const std::string& target) {
    Conn conn;
    absl::StatusOr<std::string> id = ConnectAndGetId(*conn.client, gateway_, worker_, target);
    EXPECT_TRUE(IsOk(id)) << target;
    if (id.ok()) conn.id = *id;
    return conn;
  }

  static v1::Target Ids(const std::vector<const Conn*>& conns) {
    v1::Target target;
    for (const Conn* c : conns) target.add_connection_ids(c->id);
    return target;
  }
  static v1::Target User(const std::string& user) {
    v1::Target target;
    target.add_user_ids(user);
    return target;
  }
  static v1::Target Group(const std::string& group) {
    v1::Target target;
    target.add_groups(group);
    return target;
  }

  grpc::Status Send(const v1::Target& target, const std::string& text,
                    v1::SendResponse* response) {
    v1::SendRequest request;
    *request.mutable_target() = target;
    request.mutable_payload()->set_text(text);
    grpc::ClientContext context;
    SetDeadline(context);
    return control_->Send(&context, request, response);
  }
  // Sends and expects OK; returns how many connections it reached.
  int SendOk(const v1::Target& target, const std::string& text) {
    v1::SendResponse response;
    grpc::Status status = Send(target, text, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.delivered();
  }

  grpc::Status ChangeGroups(bool join, const v1::Target& target, const std::string& group,
                            v1::GroupsResponse* response) {
    v1::GroupsRequest request;
    *request.mutable_target() = target;
    request.add_groups(group);
    grpc::ClientContext context;
    SetDeadline(context);
    return join ? control_->JoinGroups(&context, request, response)
                : control_->LeaveGroups(&context, request, response);
  }
  int GroupsOk(bool join, const v1::Target& target, const std::string& group) {
    v1::GroupsResponse response;
    grpc::Status status = ChangeGroups(join, target, group, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.affected();
  }

  int Bind(const v1::Target& target, const v1::Identity& identity) {
    v1::BindRequest request;
    *request.mutable_target() = target;
    *request.mutable_identity() = identity;
    v1::BindResponse response;
    grpc::ClientContext context;
    SetDeadline(context);
    grpc::Status status = control_->BindUser(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.affected();
  }

  grpc::Status List(const v1::ListConnectionsRequest& request,
                    v1::ListConnectionsResponse* response) {
    grpc::ClientContext context;
    SetDeadline(context);
    return control_->ListConnections(&context, request, response);
  }

  // Sends a marker to each connection by id, then checks that each one's next messages are
  // exactly `want[i]` (possibly none) followed by the marker.
  void ExpectNext(const std::vector<const Conn*>& conns,
                  const std::vector<std::vector<std::string>>& want) {
    ASSERT_EQ(conns.size(), want.size());
    const std::string marker = absl::StrCat("marker-", ++markers_);
    EXPECT_EQ(SendOk(Ids(conns), marker), static_cast<int>(conns.size()));
    for (size_t i = 0; i < conns.size(); ++i) {
      std::vector<std::string> expected = want[i];
      expected.push_back(marker);
      for (const std::string& text : expected) {
        absl::StatusOr<WsMessage> got = conns[i]->client->Read(kIoTimeout);
        ASSERT_TRUE(IsOk(got)) << "connection " << i << " waiting for '" << text << "'";
        EXPECT_EQ(got->data, text) << "connection " << i;
      }
    }
  }

  Started worker_;
  Started gateway_;
  std::unique_ptr<v1::GatewayControl::Stub> control_;
  int markers_ = 0;
};

TEST_F(AddressingE2eTest, UserOnThreeDevicesAcrossFunctionsAndChannels) {
  Conn web = Open("/echo?user=ann");
  Conn phone = Open("/echo?user=ann");
  Conn tablet = Open("/alt?user=ann");
  Conn other = Open("/echo?user=bob");
  ASSERT_FALSE(HasFailure());
  v1::Identity channel;
  channel.set_channel("web");
  EXPECT_EQ(Bind(Ids({&web}), channel), 1);
  channel.set_channel("mobile");
  EXPECT_EQ(Bind(Ids({&phone, &tablet}), channel), 2);

  EXPECT_EQ(SendOk(User("ann"), "to ann"), 3);
  v1::Target web_only = User("ann");
  web_only.set_channel("web");
  EXPECT_EQ(SendOk(web_only, "to ann on the web"), 1);
  ExpectNext({&web, &phone, &tablet, &other},
             {{"to ann", "to ann on the web"}, {"to ann"}, {"to ann"}, {}});

  // The identity reaches later events too: the echo worker answers "whoami" from its context.
  ASSERT_TRUE(IsOk(tablet.client->SendText("whoami", kIoTimeout)));
  absl::StatusOr<WsMessage> who = tablet.client->Read(kIoTimeout);
  ASSERT_TRUE(IsOk(who));
  EXPECT_THAT(who->data, HasSubstr("user=ann"));

  v1::CloseRequest close;
  *close.mutable_target() = User("ann");
  close.set_code(4001);
  close.set_reason("signed out");
  v1::CloseResponse closed;
  grpc::ClientContext context;
  SetDeadline(context);
  ASSERT_TRUE(control_->Close(&context, close, &closed).ok());
  EXPECT_EQ(closed.closed(), 3);
  for (Conn* conn : {&web, &phone, &tablet}) {
    absl::StatusOr<int> code = conn->client->WaitForClose(kIoTimeout);
    ASSERT_TRUE(IsOk(code));
    EXPECT_EQ(*code, 4001);
    ASSERT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", conn->id, 1)));
    EXPECT_TRUE(HasSingleDisconnect(Events(worker_), conn->id, "CONTROL", 4001));
  }
  ExpectNext({&other}, {{}});  // Bob was not touched.
}

TEST_F(AddressingE2eTest, GroupsByConnectionAndByUserWithTheSenderExcluded) {
  Conn a = Open("/echo?user=ann");
  Conn b = Open("/echo?user=bob");
  Conn c = Open("/alt?user=bob");
  Conn d = Open("/echo");
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(GroupsOk(true, Ids({&a}), "room:1"), 1);
  EXPECT_EQ(GroupsOk(true, User("bob"), "room:1"), 2);

  v1::Target room_but_a = Group("room:1");
  room_but_a.add_exclude_connection_ids(a.id);
  EXPECT_EQ(SendOk(room_but_a, "hello from a"), 2);
  ExpectNext({&a, &b, &c, &d}, {{}, {"hello from a"}, {"hello from a"}, {}});

  // Leave by connection: b alone leaves; bob's other device stays.
  EXPECT_EQ(GroupsOk(false, Ids({&b}), "room:1"), 1);
  EXPECT_EQ(SendOk(Group("room:1"), "after b left"), 2);
  ExpectNext({&a, &b, &c}, {{"after b left"}, {}, {"after b left"}});

  // Leave by user.
  EXPECT_EQ(GroupsOk(false, User("bob"), "room:1"), 2);  // Both addressed; c changed.
  EXPECT_EQ(SendOk(Group("room:1"), "only a"), 1);
  ExpectNext({&a, &c}, {{"only a"}, {}});

  // A connection that ends leaves its groups: the table no longer lists it there.
  EXPECT_EQ(GroupsOk(true, Ids({&d}), "room:1"), 1);
  ASSERT_TRUE(IsOk(d.client->Close(1000, kIoTimeout)));
  ASSERT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", d.id, 1)));
  v1::ListConnectionsRequest request;
  request.set_group("room:1");
  v1::ListConnectionsResponse listed;
  ASSERT_TRUE(List(request, &listed).ok());
  ASSERT_EQ(listed.connections_size(), 1);
  EXPECT_EQ(listed.connections(0).connection().connection_id(), a.id);
  EXPECT_THAT(listed.connections(0).connection().groups(), ::testing::ElementsAre("room:1"));
  EXPECT_EQ(SendOk(Group("room:1"), "a again"), 1);
  ExpectNext({&a}, {{"a again"}});
}

TEST_F(AddressingE2eTest, AllAcrossFunctionsAndNarrowedByFunction) {
  Conn e1 = Open("/echo");
  Conn e2 = Open("/echo");
  Conn alt = Open("/alt");
  ASSERT_FALSE(HasFailure());
  v1::Target all;
  all.set_all(true);
  EXPECT_EQ(SendOk(all, "everyone"), 3);
  v1::Target only_alt = all;
  only_alt.add_functions("alt");
  EXPECT_EQ(SendOk(only_alt, "alt only"), 1);
  ExpectNext({&e1, &e2, &alt}, {{"everyone"}, {"everyone"}, {"everyone", "alt only"}});
}

TEST_F(AddressingE2eTest, ForceLogoutReachesEveryDeviceThenClosesIt) {
  Conn phone = Open("/echo?user=eve");
  Conn laptop = Open("/alt?user=eve");
  Conn bystander = Open("/echo?user=zed");
  ASSERT_FALSE(HasFailure());
  v1::EmitRequest request;
  *request.mutable_target() = User("eve");
  request.set_name("forceLogout");
  request.set_data_json(R"({"reason":"password changed"})");
  request.set_close(true);
  request.set_code(4003);
  v1::EmitResponse response;
  grpc::ClientContext context;
  SetDeadline(context);
  ASSERT_TRUE(control_->Emit(&context, request, &response).ok());
  EXPECT_EQ(response.delivered(), 2);
  for (Conn* conn : {&phone, &laptop}) {
    absl::StatusOr<WsMessage> event = conn->client->Read(kIoTimeout);
    ASSERT_TRUE(IsOk(event));
    EXPECT_EQ(event->data,
              R"({"type":"event","name":"forceLogout","data":{"reason":"password changed"}})");
    absl::StatusOr<int> code = conn->client->WaitForClose(kIoTimeout);
    ASSERT_TRUE(IsOk(code));
    EXPECT_EQ(*code, 4003);
    ASSERT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", conn->id, 1)));
    EXPECT_TRUE(HasSingleDisconnect(Events(worker_), conn->id, "CONTROL", 4003));
  }
  ExpectNext({&bystander}, {{}});
}

// 1,000 connections listed in pages of 100 while others of the same function open and close
// between the pages: each of the 1,000 appears exactly once, and no id appears twice.
TEST_F(AddressingE2eTest, PagingIsStableWhileConnectionsComeAndGo) {
  constexpr int kStable = 1000;
  ASSERT_TRUE(IsOk(EnsureFileLimit(8192)));
  std::vector<std::unique_ptr<WsTestClient>> stable;
  for (int i = 0; i < kStable; ++i) {
    stable.push_back(std::make_unique<WsTestClient>());
    ASSERT_TRUE(IsOk(stable.back()->Connect("127.0.0.1", gateway_.ready.Port("ws"), "/echo",
                                            kIoTimeout)));
  }
  // The ids, from the worker's connect events (every connect was answered before its
  // handshake completed, so all are logged).
  ASSERT_TRUE(IsOk(WaitForEvents(worker_, "connect", "", kStable)));
  std::set<std::string> expected;
  for (const auto& event : Events(worker_, "connect")) expected.insert(event.conn);
  ASSERT_EQ(expected.size(), static_cast<size_t>(kStable));

  // Between pages, one more connection of the same function opens and an earlier extra one
  // closes: listed at most once each, and the stable ones exactly once.
  std::vector<std::unique_ptr<WsTestClient>> extras;
  std::multiset<std::string> seen;
  v1::ListConnectionsRequest request;
  request.set_function("echo");
  request.set_page_size(100);
  int pages = 0;
  do {
    extras.push_back(std::make_unique<WsTestClient>());
    ASSERT_TRUE(IsOk(extras.back()->Connect("127.0.0.1", gateway_.ready.Port("ws"), "/echo",
                                            kIoTimeout)));
    if (extras.size() > 1) {
      ASSERT_TRUE(IsOk(extras[extras.size() - 2]->Close(1000, kIoTimeout)));
    }
    v1::ListConnectionsResponse page;
    grpc::Status status = List(request, &page);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_LE(page.connections_size(), 100);
    for (const v1::ConnectionInfo& info : page.connections()) {
      EXPECT_EQ(info.connection().function(), "echo");
      seen.insert(info.connection().connection_id());
    }
    request.set_page_token(page.next_page_token());
    ++pages;
  } while (!request.page_token().empty() && pages < 100);
  for (const std::string& id : seen) EXPECT_EQ(seen.count(id), 1u) << id;
  for (const std::string& id : expected) EXPECT_EQ(seen.count(id), 1u) << id;
}

// Each malformed request: INVALID_ARGUMENT naming the field, and nothing done (the connection
// gets no message, is not closed, joins nothing).
TEST_F(AddressingE2eTest, MalformedRequestsNameTheFieldAndChangeNothing) {
  Conn conn = Open("/echo?user=ann");
  ASSERT_FALSE(HasFailure());
  auto expect_invalid = [](const grpc::Status& status, const std::string& field) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field;
    EXPECT_THAT(status.error_message(), HasSubstr(field));
  };
  v1::SendResponse sent;
  expect_invalid(Send(v1::Target(), "x", &sent), "target");
  expect_invalid(Send(Group("bad group!"), "x", &sent), "target.groups[0]");
  v1::Target unknown_function = User("ann");
  unknown_function.add_functions("nope");
  expect_invalid(Send(unknown_function, "x", &sent), "target.functions[0]");
  {
    v1::SendRequest request;
    *request.mutable_target() = Ids({&conn});
    grpc::ClientContext context;
    SetDeadline(context);
    expect_invalid(control_->Send(&context, request, &sent), "payload");
  }
  {
    v1::CloseRequest request;
    *request.mutable_target() = Ids({&conn});
    request.set_code(1005);
    v1::CloseResponse closed;
    grpc::ClientContext context;
    SetDeadline(context);
    expect_invalid(control_->Close(&context, request, &closed), "code");
    request.set_code(1000);
    request.set_reason(std::string(124, 'r'));
    grpc::ClientContext context2;
    SetDeadline(context2);
    expect_invalid(control_->Close(&context2, request, &closed), "reason");
  }
  {
    v1::EmitRequest request;
    *request.mutable_target() = Ids({&conn});
    request.set_name("has space");
    v1::EmitResponse emitted;
    grpc::ClientContext context;
    SetDeadline(context);
    expect_invalid(control_->Emit(&context, request, &emitted), "name");
  }
  v1::GroupsResponse groups;
  expect_invalid(ChangeGroups(true, Ids({&conn}), "", &groups), "groups[0]");
  expect_invalid(ChangeGroups(true, Ids({&conn}), std::string(129, 'g'), &groups), "groups[0]");
  {
    v1::BindRequest request;
    *request.mutable_target() = Ids({&conn});
    v1::BindResponse bound;
    grpc::ClientContext context;
    SetDeadline(context);
    expect_invalid(control_->BindUser(&context, request, &bound), "identity");
    request.mutable_identity()->set_user_id(std::string(257, 'u'));
    grpc::ClientContext context2;
    SetDeadline(context2);
    expect_invalid(control_->BindUser(&context2, request, &bound), "identity.user_id");
  }
  {
    v1::ListConnectionsRequest request;
    request.set_page_size(5000);
    v1::ListConnectionsResponse listed;
    expect_invalid(List(request, &listed), "page_size");
  }
  // Nothing changed: still open, still ann's, in no group, and the next message is the marker.
  v1::ConnectionInfo info;
  v1::GetConnectionRequest get;
  get.set_connection_id(conn.id);
  grpc::ClientContext context;
  SetDeadline(context);
  ASSERT_TRUE(control_->GetConnection(&context, get, &info).ok());
  EXPECT_EQ(info.connection().user_id(), "ann");
  EXPECT_TRUE(info.connection().groups().empty());
  ExpectNext({&conn}, {{}});
}

}  // namespace
}  // namespace fngate::e2e
