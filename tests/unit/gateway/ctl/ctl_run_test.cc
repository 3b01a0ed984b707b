// fngatectl's calls against an in-process fake GatewayControl on 127.0.0.1 (real gRPC): the
// bearer token travels as metadata, list follows pages, failures print the gRPC code name and
// exit 1, usage errors exit 2 without a call, TLS and mutual TLS reach a server that requires
// them. The real gateway: tests/e2e/fngatectl_e2e_test.cc.
#include "gateway/ctl/ctl_run.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "fngate/v1/control.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/server_context.h"
#include "gtest/gtest.h"
#include "tests/support/subprocess.h"

namespace fngate::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// Answers Send with delivered = number of connection ids, the ids starting with "gone" listed
// as gone; ListConnections from a table of `rows` ids, paged by page_size with the next id as
// token (or a fixed token when `stuck_token` is set); anything else UNIMPLEMENTED. Records the
// authorization metadata of each call.
class FakeControl final : public v1::GatewayControl::Service {
 public:
  grpc::Status Send(grpc::ServerContext* context, const v1::SendRequest* request,
                    v1::SendResponse* response) override {
    Record(context);
    if (request->target().connection_ids().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "target: at least one id");
    }
    for (const std::string& id : request->target().connection_ids()) {
      if (absl::StartsWith(id, "gone")) {
        response->add_gone_connection_ids(id);
      } else {
        response->set_delivered(response->delivered() + 1);
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status ListConnections(grpc::ServerContext* context,
                               const v1::ListConnectionsRequest* request,
                               v1::ListConnectionsResponse* response) override {
    Record(context);
    int start = 0;
    if (!stuck_token && !request->page_token().empty() &&
        !absl::SimpleAtoi(request->page_token(), &start)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_token: bad");
    }
    const int size = request->page_size() == 0 ? 100 : request->page_size();
    int i = start;
    for (; i < rows && i < start + size; ++i) {
      v1::ConnectionInfo* info = response->add_connections();
      info->mutable_connection()->set_connection_id(absl::StrCat("conn-", i));
      info->mutable_connection()->set_function(request->function().empty() ? "echo"
                                                                           : request->function());
    }
    if (stuck_token) {
      response->set_next_page_token("stuck");
    } else if (i < rows) {
      response->set_next_page_token(absl::StrCat(i));
    }
    return grpc::Status::OK;
  }

  std::vector<std::string> Authorizations() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return authorizations_;
  }

  int rows = 0;
  bool stuck_token = false;

 private:
  void Record(grpc::ServerContext* context) ABSL_LOCKS_EXCLUDED(mu_) {
    auto it = context->client_metadata().find("authorization");
    absl::MutexLock lock(&mu_);
    authorizations_.push_back(it == context->client_metadata().end()
                                  ? "<none>"
                                  : std::string(it->second.data(), it->second.size()));
  }

  mutable absl::Mutex mu_;
  std::vector<std::string> authorizations_ ABSL_GUARDED_BY(mu_);
};

class CtlRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    env_.control = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  int Run(const std::vector<std::string>& args) {
    out_.str("");
    err_.str("");
    return RunFngatectl(args, env_, out_, err_);
  }

