// IP parsing, trusted-proxy networks, the X-Forwarded-For walk, and the Origin allow-list.
#include "gateway/client_address.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/origin.h"

namespace fngate::gateway {
namespace {

using ::testing::HasSubstr;

std::vector<IpNetwork> Networks(const std::vector<std::string>& texts) {
  std::vector<IpNetwork> out;
  for (const std::string& t : texts) {
    absl::StatusOr<IpNetwork> n = ParseIpNetwork(t);
    EXPECT_TRUE(n.ok()) << t << ": " << n.status();
    if (n.ok()) out.push_back(*n);
  }
  return out;
}

TEST(IpAddressTest, ParsesAndFormats) {
  EXPECT_EQ(ToString(*ParseIpAddress("10.1.2.3")), "10.1.2.3");
  EXPECT_EQ(ToString(*ParseIpAddress("2001:DB8::1")), "2001:db8::1");
  // IPv4-mapped IPv6 is IPv4 (a dual-stack socket's view of an IPv4 peer).
  EXPECT_TRUE(ParseIpAddress("::ffff:10.1.2.3")->v4);
  EXPECT_EQ(ToString(*ParseIpAddress("::ffff:10.1.2.3")), "10.1.2.3");
  for (const char* bad : {"", "10.1.2", "10.1.2.3:80", "[::1]", "localhost", "1.2.3.4 "}) {
    EXPECT_FALSE(ParseIpAddress(bad).has_value()) << bad;
  }
  EXPECT_TRUE(IsLoopback(*ParseIpAddress("127.9.9.9")));
  EXPECT_TRUE(IsLoopback(*ParseIpAddress("::1")));
  EXPECT_FALSE(IsLoopback(*ParseIpAddress("0.0.0.0")));
  EXPECT_FALSE(IsLoopback(*ParseIpAddress("::")));
}

TEST(IpNetworkTest, Contains) {
  const std::vector<IpNetwork> n = Networks({"10.0.0.0/8", "192.168.1.0/25", "fd00::/8", "::1"});
  EXPECT_TRUE(n[0].Contains(*ParseIpAddress("10.255.0.1")));
  EXPECT_TRUE(n[0].Contains(*ParseIpAddress("::ffff:10.0.0.1")));
  EXPECT_FALSE(n[0].Contains(*ParseIpAddress("11.0.0.1")));
  EXPECT_TRUE(n[1].Contains(*ParseIpAddress("192.168.1.127")));
  EXPECT_FALSE(n[1].Contains(*ParseIpAddress("192.168.1.128")));
  EXPECT_TRUE(n[2].Contains(*ParseIpAddress("fd12::1")));
  EXPECT_FALSE(n[2].Contains(*ParseIpAddress("fe80::1")));
  EXPECT_TRUE(n[3].Contains(*ParseIpAddress("::1")));
  EXPECT_FALSE(n[3].Contains(*ParseIpAddress("::2")));
  EXPECT_FALSE(n[3].Contains(*ParseIpAddress("127.0.0.1")));  // Families never mix.
  EXPECT_TRUE(Networks({"0.0.0.0/0"})[0].Contains(*ParseIpAddress("8.8.8.8")));
}

TEST(IpNetworkTest, BadNetworksSayWhy) {
  EXPECT_THAT(ParseIpNetwork("10.0.0.0/33").status().message(), HasSubstr("0-32"));
  EXPECT_THAT(ParseIpNetwork("10.0.0.1/8").status().message(), HasSubstr("past the /8"));
  EXPECT_THAT(ParseIpNetwork("proxy.local").status().message(), HasSubstr("not an IP address"));
  EXPECT_FALSE(ParseIpNetwork("10.0.0.0/").ok());
  EXPECT_FALSE(ParseIpNetwork("fd00::/129").ok());
}

TEST(ForwardedClientTest, WalksFromTheRightPastTrustedProxies) {
  const std::vector<IpNetwork> trusted = Networks({"10.0.0.0/8", "2001:db8:1::/48"});
  EXPECT_EQ(ForwardedClient("10.0.0.1", "6.6.6.6, 203.0.113.9", trusted), "203.0.113.9");
  EXPECT_EQ(ForwardedClient("10.0.0.1", "203.0.113.9, 10.0.0.2, 10.0.0.3", trusted),
            "203.0.113.9");
  EXPECT_EQ(ForwardedClient("10.0.0.1", "203.0.113.9:4711", trusted), "203.0.113.9");
  EXPECT_EQ(ForwardedClient("10.0.0.1", "[2001:db8:2::5]:443", trusted), "2001:db8:2::5");
  EXPECT_EQ(ForwardedClient("2001:db8:1::9", "2001:db8:2::5", trusted), "2001:db8:2::5");
  EXPECT_EQ(ForwardedClient("::ffff:10.0.0.1", " 203.0.113.9 ,", trusted), "203.0.113.9");
  // Every hop trusted: the left-most.
  EXPECT_EQ(ForwardedClient("10.0.0.1", "10.0.0.3, 10.0.0.2", trusted), "10.0.0.3");
  // Garbage ends the walk; the trusted hop right of it is as far as the proxies vouch.
  EXPECT_EQ(ForwardedClient("10.0.0.1", "6.6.6.6, unknown, 10.0.0.2", trusted), "10.0.0.2");
  EXPECT_EQ(ForwardedClient("10.0.0.1", "unknown", trusted), std::nullopt);
  EXPECT_EQ(ForwardedClient("10.0.0.1", "", trusted), std::nullopt);
  // An untrusted peer's header means nothing.
  EXPECT_EQ(ForwardedClient("203.0.113.1", "6.6.6.6", trusted), std::nullopt);
  EXPECT_EQ(ForwardedClient("10.0.0.1", "6.6.6.6", {}), std::nullopt);
}

TEST(OriginTest, NormalizeAndMatch) {
  EXPECT_EQ(*NormalizeOrigin("HTTPS://App.Example.com/"), "https://app.example.com");
  EXPECT_EQ(*NormalizeOrigin("http://localhost:3000"), "http://localhost:3000");
  for (const char* bad : {"app.example.com", "https://", "https://a.com/path", "https://u@a.com",
                          "https://a.com?x", "*"}) {
    EXPECT_FALSE(NormalizeOrigin(bad).ok()) << bad;
  }
  const std::vector<std::string> allowed = {"https://app.example.com"};
  EXPECT_TRUE(OriginAllowed(allowed, "https://APP.example.com"));
  EXPECT_FALSE(OriginAllowed(allowed, "https://app.example.com:443"));
  EXPECT_FALSE(OriginAllowed(allowed, "https://sub.app.example.com"));
  EXPECT_FALSE(OriginAllowed(allowed, ""));
  EXPECT_TRUE(OriginAllowed({}, ""));
  EXPECT_TRUE(OriginAllowed({}, "https://anything.example"));
}

}  // namespace
}  // namespace fngate::gateway
