// End to end: TLS on the gRPC legs, with certificates made for each test (tests/support/
// test_certs.h).
//   - Control service over TLS, and over mutual TLS: a client without a certificate, or with
//     one another CA signed, is refused; a plaintext client too.
//   - The runtime's GatewayClient with TLS, mutual TLS and a token, in process and from a
//     worker (echo's "push" goes through ctx.Gateway() with the worker's --gateway_* flags).
//   - Gateway -> worker over TLS and mutual TLS: echo works. A worker whose certificate another
//     CA signed cannot be called: the connect event fails as "no worker" (HTTP 503) and the
//     worker never sees it.
//   - wss:// for clients: echo end to end over TLS; after the certificate files are replaced
//     and SIGHUP, a new connection sees the new certificate while an old one keeps working; a
//     bad new file keeps the old certificate and the log says why. Mutual TLS for clients.
#include <signal.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fngate/runtime/gateway_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_certs.h"

namespace fngate::e2e {
namespace {

using test_support::CertPem;
using test_support::CertUse;
using test_support::TempDir;
using test_support::TestCa;
using test_support::WsMessage;
using test_support::WsTestClient;
using ::testing::HasSubstr;

constexpr char kToken[] = "tls-test-control-token-0123456789";

std::string Describe(const grpc::Status& status) {
  return absl::StrCat("grpc code ", status.error_code(), ": ", status.error_message());
}

class TlsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TempDir> dir = TempDir::Create();
    ASSERT_TRUE(IsOk(dir));
    dir_ = std::make_unique<TempDir>(*std::move(dir));
    absl::StatusOr<TestCa> ca = TestCa::Create("fngate test CA");
    ASSERT_TRUE(IsOk(ca));
    ca_ = std::make_unique<TestCa>(*std::move(ca));
    absl::StatusOr<TestCa> other = TestCa::Create("another CA");
    ASSERT_TRUE(IsOk(other));
    pem_["ca"] = ca_->cert_pem();
    pem_["other-ca"] = other->cert_pem();
    ASSERT_TRUE(IsOk(dir_->WriteFile("ca.pem", ca_->cert_pem())));
    ASSERT_TRUE(IsOk(dir_->WriteFile("other-ca.pem", other->cert_pem())));
    ASSERT_NO_FATAL_FAILURE(Issue(*ca_, "server", CertUse::kServer));
    ASSERT_NO_FATAL_FAILURE(Issue(*ca_, "client", CertUse::kClient));
    ASSERT_NO_FATAL_FAILURE(Issue(*other, "other-server", CertUse::kServer));
    ASSERT_NO_FATAL_FAILURE(Issue(*other, "other-client", CertUse::kClient));
    ASSERT_TRUE(IsOk(dir_->WriteFile("token", kToken)));
  }

  // Writes <stem>.pem and <stem>.key.
  void Issue(const TestCa& ca, const std::string& stem, CertUse use) {
    absl::StatusOr<CertPem> cert = ca.Issue(stem, use);
    ASSERT_TRUE(IsOk(cert));
    pem_[stem] = cert->cert;
    key_[stem] = cert->key;
    ASSERT_TRUE(IsOk(dir_->WriteFile(stem + ".pem", cert->cert)));
    ASSERT_TRUE(IsOk(dir_->WriteFile(stem + ".key", cert->key)));
  }

  std::string File(const std::string& name) const { return dir_->Path(name); }
  std::string Pem(const std::string& name) const { return pem_.at(name); }

  // Control TLS flags: server.pem/key, and with `mutual` the test CA for client certificates.
  std::vector<std::string> ControlTlsFlags(bool mutual) const {
    std::vector<std::string> flags = {absl::StrCat("--control_tls.cert_file=", File("server.pem")),
                                      absl::StrCat("--control_tls.key_file=", File("server.key"))};
    if (mutual) flags.push_back(absl::StrCat("--control_tls.client_ca_file=", File("ca.pem")));
    return flags;
  }

