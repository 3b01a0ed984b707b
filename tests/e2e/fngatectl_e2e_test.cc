// End to end: the real `fngatectl` binary (FNGATECTL_BIN) against a real gateway and echo
// worker, asserting on its stdout, stderr and exit code and on what the WebSocket clients get.
//
//   FngatectlUsageTest    bad command lines: a clear message and exit 2, no gateway needed.
//   FngatectlTest             send, close, get.
//   FngatectlAddressingTest   users, groups, all, JSON, emit, force-logout, join, leave, bind,
//                             list, and the gateway's own validation.
//   FngatectlSecuredTest      the control token and sign-url.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

#ifndef FNGATECTL_BIN
#error "FNGATECTL_BIN must be defined by tests/CMakeLists.txt"
#endif

namespace fngate::e2e {
namespace {

using test_support::Subprocess;
using test_support::WsMessage;
using test_support::WsTestClient;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

struct CtlResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const CtlResult& result) {
  return os << "exit " << result.exit_code << "\nstdout:\n"
            << result.out << "stderr:\n"
            << result.err;
}

// Runs fngatectl with exactly `args` and waits for it to exit.
CtlResult RunCtlRaw(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {FNGATECTL_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  CtlResult result;
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(argv);
  if (!process.ok()) {
    ADD_FAILURE() << "cannot start fngatectl: " << process.status();
    return result;
  }
  absl::StatusOr<int> code = (*process)->Wait(kEventTimeout);
  if (!code.ok()) {
    ADD_FAILURE() << "fngatectl did not exit: " << code.status() << "\n" << (*process)->Output();
    return result;
  }
  result.exit_code = *code;
  result.out = (*process)->Stdout();
  result.err = (*process)->Stderr();
  return result;
}

// `path` in the test's temporary directory, holding `contents`.
std::string WriteTempFile(const std::string& name, const std::string& contents) {
  std::string path = absl::StrCat(::testing::TempDir(), "/fngatectl_e2e_", ::getpid(), "_", name);
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

// Parses a JSON text (a frame, a line of output) into a protobuf Value.
::testing::AssertionResult ParseJson(const std::string& text, google::protobuf::Value* value) {
  google::protobuf::util::Status status = google::protobuf::util::JsonStringToMessage(text, value);
  if (!status.ok()) {
    return ::testing::AssertionFailure() << "not JSON (" << status.ToString() << "): " << text;
  }
  return ::testing::AssertionSuccess();
}

// The lines of `text`, without empty ones.
std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// ---------------------------------------------------------------------------------------------
// Usage errors: exit 2 with a message naming what is wrong, nothing on stdout.

TEST(FngatectlUsageTest, BadCommandLinesExitTwoWithAClearMessage) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, "fngatectl: no command given"},
      {{"sned", "--conn", "c1", "hi"}, "fngatectl: unknown command 'sned'"},
      {{"send", "hi"}, "fngatectl: send: no target: give --conn, --user-id, --group or --all"},
      {{"close", "--function", "echo"}, "fngatectl: close: no target"},
      {{"close", "--conn", "c1", "--code", "999"},
       "fngatectl: close: --code: 999 is not a close code a server may send"},
      {{"close", "--conn", "c1", "--code", "abc"},
       "fngatectl: close: --code: 'abc' is not a number"},
      {{"close", "--conn", "c1", "--reason", std::string(124, 'x')},
       "fngatectl: close: --reason: at most 123 bytes, got 124"},
      {{"send", "--conn", "c1", "--json", "{nope"}, "fngatectl: send: --json: not valid JSON"},
      {{"emit", "--conn", "c1"}, "fngatectl: emit: --name is required"},
      {{"join", "--conn", "c1"}, "fngatectl: join: --join GROUP is required"},
      {{"bind", "--conn", "c1"}, "fngatectl: bind: nothing to change"},
      {{"get"}, "fngatectl: get: the connection ID is required"},
      {{"list", "--page-size", "0"}, "fngatectl: list: --page-size: '0' is not a number"},
      {{"sign-url"}, "fngatectl: sign-url: --function is required"},
      {{"get", "c1", "--timeout", "soon"}, "fngatectl: get: --timeout: 'soon' is not a duration"},
      {{"get", "c1", "--token-file", "/nonexistent/fngate-token"},
       "fngatectl: get: --token-file: cannot read /nonexistent/fngate-token"},
      {{"get", "c1", "--bogus"}, "fngatectl: get: unknown flag --bogus"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat("fngatectl ", absl::StrJoin(c.args, " ")));
    CtlResult result = RunCtlRaw(c.args);
    EXPECT_EQ(result.exit_code, 2) << result;
    EXPECT_THAT(result.err, StartsWith(c.message)) << result;
    EXPECT_THAT(result.err, HasSubstr("--help")) << result;
    EXPECT_EQ(result.out, "") << result;
  }
}

