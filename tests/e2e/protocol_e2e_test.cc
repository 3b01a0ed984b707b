// End to end: RFC 6455 violations sent by a raw client to a real gateway. For each: the exact
// close code the client gets (1002 protocol error, 1007 invalid UTF-8 in a text message), the
// worker's disconnect event with that code and closed_by LIMIT, the violation counted in
// /metrics, and a bystander connection opened before that still echoes afterwards.
//
// Beast detects every one of these (its frame parser and UTF-8 validator) and sends the close
// frame itself; the gateway maps the error to the event and the metric. Frames that are
// unusual but legal (a ping inside a fragmented message, application close codes) must work.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "tests/e2e/limits_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::FrameOptions;
using test_support::HttpHead;
using test_support::RawFrame;
using test_support::RawWsClient;
using test_support::WsOpcode;
using test_support::kRsv1;
using test_support::kRsv2;
using test_support::kRsv3;

struct Violation {
  std::string name;
  std::string bytes;  // What the client sends after the upgrade.
  int close_code;
  std::string kind;  // fngate_limit_hits_total{kind=...}
};

std::string Close(int code, absl::string_view reason = "") {
  return RawFrame::Build(WsOpcode::kClose, RawFrame::ClosePayload(code, reason));
}

std::vector<Violation> Violations() {
  const FrameOptions more{.fin = false};
  return {
      {"InvalidUtf8Text", RawFrame::Build(WsOpcode::kText, "ok \xff\xfe"), 1007, "utf8"},
      {"Utf8CutAtTheEnd", RawFrame::Build(WsOpcode::kText, "euro \xe2\x82"), 1007, "utf8"},
      {"InvalidUtf8AcrossFragments",
       RawFrame::Build(WsOpcode::kText, "euro \xe2\x82", more) +
           RawFrame::Build(WsOpcode::kContinuation, "\x28"),
       1007, "utf8"},
      {"Rsv1WithoutExtension", RawFrame::Build(WsOpcode::kText, "x", {.rsv = kRsv1}), 1002,
       "protocol"},
      {"Rsv2", RawFrame::Build(WsOpcode::kBinary, "x", {.rsv = kRsv2}), 1002, "protocol"},
      {"Rsv3OnPing", RawFrame::Build(WsOpcode::kPing, "x", {.rsv = kRsv3}), 1002, "protocol"},
      {"ReservedDataOpcode", RawFrame::Build(0x3, "x"), 1002, "protocol"},
      {"ReservedControlOpcode", RawFrame::Build(0xB, "x"), 1002, "protocol"},
      {"FragmentedPing", RawFrame::Build(WsOpcode::kPing, "x", more), 1002, "protocol"},
      {"PingOver125Bytes", RawFrame::Build(WsOpcode::kPing, std::string(126, 'p')), 1002,
       "protocol"},
      {"UnmaskedFrame", RawFrame::Build(WsOpcode::kText, "x", {.masked = false}), 1002,
       "protocol"},
      {"ContinuationWithoutStart", RawFrame::Build(WsOpcode::kContinuation, "x"), 1002,
       "protocol"},
      {"NewMessageInsideFragmented",
       RawFrame::Build(WsOpcode::kText, "a", more) + RawFrame::Build(WsOpcode::kText, "b"), 1002,
       "protocol"},
      // Five bytes with a 16-bit length: lengths must use the shortest form (RFC 6455 5.2).
      {"NonCanonicalLength", std::string("\x81\xfe\x00\x05\0\0\0\0hello", 13), 1002, "protocol"},
      {"CloseCode1005", Close(1005), 1002, "protocol"},
      {"CloseCode1006", Close(1006), 1002, "protocol"},
      {"CloseCode1004", Close(1004), 1002, "protocol"},
      {"CloseCode1015", Close(1015), 1002, "protocol"},
      {"CloseCode999", Close(999), 1002, "protocol"},
      {"CloseCode1016", Close(1016), 1002, "protocol"},
      {"CloseCode2999", Close(2999), 1002, "protocol"},
      {"CloseOneBytePayload", RawFrame::Build(WsOpcode::kClose, "\x03"), 1002, "protocol"},
      {"CloseReasonInvalidUtf8", Close(1000, "bye \xff"), 1002, "protocol"},
  };
}

class ProtocolE2eTest : public LimitsClusterTest,
                        public ::testing::WithParamInterface<Violation> {};

TEST_P(ProtocolE2eTest, ViolationClosesWithItsCode) {
  const Violation& violation = GetParam();
  StartCluster({});
  RawWsClient raw;
  ConnectRaw(raw);
  absl::StatusOr<std::string> id = UpgradeRawAndGetId(raw, worker_, "/echo");
  ASSERT_TRUE(IsOk(id));
  ASSERT_TRUE(IsOk(raw.Write(violation.bytes, kIoTimeout)));
  absl::StatusOr<RawFrame> close = raw.ReadCloseFrame(kEventTimeout);
  ASSERT_TRUE(IsOk(close));
  EXPECT_EQ(close->CloseCode(), violation.close_code);
  EXPECT_EQ(raw.SkippedFrames(), 0) << "no message of a broken stream is echoed";
  EXPECT_TRUE(IsOk(raw.WaitForEof(kEventTimeout)));
  ExpectDisconnect(*id, "LIMIT", violation.close_code);
  EXPECT_EQ(WaitForLimitHits("echo", violation.kind, 1), 1u);
  EXPECT_TRUE(Events(worker_, "message", *id).empty());
  ExpectBystanderEchoes();
}