  std::shared_ptr<grpc::ChannelCredentials> ClientCredentials(const std::string& client_stem) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = Pem("ca");
    if (!client_stem.empty()) {
      options.pem_cert_chain = Pem(client_stem);
      options.pem_private_key = key_.at(client_stem);
    }
    return grpc::SslCredentials(options);
  }

  // GetConnection of an id the gateway does not hold: NOT_FOUND means the call got through.
  static grpc::Status Probe(v1::GatewayControl::Stub& stub, const std::string& token = "") {
    v1::GetConnectionRequest request;
    request.set_connection_id("no-such-connection");
    v1::ConnectionInfo info;
    grpc::ClientContext context;
    SetDeadline(context);
    if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    return stub.GetConnection(&context, request, &info);
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<TestCa> ca_;
  std::map<std::string, std::string> pem_;  // Certificates by stem, and the CAs.
  std::map<std::string, std::string> key_;
};

TEST_F(TlsE2eTest, ControlServiceOverTls) {
  std::vector<std::string> flags = ControlTlsFlags(/*mutual=*/false);
  flags.push_back("--function=echo=127.0.0.1:1");
  absl::StatusOr<Started> tls_gateway = StartGateway(flags);
  ASSERT_TRUE(IsOk(tls_gateway));
  grpc::Status over_tls = Probe(*NewControlStub(*tls_gateway, ClientCredentials("")));
  EXPECT_EQ(over_tls.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(over_tls);
  grpc::Status plaintext = Probe(*NewControlStub(*tls_gateway));
  EXPECT_EQ(plaintext.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(plaintext);
  grpc::SslCredentialsOptions other_roots;
  other_roots.pem_root_certs = Pem("other-ca");
  grpc::Status untrusted = Probe(*NewControlStub(*tls_gateway, grpc::SslCredentials(other_roots)));
  EXPECT_EQ(untrusted.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(untrusted);
}

TEST_F(TlsE2eTest, ControlServiceOverMutualTlsRefusesClientsWithoutACertificate) {
  std::vector<std::string> flags = ControlTlsFlags(/*mutual=*/true);
  flags.push_back("--function=echo=127.0.0.1:1");
  absl::StatusOr<Started> gateway = StartGateway(flags);
  ASSERT_TRUE(IsOk(gateway));

  grpc::Status with_cert = Probe(*NewControlStub(*gateway, ClientCredentials("client")));
  EXPECT_EQ(with_cert.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(with_cert);
  grpc::Status without_cert = Probe(*NewControlStub(*gateway, ClientCredentials("")));
  EXPECT_EQ(without_cert.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(without_cert);
  grpc::Status other_cert = Probe(*NewControlStub(*gateway, ClientCredentials("other-client")));
  EXPECT_EQ(other_cert.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(other_cert);
}

// Mutual TLS and a token, both asked for: the runtime's client brings both.
TEST_F(TlsE2eTest, RuntimeGatewayClientBringsTlsAndToken) {
  std::vector<std::string> flags = ControlTlsFlags(/*mutual=*/true);
  flags.push_back(absl::StrCat("--control_token.file=", File("token")));
  absl::StatusOr<Started> worker = StartEchoWorker(
      "echo", {absl::StrCat("--gateway_tls_ca=", File("ca.pem")),
               absl::StrCat("--gateway_tls_cert=", File("client.pem")),
               absl::StrCat("--gateway_tls_key=", File("client.key"))});
  ASSERT_TRUE(IsOk(worker));
  flags.push_back(FunctionFlag("echo", {&*worker}));
  absl::StatusOr<Started> gateway = StartGateway(flags);
  ASSERT_TRUE(IsOk(gateway));

  runtime::GatewayClientOptions options;
  options.credentials.tls_ca_file = File("ca.pem");
  options.credentials.tls_cert_file = File("client.pem");
  options.credentials.tls_key_file = File("client.key");
  const std::string address = absl::StrCat("127.0.0.1:", gateway->ready.Port("control"));
  absl::StatusOr<std::unique_ptr<runtime::GatewayClient>> no_token =
      runtime::GatewayClient::Create(address, options);
  ASSERT_TRUE(IsOk(no_token));
  absl::StatusOr<v1::ConnectionInfo> refused = (*no_token)->GetConnection("nope");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated) << refused.status();

  options.credentials.token = kToken;
  absl::StatusOr<std::unique_ptr<runtime::GatewayClient>> client =
      runtime::GatewayClient::Create(address, options);
  ASSERT_TRUE(IsOk(client));
  absl::StatusOr<v1::ConnectionInfo> missing = (*client)->GetConnection("nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();

  WsTestClient ws;
  absl::StatusOr<std::string> id = ConnectAndGetId(ws, *gateway, *worker, "/echo");
  ASSERT_TRUE(IsOk(id));
  absl::StatusOr<runtime::SendResult> sent =
      (*client)->Send(runtime::To::Connection(*id), runtime::Payload::Text("from a client"));
  ASSERT_TRUE(IsOk(sent));
  EXPECT_EQ(sent->delivered, 1);
  absl::StatusOr<WsMessage> got = ws.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(got->data, "from a client");

  // The worker has TLS files but no token: its push is refused, and it says so.
  ASSERT_TRUE(IsOk(ws.SendText("push", kIoTimeout)));
  absl::StatusOr<WsMessage> reply = ws.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(reply));
  EXPECT_THAT(reply->data, HasSubstr("push: UNAUTHENTICATED"));
  EXPECT_THAT((*gateway)->Output(), ::testing::Not(HasSubstr(kToken)));
}

TEST_F(TlsE2eTest, WorkerPushesOverMutualTlsWithTokenFromEnvironment) {
  std::vector<std::string> flags = ControlTlsFlags(/*mutual=*/true);
  flags.push_back(absl::StrCat("--control_token.file=", File("token")));
  absl::StatusOr<Started> worker = StartWorker(
      EchoFunctionBinary(), "echo",
      {absl::StrCat("--gateway_tls_ca=", File("ca.pem")),
       absl::StrCat("--gateway_tls_cert=", File("client.pem")),
       absl::StrCat("--gateway_tls_key=", File("client.key"))},
      {absl::StrCat("FNGATE_TOKEN=", kToken)});
  ASSERT_TRUE(IsOk(worker));
  flags.push_back(FunctionFlag("echo", {&*worker}));
  absl::StatusOr<Started> gateway = StartGateway(flags);
  ASSERT_TRUE(IsOk(gateway));

  WsTestClient ws;
  ASSERT_TRUE(IsOk(ConnectAndGetId(ws, *gateway, *worker, "/echo")));
  ASSERT_TRUE(IsOk(ws.SendText("push", kIoTimeout)));
  // The push went through the control service while the message event was in flight, so it
  // is queued before the event's reply.
  absl::StatusOr<WsMessage> pushed = ws.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(pushed));
  EXPECT_EQ(pushed->data, "pushed");
  absl::StatusOr<WsMessage> reply = ws.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(reply));
  EXPECT_EQ(reply->data, "push: OK");
}

TEST_F(TlsE2eTest, GatewayCallsWorkersOverTls) {
  absl::StatusOr<Started> worker = StartEchoWorker(
      "echo", {absl::StrCat("--tls_cert=", File("server.pem")),
               absl::StrCat("--tls_key=", File("server.key"))});
  ASSERT_TRUE(IsOk(worker));
  absl::StatusOr<Started> gateway =
      StartGateway({FunctionFlag("echo", {&*worker}),
                    absl::StrCat("--worker_tls.ca_file=", File("ca.pem")),
                    "--worker_tls.server_name=localhost"});
  ASSERT_TRUE(IsOk(gateway));
  WsTestClient ws;
  ASSERT_TRUE(IsOk(ConnectAndGetId(ws, *gateway, *worker, "/echo")));
  ASSERT_TRUE(IsOk(ws.SendText("over tls", kIoTimeout)));
  absl::StatusOr<WsMessage> reply = ws.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(reply));
  EXPECT_EQ(reply->data, "over tls");
}

TEST_F(TlsE2eTest, GatewayCallsWorkersOverMutualTls) {
  absl::StatusOr<Started> worker = StartEchoWorker(
      "echo", {absl::StrCat("--tls_cert=", File("server.pem")),
               absl::StrCat("--tls_key=", File("server.key")),
               absl::StrCat("--tls_client_ca=", File("ca.pem"))});
  ASSERT_TRUE(IsOk(worker));
  absl::StatusOr<Started> gateway =
      StartGateway({FunctionFlag("echo", {&*worker}),
                    absl::StrCat("--worker_tls.ca_file=", File("ca.pem")),
                    absl::StrCat("--worker_tls.cert_file=", File("client.pem")),
                    absl::StrCat("--worker_tls.key_file=", File("client.key"))});
  ASSERT_TRUE(IsOk(gateway));
  WsTestClient ws;
  ASSERT_TRUE(IsOk(ConnectAndGetId(ws, *gateway, *worker, "/echo")));
  ASSERT_TRUE(IsOk(ws.SendText("over mutual tls", kIoTimeout)));
  absl::StatusOr<WsMessage> reply = ws.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(reply));
  EXPECT_EQ(reply->data, "over mutual tls");

  // A gateway without a client certificate is not let in: no worker for it.
  absl::StatusOr<Started> anonymous = StartGateway(
      {FunctionFlag("echo", {&*worker}), absl::StrCat("--worker_tls.ca_file=", File("ca.pem"))});
  ASSERT_TRUE(IsOk(anonymous));
  WsTestClient refused;
  absl::Status status =
      refused.Connect("127.0.0.1", anonymous->ready.Port("ws"), "/echo", kEventTimeout);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_EQ(refused.HandshakeStatus(), 503) << refused.HandshakeBody();
  EXPECT_EQ(Events(*worker, "connect").size(), 1u);  // Only the first gateway's client.
}

TEST_F(TlsE2eTest, WorkerWithACertificateFromAnotherCaGetsNoEvents) {
  absl::StatusOr<Started> worker = StartEchoWorker(
      "echo", {absl::StrCat("--tls_cert=", File("other-server.pem")),
               absl::StrCat("--tls_key=", File("other-server.key"))});
  ASSERT_TRUE(IsOk(worker));
  absl::StatusOr<Started> gateway = StartGateway(
      {FunctionFlag("echo", {&*worker}), absl::StrCat("--worker_tls.ca_file=", File("ca.pem"))});
  ASSERT_TRUE(IsOk(gateway));
  WsTestClient ws;
  absl::Status status = ws.Connect("127.0.0.1", gateway->ready.Port("ws"), "/echo", kEventTimeout);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  // The connect event found no worker it could trust: 503, the "no worker" answer.
  EXPECT_EQ(ws.HandshakeStatus(), 503) << ws.HandshakeBody();
  EXPECT_TRUE(Events(*worker, "connect").empty());
}

TEST_F(TlsE2eTest, BadTlsFilesStopTheStartNamingTheKey) {
  ASSERT_TRUE(IsOk(dir_->WriteFile("garbage.pem", "not a certificate\n")));
  struct Case {
    std::vector<std::string> flags;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{absl::StrCat("--control_tls.cert_file=", File("server.pem"))},
       "'control_tls.key_file': required with cert_file"},
      {{absl::StrCat("--control_tls.cert_file=", File("garbage.pem")),
        absl::StrCat("--control_tls.key_file=", File("server.key"))},
       "'control_tls.cert_file'"},
      {{absl::StrCat("--control_tls.cert_file=", File("server.pem")),
        absl::StrCat("--control_tls.key_file=", File("client.key"))},
       "not the key of the certificate"},
      {{absl::StrCat("--worker_tls.ca_file=", File("missing.pem"))},
       "'worker_tls.ca_file': cannot read"},
      {{absl::StrCat("--worker_tls.cert_file=", File("client.pem"))},
       "'worker_tls.key_file': required with cert_file"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"--listen=127.0.0.1:0", "--control_listen=127.0.0.1:0",
                                     "--admin_listen=127.0.0.1:0", "--function=echo=127.0.0.1:1"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    absl::StatusOr<std::unique_ptr<test_support::Subprocess>> gateway = RunGatewayRaw(args);
    ASSERT_TRUE(IsOk(gateway));
    absl::StatusOr<int> code = (*gateway)->Wait(kExitTimeout);
    ASSERT_TRUE(IsOk(code));
    EXPECT_EQ(*code, 2) << c.says;
    EXPECT_THAT((*gateway)->Stderr(), HasSubstr(c.says));
  }
}

// Occurrences of `needle` in `text`.
int Count(absl::string_view text, absl::string_view needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != absl::string_view::npos;
       at = text.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

class WssE2eTest : public TlsE2eTest {
 protected:
  // The gateway's wss:// certificate files, with a certificate whose CN is `name`.
  void WriteWssCertificate(const std::string& name) {
    absl::StatusOr<CertPem> cert = ca_->Issue(name, CertUse::kServer);
    ASSERT_TRUE(IsOk(cert));
    ASSERT_TRUE(IsOk(dir_->WriteFile("wss.key", cert->key)));
    ASSERT_TRUE(IsOk(dir_->WriteFile("wss.pem", cert->cert)));
  }

  void StartWssGateway(const std::vector<std::string>& more_flags = {}) {
    absl::StatusOr<Started> worker = StartEchoWorker();
    ASSERT_TRUE(IsOk(worker));
    worker_ = *std::move(worker);
    std::vector<std::string> flags = {FunctionFlag("echo", {&worker_}),
                                      absl::StrCat("--tls.cert_file=", File("wss.pem")),
                                      absl::StrCat("--tls.key_file=", File("wss.key"))};
    flags.insert(flags.end(), more_flags.begin(), more_flags.end());
    absl::StatusOr<Started> gateway = StartGateway(flags);
    ASSERT_TRUE(IsOk(gateway));
    gateway_ = *std::move(gateway);
  }

  absl::Status ConnectWss(WsTestClient& client, const std::string& cert_stem = "") {
    test_support::WsConnectOptions options;
    options.tls_ca_file = File("ca.pem");
    if (!cert_stem.empty()) {
      options.tls_cert_file = File(cert_stem + ".pem");
      options.tls_key_file = File(cert_stem + ".key");
    }
    return client.Connect("127.0.0.1", gateway_.ready.Port("ws"), "/echo", kIoTimeout, options);
  }

  static ::testing::AssertionResult Echoes(WsTestClient& client, const std::string& text) {
    if (absl::Status s = client.SendText(text, kIoTimeout); !s.ok()) {
      return ::testing::AssertionFailure() << "send: " << s;
    }
    absl::StatusOr<WsMessage> reply = client.Read(kIoTimeout);
    if (!reply.ok()) return ::testing::AssertionFailure() << "read: " << reply.status();
    if (reply->data != text) return ::testing::AssertionFailure() << "got '" << reply->data << "'";
    return ::testing::AssertionSuccess();
  }

  // Sends SIGHUP and waits for the gateway's `count`-th log line containing `line`.
  absl::Status Reload(absl::string_view line) {
    const int want = Count(gateway_->Output(), line) + 1;
    if (absl::Status s = gateway_->Signal(SIGHUP); !s.ok()) return s;
    const std::string copy(line);
    return gateway_->WaitForOutput(
        [&](absl::string_view output) { return Count(output, copy) >= want; }, kIoTimeout);
  }

  Started worker_;
  Started gateway_;
};

TEST_F(WssE2eTest, EchoOverTlsAndCertificateReloadOnSighup) {
  ASSERT_NO_FATAL_FAILURE(WriteWssCertificate("wss-1"));
  ASSERT_NO_FATAL_FAILURE(StartWssGateway());

  WsTestClient old_client;
  ASSERT_TRUE(IsOk(ConnectWss(old_client)));
  EXPECT_EQ(test_support::CommonNameOf(old_client.PeerCertificatePem()), "wss-1");
  EXPECT_TRUE(Echoes(old_client, "over wss"));
  ASSERT_TRUE(IsOk(old_client.SendBinary(std::string("\x00\xff", 2), kIoTimeout)));
  absl::StatusOr<WsMessage> binary = old_client.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(binary));
  EXPECT_TRUE(binary->is_binary);

  // A plaintext client gets no WebSocket from a wss:// port.
  WsTestClient plain;
  EXPECT_FALSE(plain.Connect("127.0.0.1", gateway_.ready.Port("ws"), "/echo", kIoTimeout).ok());

  ASSERT_NO_FATAL_FAILURE(WriteWssCertificate("wss-2"));
  ASSERT_TRUE(IsOk(Reload("tls reloaded")));
  WsTestClient new_client;
  ASSERT_TRUE(IsOk(ConnectWss(new_client)));
  EXPECT_EQ(test_support::CommonNameOf(new_client.PeerCertificatePem()), "wss-2");
  EXPECT_TRUE(Echoes(new_client, "new certificate"));
  EXPECT_TRUE(Echoes(old_client, "old connection, old certificate"));

  // A broken certificate file: the gateway keeps serving the last good one, and says why.
  ASSERT_TRUE(IsOk(dir_->WriteFile("wss.pem", "-----BEGIN CERTIFICATE-----\ngarbage\n")));
  ASSERT_TRUE(IsOk(Reload("tls not reloaded")));
  EXPECT_THAT(gateway_->Output(), HasSubstr("tls.cert_file: '" + File("wss.pem") + "'"));
  WsTestClient after_bad;
  ASSERT_TRUE(IsOk(ConnectWss(after_bad)));
  EXPECT_EQ(test_support::CommonNameOf(after_bad.PeerCertificatePem()), "wss-2");
  EXPECT_TRUE(Echoes(after_bad, "still wss-2"));
  EXPECT_TRUE(Echoes(old_client, "still open"));

  // A clean close handshake over TLS, and the disconnect event.
  ASSERT_TRUE(IsOk(old_client.Close(1000, kIoTimeout)));
  ASSERT_TRUE(IsOk(WaitForEvents(worker_, "disconnect", "", 1)));
  EXPECT_THAT(Events(worker_, "disconnect")[0].line, HasSubstr("by=CLIENT"));
  ASSERT_TRUE(IsOk(Stop(gateway_)));
}

TEST_F(WssE2eTest, MutualTlsForClients) {
  ASSERT_NO_FATAL_FAILURE(WriteWssCertificate("wss-mtls"));
  ASSERT_NO_FATAL_FAILURE(
      StartWssGateway({absl::StrCat("--tls.client_ca_file=", File("ca.pem"))}));
  WsTestClient with_cert;
  ASSERT_TRUE(IsOk(ConnectWss(with_cert, "client")));
  EXPECT_TRUE(Echoes(with_cert, "with a client certificate"));
  WsTestClient without_cert;
  EXPECT_FALSE(ConnectWss(without_cert).ok());
  WsTestClient other_cert;
  EXPECT_FALSE(ConnectWss(other_cert, "other-client").ok());
  EXPECT_EQ(Events(worker_, "connect").size(), 1u);
}

}  // namespace
}  // namespace fngate::e2e