TEST(FngatectlUsageTest, HelpExitsZero) {
  CtlResult top = RunCtlRaw({"--help"});
  EXPECT_EQ(top.exit_code, 0) << top;
  EXPECT_THAT(top.out, HasSubstr("usage: fngatectl COMMAND"));
  EXPECT_EQ(top.err, "");
  CtlResult send = RunCtlRaw({"send", "--help"});
  EXPECT_EQ(send.exit_code, 0) << send;
  EXPECT_THAT(send.out, HasSubstr("usage: fngatectl send TARGET"));
}

TEST(FngatectlUsageTest, UnreachableGatewayExitsOneWithTheCode) {
  // Nothing listens on port 1 of the loopback address.
  CtlResult result = RunCtlRaw({"get", "c1", "--control", "127.0.0.1:1", "--timeout", "5s"});
  EXPECT_EQ(result.exit_code, 1) << result;
  EXPECT_THAT(result.err, StartsWith("fngatectl: UNAVAILABLE: ")) << result;
  EXPECT_EQ(result.out, "");
}

// ---------------------------------------------------------------------------------------------
// A gateway and an echo worker per test; clients connect with ConnectAndGetId().

class FngatectlTestBase : public EchoClusterTest {
 protected:
  // fngatectl pointed at this test's gateway (a global flag before the command, so `args` may
  // end with "--" and operands).
  CtlResult RunCtl(std::vector<std::string> args) {
    args.insert(args.begin(), absl::StrCat("--control=127.0.0.1:", gateway_.ready.Port("control")));
    return RunCtlRaw(args);
  }

  // Connects a new client to `target` and returns its connection id.
  std::string Connect(WsTestClient& client, const std::string& target = "/echo") {
    absl::StatusOr<std::string> id = ConnectAndGetId(client, gateway_, worker_, target);
    EXPECT_TRUE(IsOk(id));
    return id.ok() ? *id : "";
  }

  // The next message `client` receives.
  std::string Next(WsTestClient& client) {
    absl::StatusOr<WsMessage> message = client.Read(kIoTimeout);
    EXPECT_TRUE(IsOk(message));
    return message.ok() ? message->data : "<no message>";
  }

  // Sends `text` to `id` alone: a marker that shows by its arrival that nothing else was
  // queued to the client before it.
  void SendDirect(const std::string& id, const std::string& text) {
    CtlResult result = RunCtl({"send", "--conn", id, text});
    EXPECT_EQ(result.exit_code, 0) << result;
    EXPECT_EQ(result.out, "delivered 1\n") << result;
  }

  // `fngatectl get -o json -- ID`, parsed. Ids may start with "--": after a lone -- they are
  // never read as a flag.
  v1::ConnectionInfo Get(const std::string& id) {
    v1::ConnectionInfo info;
    CtlResult result = RunCtl({"get", "-o", "json", "--", id});
    EXPECT_EQ(result.exit_code, 0) << result;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(result.out, &info).ok()) << result;
    return info;
  }
};

class FngatectlTest : public FngatectlTestBase {};

