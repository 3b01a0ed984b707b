// Config of the security keys: control credentials (and, below, TLS and trusted proxies). Each
// bad value is refused naming its key.
#include <cstdlib>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "gateway/config.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_certs.h"

namespace fngate::gateway {
namespace {

using ::testing::HasSubstr;
using test_support::TempDir;

absl::StatusOr<GatewaySettings> FromText(const std::string& text) {
  config::v1::GatewayConfig config;
  ConfigOrigins origins;
  const std::string all = absl::StrCat("functions: [{name: echo, target: '127.0.0.1:7001'}]\n",
                                       text);
  if (absl::Status s = MergeConfigText(all, "gw.yaml", config, origins); !s.ok()) return s;
  return ToSettings(config, origins);
}

class SecurityConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TempDir> dir = TempDir::Create();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<TempDir>(*std::move(dir));
  }
  std::unique_ptr<TempDir> dir_;
};

TEST_F(SecurityConfigTest, TokenFromFileLosesItsTrailingNewline) {
  ASSERT_TRUE(dir_->WriteFile("token", "0123456789abcdef-token\n").ok());
  absl::StatusOr<GatewaySettings> s =
      FromText(absl::StrCat("control_token: {file: '", dir_->Path("token"), "'}\n"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->control_token, "0123456789abcdef-token");
}

TEST_F(SecurityConfigTest, TokenFromEnvironment) {
  ASSERT_EQ(setenv("FNGATE_CONFIG_TEST_TOKEN", "from-the-environment-0123", 1), 0);
  absl::StatusOr<GatewaySettings> s = FromText("control_token: {env: FNGATE_CONFIG_TEST_TOKEN}\n");
  unsetenv("FNGATE_CONFIG_TEST_TOKEN");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->control_token, "from-the-environment-0123");
}

TEST_F(SecurityConfigTest, BadTokensNameTheKeyNotTheValue) {
  ASSERT_TRUE(dir_->WriteFile("short", "short-secret\n").ok());
  absl::StatusOr<GatewaySettings> short_token =
      FromText(absl::StrCat("control_token: {file: '", dir_->Path("short"), "'}\n"));
  ASSERT_FALSE(short_token.ok());
  EXPECT_THAT(short_token.status().message(), HasSubstr("gw.yaml:2: key 'control_token.file'"));
  EXPECT_THAT(short_token.status().message(), HasSubstr("at least 16 bytes"));
  EXPECT_THAT(short_token.status().message(), ::testing::Not(HasSubstr("short-secret")));

  absl::StatusOr<GatewaySettings> both = FromText("control_token: {file: /x, env: Y}\n");
  ASSERT_FALSE(both.ok());
  EXPECT_THAT(both.status().message(), HasSubstr("either file or env"));

  ASSERT_TRUE(dir_->WriteFile("empty", "\n").ok());
  absl::StatusOr<GatewaySettings> empty =
      FromText(absl::StrCat("control_token: {file: '", dir_->Path("empty"), "'}\n"));
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("is empty"));
}

TEST_F(SecurityConfigTest, ControlBeyondLoopbackNeedsCredentials) {
  for (const char* host : {"127.0.0.1", "127.1.2.3", "[::1]", "localhost"}) {
    absl::StatusOr<GatewaySettings> s = FromText(absl::StrCat("control_listen: '", host, ":1'\n"));
    EXPECT_TRUE(s.ok()) << host << ": " << s.status();
  }
  for (const char* host : {"0.0.0.0", "[::]", "10.1.2.3", "ctl.example.com"}) {
    absl::StatusOr<GatewaySettings> s = FromText(absl::StrCat("control_listen: '", host, ":1'\n"));
    ASSERT_FALSE(s.ok()) << host;
    EXPECT_THAT(s.status().message(), HasSubstr("key 'control_listen'"));
    EXPECT_THAT(s.status().message(), HasSubstr("not a loopback address"));
  }
  ASSERT_TRUE(dir_->WriteFile("token", "0123456789abcdef-token").ok());
  absl::StatusOr<GatewaySettings> with_token = FromText(absl::StrCat(
      "control_listen: '0.0.0.0:1'\ncontrol_token: {file: '", dir_->Path("token"), "'}\n"));
  EXPECT_TRUE(with_token.ok()) << with_token.status();
}

TEST_F(SecurityConfigTest, MutualTlsIsEnoughBeyondLoopback) {
  absl::StatusOr<test_support::TestCa> ca = test_support::TestCa::Create("config test CA");
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<test_support::CertPem> server = ca->Issue("server", test_support::CertUse::kServer);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(dir_->WriteFile("ca.pem", ca->cert_pem()).ok());
  ASSERT_TRUE(dir_->WriteFile("server.pem", server->cert).ok());
  ASSERT_TRUE(dir_->WriteFile("server.key", server->key).ok());
  const std::string tls = absl::StrCat("control_tls: {cert_file: '", dir_->Path("server.pem"),
                                       "', key_file: '", dir_->Path("server.key"), "'");
  // TLS alone proves the gateway to its callers, not the callers to the gateway.
  absl::StatusOr<GatewaySettings> tls_only =
      FromText(absl::StrCat("control_listen: '0.0.0.0:1'\n", tls, "}\n"));
  ASSERT_FALSE(tls_only.ok());
  EXPECT_THAT(tls_only.status().message(), HasSubstr("not a loopback address"));

  absl::StatusOr<GatewaySettings> mutual = FromText(absl::StrCat(
      "control_listen: '0.0.0.0:1'\n", tls, ", client_ca_file: '", dir_->Path("ca.pem"), "'}\n"));
  ASSERT_TRUE(mutual.ok()) << mutual.status();
  EXPECT_EQ(mutual->control_tls.client_ca_pem, ca->cert_pem());
  EXPECT_TRUE(mutual->control_tls.enabled());
  EXPECT_FALSE(mutual->tls.enabled());
  EXPECT_FALSE(mutual->worker_tls.enabled);
}

TEST_F(SecurityConfigTest, OriginsAndTrustedProxies) {
  absl::StatusOr<GatewaySettings> s = FromText(R"(
trusted_proxies: [10.0.0.0/8, "::1"]
)");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->trusted_proxies.size(), 2u);
  config::v1::GatewayConfig config;
  ConfigOrigins origins;
  ASSERT_TRUE(MergeConfigText(R"(
functions:
  - name: echo
    target: 127.0.0.1:7001
    allowed_origins: ["HTTPS://App.Example.com/", "https://a.example/path"]
trusted_proxies: [10.0.0.1/8]
)", "gw.yaml", config, origins).ok());
  absl::StatusOr<GatewaySettings> bad = ToSettings(config, origins);
  ASSERT_FALSE(bad.ok());
  const std::string message(bad.status().message());
  EXPECT_THAT(message, HasSubstr("gw.yaml:5: key 'functions[0].allowed_origins[1]'"));
  EXPECT_THAT(message, HasSubstr("gw.yaml:6: key 'trusted_proxies[0]'"));
  EXPECT_THAT(message, ::testing::Not(HasSubstr("allowed_origins[0]")));
}

}  // namespace
}  // namespace fngate::gateway
