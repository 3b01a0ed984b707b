// End to end: signed URLs (SPEC section 1). A URL minted by the control service's SignUrl
// connects, and the function's connect event carries the signed user id and the caller's query
// without the fngate_* parameters. Tampered, expired, unknown-key, wrong-path and unsigned URLs
// (where one is required) get HTTP 401 and never reach the worker. A gateway restarted with an
// added key accepts URLs of the old key and of the new one. Keys come from a file and from an
// environment variable, and never show up in the gateway's output.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "gateway/signed_url.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"
#include "tests/support/http_get.h"

#ifndef FNGATE_CONTEXT_LOG_WORKER_BIN
#error "FNGATE_CONTEXT_LOG_WORKER_BIN must be defined by tests/CMakeLists.txt"
#endif

namespace fngate::e2e {
namespace {

using gateway::SigningKey;
using gateway::UrlSigner;
using test_support::CountWorkerEvents;
using test_support::WsTestClient;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kOldKeyId[] = "k-old";
constexpr char kOldSecret[] = "old-e2e-secret-0123456789abcdef-0123";
constexpr char kNewKeyId[] = "k-new";
constexpr char kNewSecret[] = "new-e2e-secret-0123456789abcdef-4567";
constexpr char kNewSecretEnv[] = "FNGATE_SIGNED_URL_E2E_NEW_KEY";
constexpr uint32_t kMaxTtl = 7200;

std::string WriteFile(const std::string& name, const std::string& contents) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/fngate_signed_url_e2e_", ::getpid(), "_", name);
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

// "/echo?..." from "ws://127.0.0.1:1234/echo?...": what a client puts in its request line.
std::string TargetOf(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t slash = scheme == std::string::npos ? scheme : url.find('/', scheme + 3);
  return slash == std::string::npos ? "" : url.substr(slash);
}

// Replaces the first `from` (which must occur) in `text`.
std::string ReplaceOnce(const std::string& text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "'" << from << "' not in '" << text << "'";
  if (at == std::string::npos) return text;
  return absl::StrCat(text.substr(0, at), to, text.substr(at + from.size()));
}

struct SignUrlResult {
  grpc::Status status;
  v1::SignUrlResponse response;
};

SignUrlResult CallSignUrl(const Started& gateway, const v1::SignUrlRequest& request) {
  std::unique_ptr<v1::GatewayControl::Stub> stub = NewControlStub(gateway);
  grpc::ClientContext context;
  SetDeadline(context);
  SignUrlResult result;
  result.status = stub->SignUrl(&context, request, &result.response);
  return result;
}

v1::SignUrlRequest Request(const std::string& function, const std::string& user,
                           std::vector<std::pair<std::string, std::string>> query = {},
                           uint32_t ttl = 0) {
  v1::SignUrlRequest request;
  request.set_function(function);
  request.set_user_id(user);
  for (auto& [name, value] : query) (*request.mutable_query())[name] = value;
  request.set_ttl_seconds(ttl);
  return request;
}

class SignedUrlE2eTest : public ::testing::Test {
 protected:
  // Children inherit the environment: set once, before any test starts a gateway.
  static void SetUpTestSuite() { ::setenv(kNewSecretEnv, kNewSecret, 1); }

  // A gateway whose function `echo` requires signed URLs and `open` does not, both served by
  // `worker`. Keys: k-old from a file (with the trailing newline editors add), and k-new from
  // the environment when `with_new_key`.
  static absl::StatusOr<Started> StartSigningGateway(const Started& worker, bool with_new_key) {
    const std::string key_file = WriteFile("old.key", absl::StrCat(kOldSecret, "\n"));
    std::string config = absl::StrCat(
        "functions:\n"
        "  - name: echo\n"
        "    target: \"127.0.0.1:", worker.ready.Port("grpc"), "\"\n"
        "    require_signed_url: true\n"
        "  - name: open\n"
        "    target: \"127.0.0.1:", worker.ready.Port("grpc"), "\"\n"
        "log_level: debug\n"
        "signing:\n"
        "  max_ttl_seconds: ", kMaxTtl, "\n"
        "  keys:\n"
        "    - id: ", kOldKeyId, "\n"
        "      secret: {file: \"", key_file, "\"}\n");
    if (with_new_key) {
      absl::StrAppend(&config, "    - id: ", kNewKeyId, "\n      secret: {env: ", kNewSecretEnv,
                      "}\n");
    }
    return StartGateway(
        {absl::StrCat("--config=", WriteFile(with_new_key ? "new.yaml" : "old.yaml", config))});
  }

