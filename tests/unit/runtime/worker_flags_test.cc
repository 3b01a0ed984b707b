// The worker's TLS and credential flags (worker.h): values land in WorkerOptions, pairs that
// go together are checked, the token comes from a flag, a file or FNGATE_TOKEN.
#include <cstdlib>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "fngate/runtime/worker.h"
#include "tests/support/temp_dir.h"

namespace fngate::runtime {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<WorkerOptions> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "worker");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  return ParseWorkerFlags(static_cast<int>(argv.size()), argv.data());
}

// FNGATE_TOKEN is read by the parser; each test starts without it. No other threads here.
class WorkerFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override { unsetenv("FNGATE_TOKEN"); }
  void TearDown() override { unsetenv("FNGATE_TOKEN"); }
};

TEST_F(WorkerFlagsTest, TlsAndGatewayCredentials) {
  absl::StatusOr<WorkerOptions> o =
      Parse({"--tls_cert=s.pem", "--tls_key", "s.key", "--tls_client_ca=ca.pem",
             "--gateway_tls_ca=gca.pem", "--gateway_tls_cert=c.pem", "--gateway_tls_key=c.key",
             "--gateway_tls_server_name=gw.internal", "--gateway_token=t0ken"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->tls_cert_file, "s.pem");
  EXPECT_EQ(o->tls_key_file, "s.key");
  EXPECT_EQ(o->tls_client_ca_file, "ca.pem");
  EXPECT_EQ(o->gateway_credentials.tls_ca_file, "gca.pem");
  EXPECT_EQ(o->gateway_credentials.tls_cert_file, "c.pem");
  EXPECT_EQ(o->gateway_credentials.tls_key_file, "c.key");
  EXPECT_EQ(o->gateway_credentials.tls_server_name, "gw.internal");
  EXPECT_EQ(o->gateway_credentials.token, "t0ken");
}

TEST_F(WorkerFlagsTest, TokenFromEnvironmentThenFlagOrFile) {
  ASSERT_EQ(setenv("FNGATE_TOKEN", "from-env", 1), 0);
  absl::StatusOr<WorkerOptions> env = Parse({});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->gateway_credentials.token, "from-env");
  absl::StatusOr<WorkerOptions> flag = Parse({"--gateway_token=from-flag"});
  ASSERT_TRUE(flag.ok()) << flag.status();
  EXPECT_EQ(flag->gateway_credentials.token, "from-flag");

  absl::StatusOr<test_support::TempDir> dir = test_support::TempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status();
  ASSERT_TRUE(dir->WriteFile("token", "from-file\n").ok());
  absl::StatusOr<WorkerOptions> file =
      Parse({absl::StrCat("--gateway_token_file=", dir->Path("token"))});
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->gateway_credentials.token, "from-file");
}

TEST_F(WorkerFlagsTest, BadCombinationsNameTheFlags) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {{"--tls_cert=s.pem"}, "--tls_cert and --tls_key go together"},
           {{"--tls_key=s.key"}, "--tls_cert and --tls_key go together"},
           {{"--tls_client_ca=ca.pem"}, "--tls_client_ca needs --tls_cert"},
           {{"--gateway_tls_cert=c.pem"}, "--gateway_tls_cert and --gateway_tls_key"},
           {{"--gateway_token=a", "--gateway_token=b"}, "give the token once"},
           {{"--gateway_token_file=/nonexistent/token"}, "cannot read '/nonexistent/token'"},
           {{"--tls_cert"}, "--tls_cert needs a value"},
       }) {
    absl::StatusOr<WorkerOptions> o = Parse(c.args);
    ASSERT_FALSE(o.ok()) << c.says;
    EXPECT_THAT(o.status().message(), HasSubstr(c.says));
  }
}

TEST_F(WorkerFlagsTest, UnreadableTlsFilesStopTheWorker) {
  absl::StatusOr<WorkerOptions> o =
      Parse({"--listen=127.0.0.1:0", "--tls_cert=/nonexistent/s.pem", "--tls_key=/nonexistent/k"});
  ASSERT_TRUE(o.ok()) << o.status();
  struct Nothing : Function {} function;
  absl::StatusOr<std::unique_ptr<Worker>> worker = Worker::Start(function, *o);
  ASSERT_FALSE(worker.ok());
  EXPECT_EQ(worker.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(worker.status().message(), HasSubstr("--tls_cert: cannot read '/nonexistent/s.pem'"));
}

}  // namespace
}  // namespace fngate::runtime