TEST_F(FngatectlTest, SendTextReachesTheClientAndReportsGoneIds) {
  WsTestClient a;
  WsTestClient b;
  const std::string id_a = Connect(a);
  const std::string id_b = Connect(b);
  CtlResult result =
      RunCtl({"send", "--conn", id_a, "--conn", "no-such-conn", "--conn", id_b, "hello from ctl"});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "delivered 2, gone: no-such-conn\n");
  EXPECT_EQ(result.err, "");
  for (WsTestClient* client : {&a, &b}) {
    absl::StatusOr<WsMessage> message = client->Read(kIoTimeout);
    ASSERT_TRUE(IsOk(message));
    EXPECT_FALSE(message->is_binary);
    EXPECT_EQ(message->data, "hello from ctl");
  }
}

TEST_F(FngatectlTest, TextAfterDoubleDashIsSentAsIs) {
  WsTestClient client;
  const std::string id = Connect(client);
  CtlResult result = RunCtl({"send", "--conn", id, "--", "--not-a-flag"});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(Next(client), "--not-a-flag");
}

TEST_F(FngatectlTest, SendBinaryFileArrivesAsBinary) {
  WsTestClient client;
  const std::string id = Connect(client);
  const std::string bytes("\x00\x01\xfe\xff payload", 12);
  const std::string path = WriteTempFile("binary", bytes);
  CtlResult result = RunCtl({"send", "--conn", id, "--binary-file", path});
  std::remove(path.c_str());
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "delivered 1\n");
  absl::StatusOr<WsMessage> message = client.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(message));
  EXPECT_TRUE(message->is_binary);
  EXPECT_EQ(message->data, bytes);
}

TEST_F(FngatectlTest, SendPrintsTheResponseAsJson) {
  WsTestClient client;
  const std::string id = Connect(client);
  CtlResult result = RunCtl({"send", "--conn", id, "--conn", "gone-one", "-o", "json", "x"});
  ASSERT_EQ(result.exit_code, 0) << result;
  v1::SendResponse response;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(result.out, &response).ok()) << result;
  EXPECT_EQ(response.delivered(), 1);
  EXPECT_THAT(response.gone_connection_ids(), ElementsAre("gone-one"));
  EXPECT_EQ(Next(client), "x");
}

TEST_F(FngatectlTest, TokenFileIsReadAndSent) {
  // This gateway has no token configured, so any token passes; the file must still be read
  // (and the call made) without a usage error.
  WsTestClient client;
  const std::string id = Connect(client);
  const std::string path = WriteTempFile("token", "any-token\n");
  CtlResult result = RunCtl({"send", "--conn", id, "--token-file", path, "with token"});
  std::remove(path.c_str());
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(Next(client), "with token");
}

TEST_F(FngatectlTest, CloseSendsCodeAndReason) {
  WsTestClient client;
  WsTestClient other;
  const std::string id = Connect(client);
  const std::string other_id = Connect(other);
  CtlResult result = RunCtl(
      {"close", "--conn", id, "--conn", "gone-x", "--code", "4001", "--reason", "kicked by ctl"});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "closed 1, gone: gone-x\n");

  absl::StatusOr<int> code = client.WaitForClose(kIoTimeout);
  ASSERT_TRUE(IsOk(code));
  EXPECT_EQ(*code, 4001);
  EXPECT_EQ(client.CloseReason(), "kicked by ctl");
  ASSERT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", id, 1)));
  const test_support::WorkerEvent disconnect = Events(worker_, "disconnect", id).front();
  EXPECT_EQ(disconnect.Field("by"), "CONTROL") << disconnect.line;
  EXPECT_EQ(disconnect.Field("code"), "4001") << disconnect.line;

  // The other connection is untouched.
  SendDirect(other_id, "still open");
  EXPECT_EQ(Next(other), "still open");
}

TEST_F(FngatectlTest, CloseWithoutCodeIsNormalClosure) {
  WsTestClient client;
  const std::string id = Connect(client);
  CtlResult result = RunCtl({"close", "--conn", id, "--json"});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, R"({"closed":1,"goneConnectionIds":[]})"
                        "\n");
  absl::StatusOr<int> code = client.WaitForClose(kIoTimeout);
  ASSERT_TRUE(IsOk(code));
  EXPECT_EQ(*code, 1000);
}

