// End to end: who may use the gateway.
//   - Control credentials: with a control token, a call without it or with a wrong one is
//     UNAUTHENTICATED and does nothing (the client it would close still echoes); the right
//     token works; the token may come from a file or an environment variable.
//   - A control port beyond loopback without credentials: the gateway refuses to start.
//   - Origin allow-list: a listed Origin connects, another (or none) gets HTTP 403 and the
//     function never hears of it.
//   - X-Forwarded-For: from a trusted proxy (here 127.0.0.1) it names the client address the
//     events carry; from any other peer it is ignored.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"
#include "tests/support/temp_dir.h"

namespace fngate::e2e {
namespace {

using test_support::TempDir;
using test_support::WsMessage;
using test_support::WsTestClient;
using ::testing::HasSubstr;

constexpr char kToken[] = "control-token-for-tests-0123456789";

std::string Describe(const grpc::Status& status) {
  return absl::StrCat("grpc code ", status.error_code(), ": ", status.error_message());
}

// The client still answers: nothing closed it.
::testing::AssertionResult StillEchoes(WsTestClient& client, const std::string& text) {
  if (absl::Status s = client.SendText(text, kIoTimeout); !s.ok()) {
    return ::testing::AssertionFailure() << "send: " << s;
  }
  absl::StatusOr<WsMessage> reply = client.Read(kIoTimeout);
  if (!reply.ok()) return ::testing::AssertionFailure() << "read: " << reply.status();
  if (reply->data != text) return ::testing::AssertionFailure() << "got '" << reply->data << "'";
  return ::testing::AssertionSuccess();
}

class ControlTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TempDir> dir = TempDir::Create();
    ASSERT_TRUE(IsOk(dir));
    dir_ = std::make_unique<TempDir>(*std::move(dir));
    // A trailing newline, as `echo token > file` leaves: not part of the token.
    ASSERT_TRUE(IsOk(dir_->WriteFile("token", absl::StrCat(kToken, "\n"))));
    absl::StatusOr<Started> worker = StartEchoWorker();
    ASSERT_TRUE(IsOk(worker));
    worker_ = *std::move(worker);
  }

  void StartGatewayWith(const std::vector<std::string>& flags, const ChildEnv& env = {}) {
    std::vector<std::string> all = {FunctionFlag("echo", {&worker_})};
    all.insert(all.end(), flags.begin(), flags.end());
    absl::StatusOr<Started> gateway = StartGateway(all, env);
    ASSERT_TRUE(IsOk(gateway));
    gateway_ = *std::move(gateway);
    control_ = NewControlStub(gateway_);
  }

  // Close(id) with `token` ("" sends no authorization metadata).
  grpc::Status CloseWith(const std::string& token, const std::string& id) {
    v1::CloseRequest request;
    request.mutable_target()->add_connection_ids(id);
    request.set_code(4000);
    request.set_reason("by control");
    v1::CloseResponse response;
    grpc::ClientContext context;
    SetDeadline(context);
    if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    return control_->Close(&context, request, &response);
  }

  std::unique_ptr<TempDir> dir_;
  Started worker_;
  Started gateway_;
  std::unique_ptr<v1::GatewayControl::Stub> control_;
};