INSTANTIATE_TEST_SUITE_P(Rfc6455, ProtocolE2eTest, ::testing::ValuesIn(Violations()),
                         [](const ::testing::TestParamInfo<Violation>& info) {
                           return info.param.name;
                         });

using ProtocolLegalE2eTest = LimitsClusterTest;

// A control frame may come between the fragments of a message (RFC 6455 5.4).
TEST_F(ProtocolLegalE2eTest, PingInsideAFragmentedMessage) {
  StartCluster({});
  RawWsClient raw;
  ConnectRaw(raw);
  absl::StatusOr<std::string> id = UpgradeRawAndGetId(raw, worker_, "/echo");
  ASSERT_TRUE(IsOk(id));
  ASSERT_TRUE(IsOk(raw.Write(RawFrame::Build(WsOpcode::kText, "hel", {.fin = false}) +
                                 RawFrame::Build(WsOpcode::kPing, "p") +
                                 RawFrame::Build(WsOpcode::kContinuation, "lo"),
                             kIoTimeout)));
  absl::StatusOr<RawFrame> pong = raw.ReadFrame(kEventTimeout);
  ASSERT_TRUE(IsOk(pong));
  EXPECT_EQ(pong->opcode, static_cast<uint8_t>(WsOpcode::kPong));
  EXPECT_EQ(pong->payload, "p");
  absl::StatusOr<RawFrame> echo = raw.ReadFrame(kEventTimeout);
  ASSERT_TRUE(IsOk(echo));
  EXPECT_EQ(echo->opcode, static_cast<uint8_t>(WsOpcode::kText));
  EXPECT_EQ(echo->payload, "hello");
  // Binary frames are not UTF-8 checked.
  ASSERT_TRUE(IsOk(raw.Write(RawFrame::Build(WsOpcode::kBinary, "\xff\xfe"), kIoTimeout)));
  echo = raw.ReadFrame(kEventTimeout);
  ASSERT_TRUE(IsOk(echo));
  EXPECT_EQ(echo->payload, "\xff\xfe");
  ExpectBystanderEchoes();
}

// An upgrade request RFC 6455 section 4.2.1 does not accept is answered before the function
// hears of it: 426 (with the version the gateway speaks) or 400, and no connect event.
TEST_F(ProtocolLegalE2eTest, BadUpgradeRequestsAreRefusedBeforeTheFunction) {
  StartCluster({});
  const std::string good = RawWsClient::UpgradeRequest("/echo");
  auto replaced = [&good](absl::string_view from, absl::string_view to) {
    return absl::StrReplaceAll(good, {{from, to}});
  };
  struct Case {
    std::string name, request;
    int status;
  };
  const std::vector<Case> cases = {
      {"NotAnUpgrade", "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 426},
      {"Version8", replaced("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"), 426},
      {"NoKey", replaced("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""), 400},
      {"KeyNot16Bytes", replaced("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="), 400},
  };
  for (const Case& c : cases) {
    RawWsClient raw;
    ConnectRaw(raw);
    ASSERT_TRUE(IsOk(raw.Write(c.request, kIoTimeout))) << c.name;
    absl::StatusOr<HttpHead> head = raw.ReadHttpResponse(kEventTimeout);
    ASSERT_TRUE(IsOk(head)) << c.name;
    EXPECT_EQ(head->status, c.status) << c.name;
    if (c.name == "Version8") {
      EXPECT_EQ(head->Header("sec-websocket-version"), "13");
    }
  }
  ExpectBystanderEchoes();
  StopAll();
  EXPECT_EQ(ConnectEvents(), 1) << "only the bystander connected";
}

// Application close codes are the client's to use: answered with the same code, by CLIENT.
TEST_F(ProtocolLegalE2eTest, ApplicationCloseCodesAreAnswered) {
  StartCluster({});
  for (int code : {1000, 1001, 3000, 4999}) {
    RawWsClient raw;
    ConnectRaw(raw);
    absl::StatusOr<std::string> id = UpgradeRawAndGetId(raw, worker_, "/echo");
    ASSERT_TRUE(IsOk(id));
    ASSERT_TRUE(IsOk(raw.Write(Close(code, "bye"), kIoTimeout)));
    absl::StatusOr<RawFrame> close = raw.ReadCloseFrame(kEventTimeout);
    ASSERT_TRUE(IsOk(close));
    EXPECT_EQ(close->CloseCode(), code);
    EXPECT_TRUE(IsOk(raw.WaitForEof(kEventTimeout)));
    ExpectDisconnect(*id, "CLIENT", code);
  }
  EXPECT_EQ(LimitHits("echo", "protocol"), 0u);
  ExpectBystanderEchoes();
}

}  // namespace
}  // namespace fngate::e2e