TEST_F(FngatectlTest, GetDescribesTheConnection) {
  WsTestClient client;
  const std::string id = Connect(client, "/echo?user=alice&room=x");
  ASSERT_TRUE(IsOk(client.SendText("whoami", kIoTimeout)));
  EXPECT_EQ(Next(client), "user=alice via=echo");

  CtlResult text = RunCtl({"get", "--", id});
  ASSERT_EQ(text.exit_code, 0) << text;
  EXPECT_THAT(text.out, HasSubstr(absl::StrCat("connection   ", id, "\n")));
  EXPECT_THAT(text.out, HasSubstr("function     echo\n"));
  EXPECT_THAT(text.out, HasSubstr("path         /echo\n"));
  EXPECT_THAT(text.out, HasSubstr("query        room=x user=alice\n"));
  EXPECT_THAT(text.out, HasSubstr("user         alice\n"));
  EXPECT_THAT(text.out, HasSubstr("metadata     via=echo\n"));
  // Counted when read, so before the event call; "out" counts after the write completes,
  // which may be after the client has the reply.
  EXPECT_THAT(text.out, HasSubstr("messages     1 in, "));
  EXPECT_THAT(text.out, HasSubstr("client       127.0.0.1:"));

  v1::ConnectionInfo info = Get(id);
  EXPECT_EQ(info.connection().connection_id(), id);
  EXPECT_EQ(info.connection().function(), "echo");
  EXPECT_EQ(info.connection().user_id(), "alice");
  EXPECT_EQ(info.messages_in(), 1u);
  EXPECT_EQ(info.connection().gateway(),
            absl::StrCat("127.0.0.1:", gateway_.ready.Port("control")));
}

TEST_F(FngatectlTest, GetUnknownIdIsNotFoundAndExitsOne) {
  CtlResult result = RunCtl({"get", "no-such-connection"});
  EXPECT_EQ(result.exit_code, 1) << result;
  EXPECT_THAT(result.err, StartsWith("fngatectl: NOT_FOUND: connection_id: ")) << result;
  EXPECT_EQ(result.out, "");
}

// ---------------------------------------------------------------------------------------------
// Addressing, events, groups, identity and the online table (control.proto).

class FngatectlAddressingTest : public FngatectlTestBase {};

TEST_F(FngatectlAddressingTest, SendAddressesUsersAndAllMinusExcluded) {
  WsTestClient alice1, alice2, bob;
  const std::string id_alice1 = Connect(alice1, "/echo?user=alice");
  Connect(alice2, "/echo?user=alice");
  Connect(bob, "/echo?user=bob");

  CtlResult to_alice = RunCtl({"send", "--user-id", "alice", "to alice"});
  ASSERT_EQ(to_alice.exit_code, 0) << to_alice;
  EXPECT_EQ(to_alice.out, "delivered 2\n");
  EXPECT_EQ(Next(alice1), "to alice");
  EXPECT_EQ(Next(alice2), "to alice");

  CtlResult all_but = RunCtl({"send", "--all", "--exclude", id_alice1, "to all but one"});
  ASSERT_EQ(all_but.exit_code, 0) << all_but;
  EXPECT_EQ(all_but.out, "delivered 2\n");
  EXPECT_EQ(Next(alice2), "to all but one");
  // bob got nothing for alice: the broadcast is his first message.
  EXPECT_EQ(Next(bob), "to all but one");
  // alice1 was excluded: the direct message comes first.
  SendDirect(id_alice1, "direct");
  EXPECT_EQ(Next(alice1), "direct");

  // Narrowing by a function the gateway does not have is a mistake, named as one.
  CtlResult narrowed = RunCtl({"send", "--all", "--function", "nosuch", "nobody"});
  EXPECT_EQ(narrowed.exit_code, 1) << narrowed;
  EXPECT_THAT(narrowed.err, HasSubstr("target.functions[0]"));
}