TEST_F(ControlTokenTest, OnlyTheRightTokenClosesTheConnection) {
  ASSERT_NO_FATAL_FAILURE(StartGatewayWith({absl::StrCat("--control_token.file=", dir_->Path("token"))}));
  WsTestClient client;
  absl::StatusOr<std::string> id = ConnectAndGetId(client, gateway_, worker_, "/echo");
  ASSERT_TRUE(IsOk(id));

  grpc::Status none = CloseWith("", *id);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(none);
  EXPECT_TRUE(StillEchoes(client, "after no token"));

  grpc::Status wrong = CloseWith("control-token-for-tests-0123456788", *id);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(wrong);
  EXPECT_TRUE(StillEchoes(client, "after a wrong token"));
  // A prefix of the token is no token either.
  grpc::Status prefix = CloseWith(std::string(kToken).substr(0, 20), *id);
  EXPECT_EQ(prefix.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(prefix);
  EXPECT_TRUE(StillEchoes(client, "after a prefix"));
  // Nothing else is served without it: not even reading the online table.
  {
    v1::GetConnectionRequest request;
    request.set_connection_id(*id);
    v1::ConnectionInfo info;
    grpc::ClientContext context;
    SetDeadline(context);
    grpc::Status status = control_->GetConnection(&context, request, &info);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(status);
  }
  {
    v1::SendRequest request;
    request.mutable_target()->add_connection_ids(*id);
    request.mutable_payload()->set_text("pushed without a token");
    v1::SendResponse response;
    grpc::ClientContext context;
    SetDeadline(context);
    context.AddMetadata("authorization", "Basic dXNlcjpwYXNz");
    grpc::Status status = control_->Send(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(status);
  }
  // Nothing was pushed: the next message is the echo of the client's own.
  EXPECT_TRUE(StillEchoes(client, "still mine"));

  grpc::Status right = CloseWith(kToken, *id);
  ASSERT_TRUE(right.ok()) << Describe(right);
  absl::StatusOr<int> code = client.WaitForClose(kIoTimeout);
  ASSERT_TRUE(IsOk(code));
  EXPECT_EQ(*code, 4000);
  // The token never reaches the logs.
  EXPECT_THAT(gateway_->Output(), ::testing::Not(HasSubstr(kToken)));
}

TEST_F(ControlTokenTest, TokenFromEnvironmentVariable) {
  ASSERT_NO_FATAL_FAILURE(StartGatewayWith({"--control_token.env=FNGATE_SECURITY_TEST_TOKEN"},
                                           {absl::StrCat("FNGATE_SECURITY_TEST_TOKEN=", kToken)}));
  WsTestClient client;
  absl::StatusOr<std::string> id = ConnectAndGetId(client, gateway_, worker_, "/echo");
  ASSERT_TRUE(IsOk(id));
  EXPECT_EQ(CloseWith("", *id).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(StillEchoes(client, "still open"));
  grpc::Status right = CloseWith(kToken, *id);
  ASSERT_TRUE(right.ok()) << Describe(right);
  absl::StatusOr<int> code = client.WaitForClose(kIoTimeout);
  ASSERT_TRUE(IsOk(code));
  EXPECT_EQ(*code, 4000);
}

// Each bad start-up: exit code 2 before binding anything, and a message naming the key.
struct BadStart {
  std::vector<std::string> flags;
  std::string key;
  std::string says;
};

class RefuseToStartTest : public ::testing::TestWithParam<BadStart> {};

TEST_P(RefuseToStartTest, ExitsWithTheReason) {
  std::vector<std::string> args = {"--listen=127.0.0.1:0", "--admin_listen=127.0.0.1:0",
                                   "--function=echo=127.0.0.1:1"};
  args.insert(args.end(), GetParam().flags.begin(), GetParam().flags.end());
  absl::StatusOr<std::unique_ptr<test_support::Subprocess>> gateway = RunGatewayRaw(args);
  ASSERT_TRUE(IsOk(gateway));
  absl::StatusOr<int> code = (*gateway)->Wait(kExitTimeout);
  ASSERT_TRUE(IsOk(code));
  EXPECT_EQ(*code, 2) << (*gateway)->Output();
  EXPECT_THAT((*gateway)->Stderr(), HasSubstr(GetParam().key));
  EXPECT_THAT((*gateway)->Stderr(), HasSubstr(GetParam().says));
  EXPECT_THAT((*gateway)->Stdout(), ::testing::Not(HasSubstr("READY")));
}

INSTANTIATE_TEST_SUITE_P(
    Credentials, RefuseToStartTest,
    ::testing::Values(
        // Never bound: the check runs before any port is.
        BadStart{{"--control_listen=0.0.0.0:0"}, "'control_listen'", "not a loopback address"},
        BadStart{{"--control_listen=[::]:0"}, "'control_listen'", "control_token"},
        BadStart{{"--control_listen=127.0.0.1:0", "--control_token.file=/nonexistent/token"},
                 "'control_token.file'", "cannot read the secret file '/nonexistent/token'"},
        BadStart{{"--control_listen=127.0.0.1:0",
                  "--control_token.env=FNGATE_SECURITY_TEST_UNSET_VARIABLE"},
                 "'control_token.env'", "'FNGATE_SECURITY_TEST_UNSET_VARIABLE' is not set"}));

class OriginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Started> worker = StartEchoWorker();
    ASSERT_TRUE(IsOk(worker));
    worker_ = *std::move(worker);
    absl::StatusOr<Started> gateway = StartGateway(
        {FunctionFlag("echo", {&worker_}),
         "--functions[0].allowed_origins=https://app.example.com",
         "--functions[0].allowed_origins=http://localhost:3000/"});
    ASSERT_TRUE(IsOk(gateway));
    gateway_ = *std::move(gateway);
  }

  absl::Status ConnectFrom(WsTestClient& client, const std::string& origin) {
    test_support::WsConnectOptions options;
    if (!origin.empty()) options.headers.push_back({"Origin", origin});
    return client.Connect("127.0.0.1", gateway_.ready.Port("ws"), "/echo", kIoTimeout, options);
  }

  Started worker_;
  Started gateway_;
};

TEST_F(OriginTest, OnlyListedOriginsConnect) {
  for (const std::string origin :
       {"https://evil.example", "https://app.example.com.evil.example", "http://app.example.com",
        "https://app.example.com:8443", "null", ""}) {
    WsTestClient refused;
    absl::Status status = ConnectFrom(refused, origin);
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << origin << ": " << status;
    EXPECT_EQ(refused.HandshakeStatus(), 403) << "origin '" << origin << "'";
  }
  // Scheme and host compare without case.
  for (const std::string origin : {"https://app.example.com", "HTTPS://App.Example.COM",
                                   "http://localhost:3000"}) {
    WsTestClient allowed;
    ASSERT_TRUE(IsOk(ConnectFrom(allowed, origin))) << origin;
    EXPECT_TRUE(StillEchoes(allowed, "hello from " + origin));
  }
  // The refused ones were turned away before the connect event: only the three allowed ones
  // reached the function (their events were logged before their handshakes completed).
  EXPECT_EQ(Events(worker_, "connect").size(), 3u);
}

class ForwardedForTest : public ::testing::Test {
 protected:
  void StartWithTrustedProxies(const std::string& proxies) {
    absl::StatusOr<Started> worker = StartEchoWorker();
    ASSERT_TRUE(IsOk(worker));
    worker_ = *std::move(worker);
    absl::StatusOr<Started> gateway = StartGateway(
        {FunctionFlag("echo", {&worker_}), absl::StrCat("--trusted_proxies=", proxies)});
    ASSERT_TRUE(IsOk(gateway));
    gateway_ = *std::move(gateway);
  }

  // The client address the connection's events carry (the online table holds the connect
  // event's context), for a client sending `forwarded_for` headers.
  std::string ClientAddressFor(const std::vector<std::string>& forwarded_for) {
    WsTestClient client;
    test_support::WsConnectOptions options;
    for (const std::string& value : forwarded_for) {
      options.headers.push_back({"X-Forwarded-For", value});
    }
    const int before = test_support::CountWorkerEvents(worker_->Output(), "connect");
    absl::Status connected =
        client.Connect("127.0.0.1", gateway_.ready.Port("ws"), "/echo", kIoTimeout, options);
    if (!connected.ok()) return connected.ToString();
    if (absl::Status s = WaitForEvents(worker_, "connect", "", before + 1); !s.ok()) {
      return s.ToString();
    }
    const std::string id = Events(worker_, "connect")[before].conn;
    v1::GetConnectionRequest request;
    request.set_connection_id(id);
    v1::ConnectionInfo info;
    grpc::ClientContext context;
    SetDeadline(context);
    grpc::Status status = NewControlStub(gateway_)->GetConnection(&context, request, &info);
    if (!status.ok()) return Describe(status);
    return info.connection().client_address();
  }

  Started worker_;
  Started gateway_;
};

TEST_F(ForwardedForTest, TrustedProxyNamesTheClient) {
  ASSERT_NO_FATAL_FAILURE(StartWithTrustedProxies("127.0.0.0/8"));
  // The right-most address no trusted proxy stands for; what is left of it may be forged.
  EXPECT_EQ(ClientAddressFor({"6.6.6.6, 203.0.113.9"}), "203.0.113.9");
  EXPECT_EQ(ClientAddressFor({"203.0.113.9, 127.0.0.2"}), "203.0.113.9");
  // Two headers are one list, in order; ports and brackets are dropped.
  EXPECT_EQ(ClientAddressFor({"6.6.6.6", "[2001:db8::7]:443"}), "2001:db8::7");
  // No header: the peer.
  EXPECT_THAT(ClientAddressFor({}), ::testing::StartsWith("127.0.0.1:"));
}

TEST_F(ForwardedForTest, IgnoredFromAnUntrustedPeer) {
  ASSERT_NO_FATAL_FAILURE(StartWithTrustedProxies("10.0.0.0/8"));
  EXPECT_THAT(ClientAddressFor({"203.0.113.9"}), ::testing::StartsWith("127.0.0.1:"));
}

}  // namespace
}  // namespace fngate::e2e