  FakeControl fake_;
  std::unique_ptr<grpc::Server> server_;
  Environment env_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CtlRunTest, SendPrintsTheSummary) {
  ASSERT_EQ(Run({"send", "--conn", "a", "--conn", "gone-1", "--conn", "b", "hi"}), kExitOk)
      << err_.str();
  EXPECT_EQ(out_.str(), "delivered 2, gone: gone-1\n");
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CtlRunTest, SendPrintsJson) {
  ASSERT_EQ(Run({"send", "--conn", "a", "-o", "json", "hi"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), R"({"delivered":1,"goneConnectionIds":[],"overflowedConnectionIds":[]})"
                        "\n");
}

TEST_F(CtlRunTest, TokenTravelsAsBearerMetadata) {
  ASSERT_EQ(Run({"send", "--conn", "a", "hi"}), kExitOk) << err_.str();
  ASSERT_EQ(Run({"send", "--conn", "a", "--token", "t0k3n", "hi"}), kExitOk) << err_.str();
  env_.token = "from-env";
  ASSERT_EQ(Run({"send", "--conn", "a", "hi"}), kExitOk) << err_.str();
  EXPECT_THAT(fake_.Authorizations(), ElementsAre("<none>", "Bearer t0k3n", "Bearer from-env"));
}

TEST_F(CtlRunTest, FailedCallPrintsCodeNameAndExitsOne) {
  // --user-id passes the CLI's checks; this fake refuses a target without ids.
  EXPECT_EQ(Run({"send", "--user-id", "u", "hi"}), kExitCallFailed);
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(err_.str(), "fngatectl: INVALID_ARGUMENT: target: at least one id\n");

  EXPECT_EQ(Run({"close", "--conn", "a"}), kExitCallFailed);
  EXPECT_EQ(err_.str(), "fngatectl: UNIMPLEMENTED\n");
}

TEST_F(CtlRunTest, UsageErrorExitsTwoWithoutACall) {
  EXPECT_EQ(Run({"send", "hi"}), kExitUsage);
  EXPECT_EQ(out_.str(), "");
  EXPECT_THAT(err_.str(), HasSubstr("fngatectl: send: no target"));
  EXPECT_THAT(err_.str(), HasSubstr("--help"));
  EXPECT_THAT(fake_.Authorizations(), IsEmpty());
}

TEST_F(CtlRunTest, HelpGoesToStdoutAndExitsZero) {
  EXPECT_EQ(Run({"list", "--help"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("usage: fngatectl list"));
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CtlRunTest, UnreachableGatewayExitsOne) {
  env_.control = "127.0.0.1:1";  // Nothing listens on port 1.
  EXPECT_EQ(Run({"get", "a", "--timeout", "5s"}), kExitCallFailed);
  EXPECT_THAT(err_.str(), HasSubstr("fngatectl: UNAVAILABLE"));
}

TEST_F(CtlRunTest, ListOnePageHintsAtTheNext) {
  fake_.rows = 5;
  ASSERT_EQ(Run({"list", "--page-size", "2"}), kExitOk) << err_.str();
  std::vector<std::string> lines = absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << out_.str();
  EXPECT_THAT(lines[0], HasSubstr("CONNECTION"));
  EXPECT_THAT(lines[1], HasSubstr("conn-0"));
  EXPECT_THAT(lines[2], HasSubstr("conn-1"));
  EXPECT_EQ(err_.str(), "fngatectl: more connections follow: --page-token=2 (or --all)\n");

  ASSERT_EQ(Run({"list", "--page-size", "2", "--page-token", "2"}), kExitOk) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("conn-3"));
}

TEST_F(CtlRunTest, ListAllFollowsEveryPage) {
  fake_.rows = 7;
  ASSERT_EQ(Run({"list", "--all", "--page-size", "3", "--function", "chat", "-o", "json"}), kExitOk)
      << err_.str();
  std::vector<std::string> lines = absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 7u) << out_.str();
  for (int i = 0; i < 7; ++i) {
    v1::ConnectionInfo info;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[i], &info).ok()) << lines[i];
    EXPECT_EQ(info.connection().connection_id(), absl::StrCat("conn-", i));
    EXPECT_EQ(info.connection().function(), "chat");
  }
  EXPECT_EQ(err_.str(), "");
  EXPECT_EQ(fake_.Authorizations().size(), 3u);  // Pages of 3, 3 and 1.
}