TEST_F(FngatectlAddressingTest, SendJsonArrivesAsAText) {
  WsTestClient client;
  const std::string id = Connect(client);
  CtlResult result = RunCtl({"send", "--conn", id, "--json", R"({"n": 42, "tags": ["a"]})"});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "delivered 1\n");
  absl::StatusOr<WsMessage> message = client.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(message));
  EXPECT_FALSE(message->is_binary);
  google::protobuf::Value value;
  ASSERT_TRUE(ParseJson(message->data, &value));
  EXPECT_EQ(value.struct_value().fields().at("n").number_value(), 42);
  EXPECT_EQ(value.struct_value().fields().at("tags").list_value().values(0).string_value(), "a");
}

TEST_F(FngatectlAddressingTest, EmitReachesARawClientAsJsonText) {
  WsTestClient client;
  const std::string id = Connect(client);
  CtlResult result =
      RunCtl({"emit", "--conn", id, "--conn", "gone-e", "--name", "tick", "--data", R"({"n":42})"});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "delivered 1, gone: gone-e\n");
  absl::StatusOr<WsMessage> event = client.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(event));
  EXPECT_FALSE(event->is_binary);
  google::protobuf::Value value;
  ASSERT_TRUE(ParseJson(event->data, &value));
  EXPECT_THAT(event->data, HasSubstr("tick"));
  EXPECT_THAT(event->data, HasSubstr("42"));
  // Not closed: the client still talks to its function.
  ASSERT_TRUE(IsOk(client.SendText("after the event", kIoTimeout)));
  EXPECT_EQ(Next(client), "after the event");
}

TEST_F(FngatectlAddressingTest, EmitWithCloseClosesAfterTheEvent) {
  WsTestClient client;
  const std::string id = Connect(client);
  CtlResult result = RunCtl(
      {"emit", "--conn", id, "--name", "bye", "--close", "--code", "4002", "--reason", "later"});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "delivered 1\n");
  absl::StatusOr<WsMessage> event = client.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(event));
  EXPECT_THAT(event->data, HasSubstr("bye"));
  absl::StatusOr<int> code = client.WaitForClose(kIoTimeout);
  ASSERT_TRUE(IsOk(code));
  EXPECT_EQ(*code, 4002);
  EXPECT_EQ(client.CloseReason(), "later");
}

TEST_F(FngatectlAddressingTest, ForceLogoutEmitsThenClosesEveryDeviceOfTheUser) {
  WsTestClient alice1, alice2, bob;
  Connect(alice1, "/echo?user=alice");
  Connect(alice2, "/echo?user=alice");
  const std::string id_bob = Connect(bob, "/echo?user=bob");
  CtlResult result =
      RunCtl({"force-logout", "--user-id", "alice", "--data", R"({"why":"password-changed"})",
              "--code", "4003", "--reason", "logged out"});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "delivered 2\n");
  for (WsTestClient* client : {&alice1, &alice2}) {
    absl::StatusOr<WsMessage> event = client->Read(kIoTimeout);
    ASSERT_TRUE(IsOk(event));
    EXPECT_THAT(event->data, HasSubstr("forceLogout"));
    EXPECT_THAT(event->data, HasSubstr("password-changed"));
    absl::StatusOr<int> code = client->WaitForClose(kIoTimeout);
    ASSERT_TRUE(IsOk(code));
    EXPECT_EQ(*code, 4003);
    EXPECT_EQ(client->CloseReason(), "logged out");
  }
  SendDirect(id_bob, "bob stays");
  EXPECT_EQ(Next(bob), "bob stays");
}