  void SetUp() override {
    absl::StatusOr<Started> worker = StartEchoWorker();
    ASSERT_TRUE(IsOk(worker));
    worker_ = *std::move(worker);
    absl::StatusOr<Started> gateway = StartSigningGateway(worker_, /*with_new_key=*/false);
    ASSERT_TRUE(IsOk(gateway));
    gateway_ = *std::move(gateway);
  }

  void TearDown() override {
    // Secrets are never logged, whatever happened (the gateway runs at debug level).
    EXPECT_THAT(gateway_->Output(), Not(HasSubstr(kOldSecret)));
    EXPECT_THAT(gateway_->Output(), Not(HasSubstr(kNewSecret)));
  }

  int ws_port() const { return gateway_.ready.Port("ws"); }

  // A URL minted by the gateway; fails the test if SignUrl fails.
  std::string Mint(const v1::SignUrlRequest& request) {
    SignUrlResult result = CallSignUrl(gateway_, request);
    EXPECT_TRUE(result.status.ok()) << result.status.error_message();
    return result.response.url();
  }

  // Connects to `target` and expects HTTP 401 with `reason` in the body.
  ::testing::AssertionResult Refused401(const std::string& target, const std::string& reason) {
    WsTestClient client;
    absl::Status status = client.Connect("127.0.0.1", ws_port(), target, kIoTimeout);
    if (status.code() != absl::StatusCode::kFailedPrecondition || client.HandshakeStatus() != 401 ||
        client.HandshakeBody().find(reason) == std::string::npos || client.IsOpen()) {
      return ::testing::AssertionFailure()
             << target << ": want 401 with '" << reason << "', got " << status << ", HTTP "
             << client.HandshakeStatus() << " '" << client.HandshakeBody() << "'";
    }
    return ::testing::AssertionSuccess();
  }

  // How many handshakes /metrics counts as refused with HTTP 401.
  absl::StatusOr<int> Refusals401() {
    absl::StatusOr<test_support::HttpResponse> metrics = test_support::HttpGet(
        "127.0.0.1", gateway_.ready.Port("admin"), "/metrics", kIoTimeout);
    if (!metrics.ok()) return metrics.status();
    const std::string prefix = "fngate_handshake_refusals_total{status=\"401\"} ";
    const size_t at = metrics->body.find(prefix);
    if (at == std::string::npos) return 0;
    return std::atoi(metrics->body.c_str() + at + prefix.size());
  }

  Started worker_;
  Started gateway_;
};

TEST_F(SignedUrlE2eTest, MintedUrlConnectsAndTheConnectEventCarriesTheUser) {
  // A worker that logs the user id and query each connect event carried.
  absl::StatusOr<Started> context_worker =
      StartAndWaitReady({FNGATE_CONTEXT_LOG_WORKER_BIN}, {"grpc"});
  ASSERT_TRUE(IsOk(context_worker));
  absl::StatusOr<Started> gateway = StartSigningGateway(*context_worker, false);
  ASSERT_TRUE(IsOk(gateway));

  const int64_t before = absl::ToUnixSeconds(absl::Now());
  SignUrlResult minted =
      CallSignUrl(*gateway, Request("echo", "alice", {{"room", "lobby"}, {"lang", "en"}}, 120));
  const int64_t after = absl::ToUnixSeconds(absl::Now());
  ASSERT_TRUE(minted.status.ok()) << minted.status.error_message();
  EXPECT_THAT(minted.response.url(),
              StartsWith(absl::StrCat("ws://127.0.0.1:", gateway->ready.Port("ws"), "/echo?")));
  EXPECT_EQ(minted.response.key_id(), kOldKeyId);
  EXPECT_GE(minted.response.expires_at().seconds(), before + 120);
  EXPECT_LE(minted.response.expires_at().seconds(), after + 120);

  WsTestClient client;
  ASSERT_TRUE(IsOk(client.Connect("127.0.0.1", gateway->ready.Port("ws"),
                                  TargetOf(minted.response.url()), kIoTimeout)));
  ASSERT_TRUE(IsOk(WaitForEvents(*context_worker, "connect", "", 1)));
  const test_support::WorkerEvent connect = Events(*context_worker, "connect")[0];
  EXPECT_EQ(connect.Field("user"), "alice") << connect.line;
  EXPECT_EQ(connect.Field("query"), "lang:en,room:lobby") << connect.line;  // No fngate_*.
  ASSERT_TRUE(IsOk(client.SendText("hello", kIoTimeout)));
  absl::StatusOr<test_support::WsMessage> reply = client.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(reply));
  EXPECT_EQ(reply->data, "hello");