TEST_F(CtlRunTest, ListJsonArray) {
  fake_.rows = 3;
  ASSERT_EQ(Run({"list", "--all", "--page-size", "2", "-o", "json-array"}), kExitOk) << err_.str();
  google::protobuf::ListValue array;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out_.str(), &array).ok()) << out_.str();
  EXPECT_EQ(array.values_size(), 3);

  fake_.rows = 0;
  ASSERT_EQ(Run({"list", "-o", "json-array"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "[]\n");
}

TEST_F(CtlRunTest, ListAllStopsWhenTheGatewayRepeatsAToken) {
  fake_.rows = 2;
  fake_.stuck_token = true;
  EXPECT_EQ(Run({"list", "--all"}), kExitCallFailed);
  EXPECT_THAT(err_.str(), HasSubstr("keeps answering with more pages"));
}

// ---------------------------------------------------------------------------------------------
// TLS: a fake service that requires a client certificate, with a throw-away CA made by the
// openssl command for each test.

// Runs `openssl args...`; the result says what it printed if it did not exit 0.
::testing::AssertionResult OpenSsl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<std::unique_ptr<test_support::Subprocess>> process =
      test_support::Subprocess::Start(argv);
  if (!process.ok()) return ::testing::AssertionFailure() << process.status();
  absl::StatusOr<int> code = (*process)->Wait(absl::Seconds(30));
  if (!code.ok() || *code != 0) {
    return ::testing::AssertionFailure()
           << "openssl " << absl::StrJoin(args, " ") << ": "
           << (code.ok() ? absl::StrCat("exit ", *code) : code.status().ToString()) << "\n"
           << (*process)->Output();
  }
  return ::testing::AssertionSuccess();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

class CtlTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/ctl_tls_", ::getpid());
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(std::filesystem::create_directories(dir_)) << dir_;
    // A CA, and a server and a client certificate it signed. The server's names: gw.test only,
    // so a client must ask for that name (--tls-server-name) when it dials 127.0.0.1.
    ASSERT_TRUE(OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt",
                         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", Path("ca.key"),
                         "-out", Path("ca.pem"), "-days", "2", "-subj", "/CN=fngate test CA"}));
    std::ofstream(Path("server.ext")) << "subjectAltName=DNS:gw.test\n";
    std::ofstream(Path("client.ext")) << "extendedKeyUsage=clientAuth\n";
    for (const std::string name : {"server", "client"}) {
      ASSERT_TRUE(OpenSsl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                           "-nodes", "-keyout", Path(name + ".key"), "-out", Path(name + ".csr"),
                           "-subj", "/CN=" + name}));
      ASSERT_TRUE(OpenSsl({"x509", "-req", "-in", Path(name + ".csr"), "-CA", Path("ca.pem"),
                           "-CAkey", Path("ca.key"), "-CAcreateserial", "-days", "2", "-extfile",
                           Path(name + ".ext"), "-out", Path(name + ".pem")}));
    }

    grpc::SslServerCredentialsOptions options(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = ReadAll(Path("ca.pem"));
    options.pem_key_cert_pairs.push_back(
        {ReadAll(Path("server.key")), ReadAll(Path("server.pem"))});
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(options), &port);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string Path(const std::string& name) const { return absl::StrCat(dir_, "/", name); }

  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    for (std::string flag : {"--control=" + address_, std::string("--timeout=10s")}) {
      args.insert(args.begin(), flag);
    }
    return RunFngatectl(args, Environment{}, out_, err_);
  }

  FakeControl fake_;
  std::unique_ptr<grpc::Server> server_;
  std::string dir_;
  std::string address_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CtlTlsTest, MutualTlsWithTheRightNameWorks) {
  ASSERT_EQ(Run({"--tls-ca", Path("ca.pem"), "--tls-cert", Path("client.pem"), "--tls-key",
                 Path("client.key"), "--tls-server-name", "gw.test", "--token", "t", "send",
                 "--conn", "a", "over tls"}),
            kExitOk)
      << err_.str();
  EXPECT_EQ(out_.str(), "delivered 1\n");
  EXPECT_THAT(fake_.Authorizations(), ElementsAre("Bearer t"));
}

TEST_F(CtlTlsTest, WithoutAClientCertificateTheCallFails) {
  EXPECT_EQ(
      Run({"--tls-ca", Path("ca.pem"), "--tls-server-name", "gw.test", "send", "--conn", "a", "x"}),
      kExitCallFailed);
  // With TLS 1.3 the server's refusal may reach the client after it sent the call; what
  // matters is that the call failed and the service never ran it.
  EXPECT_THAT(err_.str(), StartsWith("fngatectl: "));
  EXPECT_THAT(fake_.Authorizations(), IsEmpty());
}

TEST_F(CtlTlsTest, AServerWithAnotherNameIsRefused) {
  EXPECT_EQ(
      Run({"--tls-ca", Path("ca.pem"), "--tls-cert", Path("client.pem"), "--tls-key",
           Path("client.key"), "--tls-server-name", "other.test", "send", "--conn", "a", "x"}),
      kExitCallFailed);
  EXPECT_THAT(err_.str(), HasSubstr("fngatectl: UNAVAILABLE"));
  EXPECT_THAT(fake_.Authorizations(), IsEmpty());
}

TEST_F(CtlTlsTest, PlaintextToATlsPortFails) {
  EXPECT_EQ(Run({"send", "--conn", "a", "x"}), kExitCallFailed);
  EXPECT_THAT(err_.str(), HasSubstr("fngatectl: UNAVAILABLE"));
  EXPECT_THAT(fake_.Authorizations(), IsEmpty());
}

}  // namespace
}  // namespace fngate::ctl