TEST_F(FngatectlAddressingTest, JoinSendToGroupLeave) {
  WsTestClient a, b, outsider;
  const std::string id_a = Connect(a);
  const std::string id_b = Connect(b);
  const std::string id_outsider = Connect(outsider);

  CtlResult join =
      RunCtl({"join", "--conn", id_a, "--conn", id_b, "--join", "room-1", "--join", "room-2"});
  ASSERT_EQ(join.exit_code, 0) << join;
  EXPECT_EQ(join.out, "affected 2\n");
  EXPECT_THAT(Get(id_a).connection().groups(), UnorderedElementsAre("room-1", "room-2"));

  CtlResult to_room = RunCtl({"send", "--group", "room-1", "to room 1"});
  ASSERT_EQ(to_room.exit_code, 0) << to_room;
  EXPECT_EQ(to_room.out, "delivered 2\n");
  EXPECT_EQ(Next(a), "to room 1");
  EXPECT_EQ(Next(b), "to room 1");

  CtlResult leave = RunCtl({"leave", "--conn", id_a, "--leave", "room-1"});
  ASSERT_EQ(leave.exit_code, 0) << leave;
  EXPECT_EQ(leave.out, "affected 1\n");
  EXPECT_THAT(Get(id_a).connection().groups(), ElementsAre("room-2"));

  CtlResult again = RunCtl({"send", "--group", "room-1", "second"});
  ASSERT_EQ(again.exit_code, 0) << again;
  EXPECT_EQ(again.out, "delivered 1\n");
  EXPECT_EQ(Next(b), "second");
  SendDirect(id_a, "direct to a");
  EXPECT_EQ(Next(a), "direct to a");  // "second" never reached a.
  SendDirect(id_outsider, "direct to outsider");
  EXPECT_EQ(Next(outsider), "direct to outsider");
}

TEST_F(FngatectlAddressingTest, BindChangesTheIdentityEverywhere) {
  WsTestClient client;
  const std::string id = Connect(client);
  CtlResult bind =
      RunCtl({"bind", "--conn", id, "--set-user", "carol", "--set-app", "app-1", "--set-channel",
              "web", "--set-device", "phone", "--set-meta", "plan=pro", "--set-meta", "via=ctl"});
  ASSERT_EQ(bind.exit_code, 0) << bind;
  EXPECT_EQ(bind.out, "affected 1\n");

  v1::ConnectionInfo info = Get(id);
  EXPECT_EQ(info.connection().user_id(), "carol");
  EXPECT_EQ(info.connection().app_id(), "app-1");
  EXPECT_EQ(info.connection().channel(), "web");
  EXPECT_EQ(info.connection().device_id(), "phone");
  EXPECT_EQ(info.connection().metadata().at("plan"), "pro");

  // The next message event carries the new identity to the function.
  ASSERT_TRUE(IsOk(client.SendText("whoami", kIoTimeout)));
  EXPECT_EQ(Next(client), "user=carol via=ctl");

  // And the user id addresses the connection.
  CtlResult to_carol = RunCtl({"send", "--user-id", "carol", "--app", "app-1", "hi carol"});
  ASSERT_EQ(to_carol.exit_code, 0) << to_carol;
  EXPECT_EQ(to_carol.out, "delivered 1\n");
  EXPECT_EQ(Next(client), "hi carol");

  // An empty value clears; fields not given stay.
  CtlResult clear = RunCtl({"bind", "--conn", id, "--set-channel", "", "--set-meta", "plan="});
  ASSERT_EQ(clear.exit_code, 0) << clear;
  info = Get(id);
  EXPECT_EQ(info.connection().channel(), "");
  EXPECT_EQ(info.connection().user_id(), "carol");
  EXPECT_FALSE(info.connection().metadata().contains("plan"));
}

