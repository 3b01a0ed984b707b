// Config loading: YAML/JSON into the schema, flags by path, every error naming its origin.
#include "gateway/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fngate::gateway {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<GatewaySettings> FromText(const std::string& text) {
  config::v1::GatewayConfig config;
  ConfigOrigins origins;
  if (absl::Status s = MergeConfigText(text, "gw.yaml", config, origins); !s.ok()) return s;
  return ToSettings(config, origins);
}

TEST(ConfigTest, YamlFillsEveryKind) {
  absl::StatusOr<GatewaySettings> s = FromText(R"(
listen: 127.0.0.1:9000
io_threads: 3
functions:
  - name: echo
    target: 127.0.0.1:7001,127.0.0.1:7002
    max_in_flight: 4
    on_message_error: keep_open
limits:
  max_message_bytes: 65536
forward_headers: [User-Agent, Cookie]
)");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->listen.host, "127.0.0.1");
  EXPECT_EQ(s->listen.port, 9000);
  EXPECT_EQ(s->io_threads, 3u);
  ASSERT_EQ(s->functions.size(), 1u);
  EXPECT_EQ(s->functions[0].target, "ipv4:127.0.0.1:7001,127.0.0.1:7002");
  EXPECT_EQ(s->functions[0].max_in_flight, 4u);
  EXPECT_EQ(s->functions[0].on_message_error, MessageErrorPolicy::kKeepOpen);
  EXPECT_EQ(s->limits.max_message_bytes, 65536u);
  EXPECT_EQ(s->limits.max_outbound_bytes, 8u << 20);  // Default kept.
  EXPECT_THAT(s->forward_headers, ::testing::ElementsAre("user-agent", "cookie"));
}

TEST(ConfigTest, JsonIsAccepted) {
  absl::StatusOr<GatewaySettings> s =
      FromText(R"({"functions": [{"name": "chat", "target": "dns:///chat.svc:7001"}]})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->functions[0].target, "dns:///chat.svc:7001");
}

TEST(ConfigTest, UnknownKeyNamesFileLineAndKey) {
  absl::StatusOr<GatewaySettings> s = FromText("functions: []\nlimits:\n  max_mesage_bytes: 1\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("gw.yaml:3"));
  EXPECT_THAT(s.status().message(), HasSubstr("'limits.max_mesage_bytes'"));
  EXPECT_THAT(s.status().message(), HasSubstr("unknown key"));
}

TEST(ConfigTest, BadValueNamesLineAndKey) {
  absl::StatusOr<GatewaySettings> s = FromText("io_threads: many\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("gw.yaml:1: key 'io_threads'"));
}

TEST(ConfigTest, SyntaxErrorNamesLine) {
  absl::StatusOr<GatewaySettings> s = FromText("listen: a\nfunctions: [\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("gw.yaml:"));
  EXPECT_THAT(s.status().message(), HasSubstr("not valid YAML"));
}

TEST(ConfigTest, ValidationPointsAtTheLine) {
  absl::StatusOr<GatewaySettings> s = FromText(R"(functions:
  - name: echo
    target: a:1
  - name: echo
    target: b:1
)");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("gw.yaml:4: key 'functions[1].name'"));
  EXPECT_THAT(s.status().message(), HasSubstr("configured twice"));
}

TEST(ConfigTest, FlagsOverrideAndNameThemselves) {
  config::v1::GatewayConfig config;
  ConfigOrigins origins;
  ASSERT_TRUE(MergeConfigText("listen: 1.2.3.4:1\n", "gw.yaml", config, origins).ok());
  ASSERT_TRUE(ApplyFlag("listen", "127.0.0.1:0", config, origins).ok());
  ASSERT_TRUE(ApplyFlag("function", "echo=127.0.0.1:7001", config, origins).ok());
  ASSERT_TRUE(ApplyFlag("function", "echo=127.0.0.1:7002", config, origins).ok());  // Replaces.
  ASSERT_TRUE(ApplyFlag("limits.max_message_bytes", "100", config, origins).ok());
  ASSERT_TRUE(ApplyFlag("functions[0].transport", "unary", config, origins).ok());
  EXPECT_THAT(ApplyFlag("functions[1].transport", "unary", config, origins).message(),
              HasSubstr("there is no functions[1]"));
  absl::StatusOr<GatewaySettings> s = ToSettings(config, origins);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->listen.host, "127.0.0.1");
  ASSERT_EQ(s->functions.size(), 1u);
  EXPECT_EQ(s->functions[0].target, "127.0.0.1:7002");
  EXPECT_EQ(s->limits.max_message_bytes, 100u);
  EXPECT_EQ(s->functions[0].transport, FunctionTransport::kUnary);

  absl::Status unknown = ApplyFlag("limits.nope", "1", config, origins);
  EXPECT_THAT(unknown.message(), HasSubstr("unknown flag --limits.nope"));
  absl::Status bad = ApplyFlag("io_threads", "-1", config, origins);
  EXPECT_THAT(bad.message(), HasSubstr("flag --io_threads"));
  absl::Status no_target = ApplyFlag("function", "echo", config, origins);
  EXPECT_THAT(no_target.message(), HasSubstr("NAME=TARGET"));
}

TEST(ConfigTest, NoFunctionIsAnError) {
  absl::StatusOr<GatewaySettings> s = FromText("");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("no functions configured"));
}

TEST(ConfigTest, HostPort) {
  EXPECT_EQ(ParseHostPort("[::1]:80")->host, "::1");
  EXPECT_FALSE(ParseHostPort("nohost").ok());
  EXPECT_FALSE(ParseHostPort("a:70000").ok());
}

}  // namespace
}  // namespace fngate::gateway