  // Unsigned, where not required: no user.
  WsTestClient open;
  ASSERT_TRUE(IsOk(open.Connect("127.0.0.1", gateway->ready.Port("ws"), "/open?x=1", kIoTimeout)));
  ASSERT_TRUE(IsOk(WaitForEvents(*context_worker, "connect", "", 2)));
  EXPECT_EQ(Events(*context_worker, "connect")[1].Field("user"), "");
  EXPECT_EQ(Events(*context_worker, "connect")[1].Field("query"), "x:1");
  EXPECT_THAT((*gateway)->Output(), Not(HasSubstr(kOldSecret)));
}

TEST_F(SignedUrlE2eTest, MintedUrlBindsTheUserForLaterEvents) {
  // The echo worker answers "whoami" with the user id its message event carried.
  WsTestClient client;
  absl::StatusOr<std::string> id = ConnectAndGetId(
      client, gateway_, worker_, TargetOf(Mint(Request("echo", "bob", {{"room", "a b&c"}}))));
  ASSERT_TRUE(IsOk(id));
  ASSERT_TRUE(IsOk(client.SendText("whoami", kIoTimeout)));
  absl::StatusOr<test_support::WsMessage> reply = client.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(reply));
  EXPECT_EQ(reply->data, "user=bob via=");
}