TEST_F(FngatectlAddressingTest, ListShowsTheOnlineTable) {
  WsTestClient alice, bob1, bob2;
  const std::string id_alice = Connect(alice, "/echo?user=alice");
  const std::string id_bob1 = Connect(bob1, "/echo?user=bob");
  const std::string id_bob2 = Connect(bob2, "/echo?user=bob");

  CtlResult table = RunCtl({"list"});
  ASSERT_EQ(table.exit_code, 0) << table;
  std::vector<std::string> lines = Lines(table.out);
  ASSERT_EQ(lines.size(), 4u) << table;
  EXPECT_THAT(lines[0], ::testing::ContainsRegex("^CONNECTION +FUNCTION +USER"));
  for (const std::string& id : {id_alice, id_bob1, id_bob2}) {
    EXPECT_THAT(table.out, HasSubstr(id));
  }
  EXPECT_EQ(table.err, "");

  // JSON lines, filtered by user.
  CtlResult bobs = RunCtl({"list", "--user-id", "bob", "-o", "json"});
  ASSERT_EQ(bobs.exit_code, 0) << bobs;
  std::set<std::string> bob_ids;
  for (const std::string& line : Lines(bobs.out)) {
    v1::ConnectionInfo info;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &info).ok()) << line;
    EXPECT_EQ(info.connection().user_id(), "bob");
    bob_ids.insert(info.connection().connection_id());
  }
  EXPECT_EQ(bob_ids, (std::set<std::string>{id_bob1, id_bob2}));

  // One row per page, every page: each connection exactly once.
  CtlResult paged = RunCtl({"list", "--all", "--page-size", "1", "-o", "json"});
  ASSERT_EQ(paged.exit_code, 0) << paged;
  std::vector<std::string> ids;
  for (const std::string& line : Lines(paged.out)) {
    v1::ConnectionInfo info;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &info).ok()) << line;
    ids.push_back(info.connection().connection_id());
  }
  EXPECT_THAT(ids, UnorderedElementsAre(id_alice, id_bob1, id_bob2));

  // Without --all, one page and a hint at the next.
  CtlResult first = RunCtl({"list", "--page-size", "2"});
  ASSERT_EQ(first.exit_code, 0) << first;
  EXPECT_EQ(Lines(first.out).size(), 3u) << first;
  EXPECT_THAT(first.err, HasSubstr("--page-token="));

  CtlResult array = RunCtl({"list", "-o", "json-array"});
  ASSERT_EQ(array.exit_code, 0) << array;
  google::protobuf::Value value;
  ASSERT_TRUE(ParseJson(array.out, &value));
  EXPECT_EQ(value.list_value().values_size(), 3);

  CtlResult none = RunCtl({"list", "--function", "nosuch"});
  ASSERT_EQ(none.exit_code, 0) << none;
  EXPECT_EQ(Lines(none.out).size(), 1u) << none;  // The header alone.
}

TEST_F(FngatectlAddressingTest, ServerSideValidationExitsOneNamingTheField) {
  WsTestClient client;
  const std::string id = Connect(client);
  CtlResult bad_name = RunCtl({"emit", "--conn", id, "--name", "no spaces allowed"});
  EXPECT_EQ(bad_name.exit_code, 1) << bad_name;
  EXPECT_THAT(bad_name.err, StartsWith("fngatectl: INVALID_ARGUMENT: name")) << bad_name;

  CtlResult bad_group = RunCtl({"join", "--conn", id, "--join", "bad group!"});
  EXPECT_EQ(bad_group.exit_code, 1) << bad_group;
  EXPECT_THAT(bad_group.err, StartsWith("fngatectl: INVALID_ARGUMENT: groups")) << bad_group;

  // Nothing was done: the client's next message is its own echo.
  ASSERT_TRUE(IsOk(client.SendText("mine", kIoTimeout)));
  EXPECT_EQ(Next(client), "mine");
}

// A gateway with a signing key, a function that requires signed URLs, and a control token.
class FngatectlSecuredTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_path_ = WriteTempFile("signing_key", "k1-0123456789abcdef0123456789abcdef");
    token_path_ = WriteTempFile("control_token", "s3cret-token-for-fngatectl\n");
    absl::StatusOr<Started> worker = StartEchoWorker();
    ASSERT_TRUE(IsOk(worker));
    worker_ = *std::move(worker);
    config_path_ = WriteTempFile("gateway.yaml", absl::StrCat("functions:\n"
                                                              "  - name: secure\n"
                                                              "    target: \"127.0.0.1:",
                                                              worker_.ready.Port("grpc"),
                                                              "\"\n"
                                                              "    require_signed_url: true\n"
                                                              "signing:\n"
                                                              "  keys:\n"
                                                              "    - id: k1\n"
                                                              "      secret: {file: \"",
                                                              key_path_,
                                                              "\"}\n"
                                                              "control_token: {file: \"",
                                                              token_path_, "\"}\n"));
    absl::StatusOr<Started> gateway = StartGateway({absl::StrCat("--config=", config_path_)});
    ASSERT_TRUE(IsOk(gateway));
    gateway_ = *std::move(gateway);
  }
  void TearDown() override {
    for (const std::string& path : {key_path_, token_path_, config_path_})
      std::remove(path.c_str());
  }

  CtlResult RunCtl(std::vector<std::string> args, bool with_token = true) {
    args.insert(args.begin(), absl::StrCat("--control=127.0.0.1:", gateway_.ready.Port("control")));
    if (with_token) args.insert(args.begin(), absl::StrCat("--token-file=", token_path_));
    return RunCtlRaw(args);
  }

  // The path and query of a ws:// URL on this gateway.
  std::string Target(const std::string& url) {
    const std::string prefix = absl::StrCat("ws://127.0.0.1:", gateway_.ready.Port("ws"));
    EXPECT_THAT(url, StartsWith(prefix));
    return url.substr(std::min(prefix.size(), url.size()));
  }

  std::string key_path_, token_path_, config_path_;
  Started worker_;
  Started gateway_;
};

