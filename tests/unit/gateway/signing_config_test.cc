// The `signing` config keys and functions[].require_signed_url: secrets read from files and
// environment variables at load time, every mistake named by key id and file or variable, and
// no error message ever holding a secret.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "gateway/config.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_certs.h"

namespace fngate::gateway {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kFileSecret[] = "file-secret-0123456789abcdef-0123";
constexpr char kEnvSecret[] = "env-secret-0123456789abcdef-01234";
constexpr char kEnvVar[] = "FNGATE_SIGNING_CONFIG_TEST_KEY";

std::string WriteFile(const std::string& name, const std::string& contents) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/fngate_signing_config_", ::getpid(), "_", name);
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

absl::StatusOr<GatewaySettings> FromText(const std::string& text) {
  config::v1::GatewayConfig config;
  ConfigOrigins origins;
  if (absl::Status s = MergeConfigText(text, "gw.yaml", config, origins); !s.ok()) return s;
  return ToSettings(config, origins);
}

class SigningConfigTest : public ::testing::Test {
 protected:
  // Single-threaded here: nothing reads the environment concurrently.
  void SetUp() override { ::setenv(kEnvVar, kEnvSecret, 1); }
  void TearDown() override { ::unsetenv(kEnvVar); }
};

TEST_F(SigningConfigTest, KeysFromFileAndEnvironment) {
  // A trailing newline (echo secret > file) is not part of the key.
  const std::string file = WriteFile("old.key", absl::StrCat(kFileSecret, "\n"));
  absl::StatusOr<GatewaySettings> s = FromText(absl::StrCat(R"(
functions:
  - name: echo
    target: 127.0.0.1:7001
    require_signed_url: true
  - name: open
    target: 127.0.0.1:7001
signing:
  keys:
    - id: k-old
      secret: {file: ")", file, R"("}
    - id: k-new
      secret: {env: )", kEnvVar, R"(}
  public_url: wss://ws.example.com/gw/
  max_ttl_seconds: 600
)"));
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->signing.keys.size(), 2u);
  EXPECT_EQ(s->signing.keys[0].id, "k-old");
  EXPECT_EQ(s->signing.keys[0].secret, kFileSecret);
  EXPECT_EQ(s->signing.keys[1].id, "k-new");
  EXPECT_EQ(s->signing.keys[1].secret, kEnvSecret);
  EXPECT_EQ(s->signing.public_url, "wss://ws.example.com/gw");  // Trailing '/' dropped.
  EXPECT_EQ(s->signing.max_ttl_seconds, 600u);
  EXPECT_TRUE(s->functions[0].require_signed_url);
  EXPECT_FALSE(s->functions[1].require_signed_url);
}

TEST_F(SigningConfigTest, Defaults) {
  absl::StatusOr<GatewaySettings> s = FromText("functions: [{name: echo, target: a:1}]\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->signing.keys.empty());
  EXPECT_EQ(s->signing.public_url, "");
  EXPECT_EQ(s->signing.default_scheme, "ws");
  EXPECT_EQ(s->signing.max_ttl_seconds, 86400u);
  EXPECT_FALSE(s->functions[0].require_signed_url);

  // With wss:// configured (real files: TLS files are checked when the config loads), minted
  // URLs default to wss://.
  absl::StatusOr<test_support::TempDir> dir = test_support::TempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<test_support::TestCa> ca = test_support::TestCa::Create("signing test CA");
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<test_support::CertPem> server =
      ca->Issue("server", test_support::CertUse::kServer);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(dir->WriteFile("c.pem", server->cert).ok());
  ASSERT_TRUE(dir->WriteFile("k.pem", server->key).ok());
  s = FromText(absl::StrCat("functions: [{name: echo, target: a:1}]\ntls: {cert_file: ",
                            dir->Path("c.pem"), ", key_file: ", dir->Path("k.pem"), "}\n"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->signing.default_scheme, "wss");
}

TEST_F(SigningConfigTest, SecretProblemsNameKeyAndSourceButNeverTheSecret) {
  const std::string short_file = WriteFile("short.key", "tooshort");
  const std::string empty_file = WriteFile("empty.key", "\n");
  const std::string missing = absl::StrCat(::testing::TempDir(), "/fngate_no_such_key_file");
  absl::StatusOr<GatewaySettings> s = FromText(absl::StrCat(R"(functions: [{name: echo, target: a:1}]
signing:
  keys:
    - id: k-missing
      secret: {file: ")", missing, R"("}
    - id: k-unset
      secret: {env: FNGATE_SIGNING_CONFIG_TEST_UNSET}
    - id: k-both
      secret: {file: x, env: y}
    - id: k-neither
    - id: k-short
      secret: {file: ")", short_file, R"("}
    - id: k-empty
      secret: {file: ")", empty_file, R"("}
)"));
  ASSERT_FALSE(s.ok());
  const std::string message(s.status().message());
  EXPECT_THAT(message, HasSubstr(absl::StrCat("gw.yaml:5: key 'signing.keys[0].secret': key "
                                              "'k-missing': cannot read the secret file '",
                                              missing, "'")));
  EXPECT_THAT(message, HasSubstr("gw.yaml:7: key 'signing.keys[1].secret': key 'k-unset': the "
                                 "environment variable 'FNGATE_SIGNING_CONFIG_TEST_UNSET' is "
                                 "not set or empty"));
  EXPECT_THAT(message, HasSubstr("key 'k-both': set exactly one of secret.file and secret.env"));
  EXPECT_THAT(message,
              HasSubstr("key 'k-neither': set exactly one of secret.file and secret.env"));
  EXPECT_THAT(message, AllOf(HasSubstr("key 'k-short': the secret has 8 bytes; at least 16"),
                             Not(HasSubstr("tooshort"))));
  EXPECT_THAT(message, HasSubstr(absl::StrCat("key 'k-empty': the secret file '", empty_file,
                                              "' is empty")));
}

TEST_F(SigningConfigTest, NoSecretInAnyMessage) {
  // Every other problem present, and valid secrets loaded: none of them may be echoed.
  const std::string file = WriteFile("good.key", kFileSecret);
  absl::StatusOr<GatewaySettings> s = FromText(absl::StrCat(R"(functions: [{name: echo, target: a:1}]
signing:
  keys:
    - {id: k-file, secret: {file: ")", file, R"("}}
    - {id: k-env, secret: {env: )", kEnvVar, R"(}}
    - {id: k-file, secret: {file: ")", file, R"("}}
  public_url: http://nope
)"));
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("key id 'k-file' is configured twice"));
  EXPECT_THAT(s.status().message(), Not(HasSubstr(kFileSecret)));
  EXPECT_THAT(s.status().message(), Not(HasSubstr(kEnvSecret)));
}

TEST_F(SigningConfigTest, KeyIdsAndPublicUrlAndRequireChecked) {
  absl::StatusOr<GatewaySettings> s = FromText(absl::StrCat(R"(
functions:
  - {name: echo, target: a:1, require_signed_url: true}
signing:
  keys:
    - {id: "bad id", secret: {env: )", kEnvVar, R"(}}
    - {secret: {env: )", kEnvVar, R"(}}
  public_url: https://ws.example.com
)"));
  ASSERT_FALSE(s.ok());
  const std::string message(s.status().message());
  EXPECT_THAT(message, HasSubstr("key 'signing.keys[0].id': a key id is 1-64 letters"));
  EXPECT_THAT(message, HasSubstr("key 'signing.keys[1].id': a key id is 1-64 letters"));
  EXPECT_THAT(message, HasSubstr("key 'signing.public_url': expected ws://"));

  for (const char* url : {"ws://", "ws:///path", "ws://h?x=1", "ws://h#f", "ws://h x", "h:80"}) {
    s = FromText(absl::StrCat("functions: [{name: echo, target: a:1}]\nsigning: {public_url: \"",
                              url, "\"}\n"));
    EXPECT_FALSE(s.ok()) << url;
    EXPECT_THAT(s.status().message(), HasSubstr("signing.public_url")) << url;
  }
  for (const char* url : {"ws://h", "wss://h:8443", "wss://[::1]:1/prefix"}) {
    s = FromText(absl::StrCat("functions: [{name: echo, target: a:1}]\nsigning: {public_url: \"",
                              url, "\"}\n"));
    EXPECT_TRUE(s.ok()) << url << ": " << s.status();
  }

  s = FromText("functions: [{name: echo, target: a:1, require_signed_url: true}]\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(),
              HasSubstr("key 'functions[0].require_signed_url': needs at least one key in "
                        "signing.keys"));
}

TEST_F(SigningConfigTest, FlagsReachTheKeys) {
  config::v1::GatewayConfig config;
  ConfigOrigins origins;
  ASSERT_TRUE(MergeConfigText(absl::StrCat("functions: [{name: echo, target: a:1}]\n"
                                           "signing: {keys: [{id: k1, secret: {env: ",
                                           kEnvVar, "}}]}\n"),
                              "gw.yaml", config, origins)
                  .ok());
  ASSERT_TRUE(ApplyFlag("signing.public_url", "wss://edge.example.com", config, origins).ok());
  ASSERT_TRUE(ApplyFlag("signing.max_ttl_seconds", "60", config, origins).ok());
  ASSERT_TRUE(ApplyFlag("functions[0].require_signed_url", "true", config, origins).ok());
  absl::StatusOr<GatewaySettings> s = ToSettings(config, origins);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->signing.public_url, "wss://edge.example.com");
  EXPECT_EQ(s->signing.max_ttl_seconds, 60u);
  EXPECT_TRUE(s->functions[0].require_signed_url);
}

}  // namespace
}  // namespace fngate::gateway