TEST_F(SignedUrlE2eTest, BadUrlsGet401AndNeverReachTheFunction) {
  const std::string good = TargetOf(Mint(Request("echo", "alice", {{"room", "lobby"}})));
  const std::string no_user = TargetOf(Mint(Request("echo", "", {{"room", "lobby"}})));
  const std::string open_signed = TargetOf(Mint(Request("open", "carol", {{"room", "lobby"}})));
  ASSERT_THAT(good, StartsWith("/echo?"));
  const size_t sig_at = good.find("fngate_sig=") + std::string("fngate_sig=").size();
  std::string bad_sig = good;
  bad_sig[sig_at + 5] = bad_sig[sig_at + 5] == 'A' ? 'B' : 'A';

  // Built here with the gateway's own key, or with a key it does not have.
  UrlSigner same_key({SigningKey{kOldKeyId, kOldSecret}});
  absl::StatusOr<gateway::SignedQuery> expired = same_key.Sign(
      "echo", {{"room", "lobby"}}, "alice", absl::Now() - absl::Seconds(60));
  ASSERT_TRUE(IsOk(expired));
  UrlSigner rogue({SigningKey{"k-rogue", "rogue-e2e-secret-0123456789abcdef"}});
  absl::StatusOr<gateway::SignedQuery> unknown_key =
      rogue.Sign("echo", {{"room", "lobby"}}, "alice", absl::Now() + absl::Hours(1));
  ASSERT_TRUE(IsOk(unknown_key));

  struct Case {
    const char* what;
    std::string target;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"unsigned", "/echo?room=lobby", "requires a signed URL"},
      {"unsigned, no query", "/echo", "requires a signed URL"},
      {"tampered query", ReplaceOnce(good, "room=lobby", "room=vip"), "signature does not match"},
      {"added parameter", good + "&admin=1", "signature does not match"},
      {"tampered user", ReplaceOnce(good, "fngate_user=alice", "fngate_user=mallory"),
       "signature does not match"},
      {"injected user", no_user + "&fngate_user=mallory", "signature does not match"},
      {"tampered signature", bad_sig, "signature does not match"},
      {"expired", absl::StrCat("/echo?", expired->query), "expired"},
      {"unknown key id", absl::StrCat("/echo?", unknown_key->query), "unknown signing key"},
      {"other function", ReplaceOnce(open_signed, "/open?", "/echo?"), "signature does not match"},
      {"longer path", ReplaceOnce(good, "/echo?", "/echo/admin?"), "path"},
      {"tampered, optional function", ReplaceOnce(open_signed, "room=lobby", "room=vip"),
       "signature does not match"},
  };
  for (const Case& c : cases) EXPECT_TRUE(Refused401(c.target, c.reason)) << c.what;

  // None reached the worker: the first connect event it ever logs is the good URL's.
  WsTestClient client;
  ASSERT_TRUE(IsOk(ConnectAndGetId(client, gateway_, worker_, good)));
  EXPECT_EQ(CountWorkerEvents(worker_->Output(), "connect"), 1) << worker_->Output();
  EXPECT_EQ(CountWorkerEvents(worker_->Output(), "error"), 0) << worker_->Output();
  // Counted with the other handshake refusals.
  absl::StatusOr<int> refusals = Refusals401();
  ASSERT_TRUE(IsOk(refusals));
  EXPECT_EQ(*refusals, static_cast<int>(cases.size()));
}

TEST_F(SignedUrlE2eTest, SignUrlValidatesItsRequest) {
  struct Case {
    const char* what;
    v1::SignUrlRequest request;
    grpc::StatusCode code;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"no function", Request("", "u"), grpc::StatusCode::INVALID_ARGUMENT, "function: required"},
      {"unknown function", Request("nosuch", "u"), grpc::StatusCode::INVALID_ARGUMENT,
       "function: 'nosuch'"},
      {"ttl too long", Request("echo", "u", {}, kMaxTtl + 1), grpc::StatusCode::INVALID_ARGUMENT,
       "ttl_seconds: at most 7200"},
      {"reserved name", Request("echo", "u", {{"fngate_user", "admin"}}),
       grpc::StatusCode::INVALID_ARGUMENT, "query: parameter names starting with 'fngate_'"},
      {"empty name", Request("echo", "u", {{"", "x"}}), grpc::StatusCode::INVALID_ARGUMENT,
       "query: parameter names cannot be empty"},
      {"huge", Request("echo", std::string(9000, 'u')), grpc::StatusCode::INVALID_ARGUMENT,
       "at most 8192"},
  };
  for (const Case& c : cases) {
    SignUrlResult result = CallSignUrl(gateway_, c.request);
    EXPECT_EQ(result.status.error_code(), c.code) << c.what << ": " << result.status.error_message();
    EXPECT_THAT(result.status.error_message(), HasSubstr(c.message)) << c.what;
  }

  // ttl 0 means an hour; the longest allowed is fine.
  const int64_t before = absl::ToUnixSeconds(absl::Now());
  SignUrlResult hour = CallSignUrl(gateway_, Request("echo", "u"));
  SignUrlResult longest = CallSignUrl(gateway_, Request("echo", "u", {}, kMaxTtl));
  const int64_t after = absl::ToUnixSeconds(absl::Now());
  ASSERT_TRUE(hour.status.ok()) << hour.status.error_message();
  ASSERT_TRUE(longest.status.ok()) << longest.status.error_message();
  EXPECT_GE(hour.response.expires_at().seconds(), before + 3600);
  EXPECT_LE(hour.response.expires_at().seconds(), after + 3600);
  EXPECT_GE(longest.response.expires_at().seconds(), before + kMaxTtl);
  EXPECT_LE(longest.response.expires_at().seconds(), after + kMaxTtl);
}

