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

TEST(ConfigTest, LimitDefaults) {
  absl::StatusOr<GatewaySettings> s = FromText("functions: [{name: echo, target: a:1}]");
  ASSERT_TRUE(s.ok()) << s.status();
  const LimitSettings& l = s->limits;
  EXPECT_EQ(l.max_header_bytes, 16384u);
  EXPECT_EQ(l.max_lifetime.count(), 0);
  EXPECT_EQ(l.max_messages_per_second, 0u);
  EXPECT_EQ(l.max_connections_per_ip, 0u);
  EXPECT_EQ(l.slow_consumer, SlowConsumerPolicy::kClose);
  EXPECT_FALSE(s->functions[0].permessage_deflate);
  // A function without limits of its own has the gateway's.
  EXPECT_EQ(s->functions[0].limits.max_message_bytes, l.max_message_bytes);
  EXPECT_EQ(s->functions[0].limits.idle_timeout, l.idle_timeout);
}

TEST(ConfigTest, FunctionLimitsFallBackToTheGatewayFieldByField) {
  absl::StatusOr<GatewaySettings> s = FromText(R"(
limits:
  max_message_bytes: 4096
  idle_timeout_ms: 5000
  max_messages_per_second: 10
  slow_consumer: drop_oldest
functions:
  - name: a
    target: a:1
  - name: b
    target: b:1
    permessage_deflate: true
    limits:
      max_message_bytes: 100000
      max_messages_per_second: 50
      max_lifetime_ms: 60000
      max_connections_per_ip: 3
)");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->limits.message_burst, 10u);  // Defaults to the rate.
  const LimitSettings& a = s->functions[0].limits;
  EXPECT_EQ(a.max_message_bytes, 4096u);
  EXPECT_EQ(a.max_messages_per_second, 10u);
  EXPECT_EQ(a.slow_consumer, SlowConsumerPolicy::kDropOldest);
  const LimitSettings& b = s->functions[1].limits;
  EXPECT_TRUE(s->functions[1].permessage_deflate);
  EXPECT_EQ(b.max_message_bytes, 100000u);
  EXPECT_EQ(b.idle_timeout.count(), 5000);  // The gateway's.
  EXPECT_EQ(b.max_messages_per_second, 50u);
  EXPECT_EQ(b.message_burst, 50u);          // Its own rate's, not the gateway's burst.
  EXPECT_EQ(b.max_lifetime.count(), 60000);
  EXPECT_EQ(b.max_connections_per_ip, 3u);
  EXPECT_EQ(b.slow_consumer, SlowConsumerPolicy::kDropOldest);
}

TEST(ConfigTest, BadLimitsAreNamed) {
  absl::StatusOr<GatewaySettings> s = FromText(R"(
limits:
  slow_consumer: drop_newest
  message_burst: 5
  max_header_bytes: 10
functions:
  - name: a
    target: a:1
    limits:
      handshake_timeout_ms: 100
      max_header_bytes: 4096
      max_message_bytes: 9000000
)");
  ASSERT_FALSE(s.ok());
  const std::string m(s.status().message());
  EXPECT_THAT(m, HasSubstr("'limits.slow_consumer': expected close or drop_oldest"));
  EXPECT_THAT(m, HasSubstr("'limits.message_burst': needs max_messages_per_second"));
  EXPECT_THAT(m, HasSubstr("'limits.max_header_bytes': between 1024 and 1048576"));
  EXPECT_THAT(m, HasSubstr("gw.yaml:10: key 'functions[0].limits.handshake_timeout_ms'"));
  EXPECT_THAT(m, HasSubstr("'functions[0].limits.max_header_bytes': the upgrade request"));
  // 9000000 > the gateway's max_outbound_bytes (8 MiB), which the function inherits.
  EXPECT_THAT(m, HasSubstr("'functions[0].limits.max_outbound_bytes': must be at least"));
}

#ifdef FNGATE_EXAMPLE_CONFIG
// deploy/gateway.example.yaml sets every key to its default: it must load, and the limits it
// states must be the ones the gateway uses when a key is left out.
TEST(ConfigTest, ExampleConfigLoadsWithTheDefaults) {
  std::string flag = "--config=" FNGATE_EXAMPLE_CONFIG;
  char* argv[] = {const_cast<char*>("fngate"), flag.data()};
  absl::StatusOr<GatewaySettings> example = LoadSettings(2, argv);
  ASSERT_TRUE(example.ok()) << example.status();
  absl::StatusOr<GatewaySettings> defaults =
      FromText("functions: [{name: echo, target: 127.0.0.1:7001}]");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  for (const LimitSettings* l : {&example->limits, &example->functions[0].limits}) {
    const LimitSettings& d = defaults->limits;
    EXPECT_EQ(l->max_message_bytes, d.max_message_bytes);
    EXPECT_EQ(l->max_outbound_bytes, d.max_outbound_bytes);
    EXPECT_EQ(l->slow_consumer, d.slow_consumer);
    EXPECT_EQ(l->max_inbound_queue, d.max_inbound_queue);
    EXPECT_EQ(l->handshake_timeout, d.handshake_timeout);
    EXPECT_EQ(l->max_header_bytes, d.max_header_bytes);
    EXPECT_EQ(l->idle_timeout, d.idle_timeout);
    EXPECT_EQ(l->max_lifetime, d.max_lifetime);
    EXPECT_EQ(l->max_messages_per_second, d.max_messages_per_second);
    EXPECT_EQ(l->message_burst, d.message_burst);
    EXPECT_EQ(l->max_connections, d.max_connections);
    EXPECT_EQ(l->max_connections_per_ip, d.max_connections_per_ip);
  }
  EXPECT_FALSE(example->functions[0].permessage_deflate);
}
#endif

}  // namespace
}  // namespace fngate::gateway