TEST_F(FngatectlSecuredTest, ControlCallsNeedTheToken) {
  CtlResult without = RunCtl({"get", "some-id"}, /*with_token=*/false);
  EXPECT_EQ(without.exit_code, 1) << without;
  EXPECT_THAT(without.err, StartsWith("fngatectl: UNAUTHENTICATED")) << without;

  CtlResult wrong = RunCtl({"get", "some-id", "--token", "wrong"}, /*with_token=*/false);
  EXPECT_EQ(wrong.exit_code, 1) << wrong;
  EXPECT_THAT(wrong.err, StartsWith("fngatectl: UNAUTHENTICATED")) << wrong;

  // With the token the call goes through (and finds no such connection).
  CtlResult with = RunCtl({"get", "some-id"});
  EXPECT_EQ(with.exit_code, 1) << with;
  EXPECT_THAT(with.err, StartsWith("fngatectl: NOT_FOUND")) << with;
}

TEST_F(FngatectlSecuredTest, SignedUrlIsAcceptedAndTamperingIsNot) {
  CtlResult signed_url = RunCtl({"sign-url", "--function", "secure", "--query", "room=x",
                                 "--user-id", "alice", "--ttl", "10m"});
  ASSERT_EQ(signed_url.exit_code, 0) << signed_url;
  std::vector<std::string> lines = Lines(signed_url.out);
  ASSERT_EQ(lines.size(), 1u) << signed_url;
  const std::string target = Target(lines[0]);
  EXPECT_THAT(target, StartsWith("/secure?"));
  EXPECT_THAT(target, HasSubstr("room=x"));

  WsTestClient client;
  absl::StatusOr<std::string> id = ConnectAndGetId(client, gateway_, worker_, target);
  ASSERT_TRUE(IsOk(id)) << "handshake " << client.HandshakeStatus();
  CtlResult get = RunCtl({"get", "--", *id});
  ASSERT_EQ(get.exit_code, 0) << get;
  EXPECT_THAT(get.out, HasSubstr("user         alice\n"));

  // Changing a signed parameter, or leaving the signature out, is refused before the function.
  std::string tampered = target;
  tampered.replace(tampered.find("room=x"), 6, "room=y");
  for (const std::string& bad : {tampered, std::string("/secure?room=x")}) {
    WsTestClient refused;
    absl::Status status = refused.Connect("127.0.0.1", gateway_.ready.Port("ws"), bad, kIoTimeout);
    EXPECT_FALSE(status.ok()) << bad;
    EXPECT_EQ(refused.HandshakeStatus(), 401) << bad;
  }

  CtlResult json = RunCtl({"sign-url", "--function", "secure", "-o", "json"});
  ASSERT_EQ(json.exit_code, 0) << json;
  v1::SignUrlResponse response;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &response).ok()) << json;
  EXPECT_EQ(response.key_id(), "k1");
  EXPECT_GT(response.expires_at().seconds(), 0);

  CtlResult unknown = RunCtl({"sign-url", "--function", "nosuch"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown;
  EXPECT_THAT(unknown.err, StartsWith("fngatectl: INVALID_ARGUMENT: function")) << unknown;
}

}  // namespace
}  // namespace fngate::e2e