TEST_F(SignedUrlE2eTest, SignUrlWithoutKeysIsFailedPrecondition) {
  absl::StatusOr<Started> keyless = StartGateway({FunctionFlag("echo", {&worker_})});
  ASSERT_TRUE(IsOk(keyless));
  SignUrlResult result = CallSignUrl(*keyless, Request("echo", "u"));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(result.status.error_message(), HasSubstr("signing.keys"));
}

TEST_F(SignedUrlE2eTest, RestartWithAnAddedKeyAcceptsOldAndNewUrls) {
  SignUrlResult old_minted = CallSignUrl(gateway_, Request("echo", "alice"));
  ASSERT_TRUE(old_minted.status.ok()) << old_minted.status.error_message();
  EXPECT_EQ(old_minted.response.key_id(), kOldKeyId);
  ASSERT_TRUE(IsOk(Stop(gateway_)));

  // Same k-old from its file, k-new from the environment; the newest signs.
  absl::StatusOr<Started> restarted = StartSigningGateway(worker_, /*with_new_key=*/true);
  ASSERT_TRUE(IsOk(restarted));
  gateway_ = *std::move(restarted);
  SignUrlResult new_minted = CallSignUrl(gateway_, Request("echo", "bob"));
  ASSERT_TRUE(new_minted.status.ok()) << new_minted.status.error_message();
  EXPECT_EQ(new_minted.response.key_id(), kNewKeyId);
  EXPECT_THAT(new_minted.response.url(), HasSubstr("fngate_kid=k-new"));

  // The port changed with the restart; the host and port are not signed, the rest is reused.
  for (const auto& [url, user] : {std::pair{old_minted.response.url(), "alice"},
                                  std::pair{new_minted.response.url(), "bob"}}) {
    WsTestClient client;
    ASSERT_TRUE(IsOk(ConnectAndGetId(client, gateway_, worker_, TargetOf(url)))) << url;
    ASSERT_TRUE(IsOk(client.SendText("whoami", kIoTimeout)));
    absl::StatusOr<test_support::WsMessage> reply = client.Read(kIoTimeout);
    ASSERT_TRUE(IsOk(reply));
    EXPECT_EQ(reply->data, absl::StrCat("user=", user, " via=")) << url;
  }
}

TEST(SignedUrlStartupE2eTest, UnreadableSecretsStopTheGatewayNamingKeyAndSource) {
  const std::string missing = absl::StrCat(::testing::TempDir(), "/fngate_e2e_no_such.key");
  const std::string config = WriteFile("broken.yaml", absl::StrCat(
      "functions: [{name: echo, target: \"127.0.0.1:1\", require_signed_url: true}]\n"
      "signing:\n"
      "  keys:\n"
      "    - {id: k-file, secret: {file: \"", missing, "\"}}\n"
      "    - {id: k-env, secret: {env: FNGATE_SIGNED_URL_E2E_UNSET}}\n"));
  absl::StatusOr<std::unique_ptr<test_support::Subprocess>> process =
      RunGatewayRaw({absl::StrCat("--config=", config), "--listen=127.0.0.1:0",
                     "--control_listen=127.0.0.1:0", "--admin_listen=127.0.0.1:0"});
  ASSERT_TRUE(IsOk(process));
  absl::StatusOr<int> code = (*process)->Wait(kExitTimeout);
  ASSERT_TRUE(IsOk(code)) << (*process)->OutputTail();
  EXPECT_EQ(*code, 2) << (*process)->Output();
  const std::string err = (*process)->Stderr();
  EXPECT_THAT(err, HasSubstr(absl::StrCat("key 'k-file': cannot read the secret file '", missing)));
  EXPECT_THAT(err, HasSubstr("key 'k-env': the environment variable "
                             "'FNGATE_SIGNED_URL_E2E_UNSET' is not set"));
  EXPECT_THAT((*process)->Stdout(), Not(HasSubstr("READY")));
}

}  // namespace
}  // namespace fngate::e2e
