// End to end: every client-side limit of a real gateway (proto Limits), with the exact close
// code or HTTP status the client gets, the disconnect event the worker gets where the
// connection was accepted (none where it was refused), the limit counted in /metrics, and a
// bystander connection opened before that still echoes afterwards.
//
// Limits a function can set are set on a function of their own ("tight", ...), so the
// bystander on /echo keeps the gateway's; the others are the gateway's (small in the test).
// Timeouts are small; waits are for events (a close, an EOF, a log line) with generous bounds,
// and no test asserts how long anything took.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/limits_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::FrameOptions;
using test_support::HttpHead;
using test_support::RawConnectOptions;
using test_support::RawFrame;
using test_support::RawWsClient;
using test_support::WsMessage;
using test_support::WsOpcode;
using test_support::WsTestClient;

using LimitsE2eTest = LimitsClusterTest;

TEST_F(LimitsE2eTest, OversizedMessageIsClosed1009) {
  StartCluster({}, {{"tight", {"limits.max_message_bytes=1024"}}});
  const std::string big(2000, 'x');
  ExpectEchoes(bystander_, big);  // /echo keeps the gateway's 1 MiB.

  WsTestClient client;
  absl::StatusOr<std::string> id = ConnectAndGetId(client, gateway_, worker_, "/tight");
  ASSERT_TRUE(IsOk(id));
  ExpectEchoes(client, std::string(1024, 'y'));  // At the limit is allowed.
  ASSERT_TRUE(IsOk(client.SendText(big, kIoTimeout)));
  absl::StatusOr<int> code = client.WaitForClose(kEventTimeout);
  ASSERT_TRUE(IsOk(code));
  EXPECT_EQ(*code, 1009);
  ExpectDisconnect(*id, "LIMIT", 1009);
  EXPECT_EQ(WaitForLimitHits("tight", "message_size", 1u), 1u);
  ExpectBystanderEchoes();
}

// Slowloris: half a request, then nothing. The gateway drops the socket after the handshake
// timeout; the function never hears of it.
TEST_F(LimitsE2eTest, HalfSentRequestIsDroppedAfterTheHandshakeTimeout) {
  StartCluster({"--limits.handshake_timeout_ms=300"});
  RawWsClient slow;
  ConnectRaw(slow);
  ASSERT_TRUE(IsOk(slow.Write("GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr", kIoTimeout)));
  EXPECT_TRUE(IsOk(slow.WaitForEof(kEventTimeout)));
  EXPECT_EQ(WaitForLimitHits("", "handshake_timeout", 1u), 1u);
  // A client that sends nothing at all is dropped the same way.
  RawWsClient silent;
  ConnectRaw(silent);
  EXPECT_TRUE(IsOk(silent.WaitForEof(kEventTimeout)));
  EXPECT_EQ(WaitForLimitHits("", "handshake_timeout", 2u), 2u);
  ExpectBystanderEchoes();
  StopAll();
  EXPECT_EQ(ConnectEvents(), 1) << "only the bystander connected";
}

// A request that is not HTTP, or a client that leaves mid-request, is closed at once: it does
// not keep its socket (and its connection slots) until the handshake timeout.
TEST_F(LimitsE2eTest, GarbageRequestIsClosedAtOnceNotAtTheHandshakeTimeout) {
  StartCluster({"--limits.handshake_timeout_ms=60000"});
  RawWsClient garbage;
  ConnectRaw(garbage);
  ASSERT_TRUE(IsOk(garbage.Write("HELLO THERE\r\n\r\n", kIoTimeout)));
  EXPECT_TRUE(IsOk(garbage.WaitForEof(kEventTimeout)));  // Well before 60 s.
  EXPECT_EQ(LimitHits("", "handshake_timeout"), 0u);
  ExpectBystanderEchoes();
  StopAll();
  EXPECT_EQ(ConnectEvents(), 1) << "only the bystander connected";
}

TEST_F(LimitsE2eTest, OversizedRequestHeaderGets431) {
  StartCluster({"--limits.max_header_bytes=1024"});
  RawWsClient raw;
  ConnectRaw(raw);
  const std::string cookie = absl::StrCat("Cookie: c=", std::string(4096, 'c'));
  absl::StatusOr<HttpHead> head = raw.Upgrade("/echo", kIoTimeout, {cookie});
  ASSERT_TRUE(IsOk(head));
  EXPECT_EQ(head->status, 431);
  EXPECT_TRUE(IsOk(raw.WaitForEof(kEventTimeout)));
  EXPECT_EQ(WaitForLimitHits("", "header_size", 1u), 1u);
  // A header under the limit still connects.
  RawWsClient fine;
  ConnectRaw(fine);
  absl::StatusOr<HttpHead> ok = fine.Upgrade("/echo", kIoTimeout, {"Cookie: c=small"});
  ASSERT_TRUE(IsOk(ok));
  EXPECT_EQ(ok->status, 101);
  ExpectBystanderEchoes();
  StopAll();
  EXPECT_EQ(ConnectEvents(), 2) << "the bystander and the small header";
}

// A client that never answers the keepalive pings is closed (no close frame: it is presumed
// gone, so the code is 1006) by TIMEOUT.
TEST_F(LimitsE2eTest, ClientThatIgnoresPingsIsClosedByTimeout) {
  StartCluster({}, {{"idle", {"limits.idle_timeout_ms=400"}}});
  RawWsClient deaf;
  ConnectRaw(deaf);
  absl::StatusOr<std::string> id = UpgradeRawAndGetId(deaf, worker_, "/idle");
  ASSERT_TRUE(IsOk(id));
  // Reads the pings, never answers, until the gateway drops the connection.
  EXPECT_TRUE(IsOk(deaf.WaitForEof(kEventTimeout)));
  ExpectDisconnect(*id, "TIMEOUT", 1006);
  EXPECT_EQ(WaitForLimitHits("idle", "idle", 1u), 1u);
  ExpectBystanderEchoes();
}

// A client that answers every ping stays, however long it sends nothing else.
TEST_F(LimitsE2eTest, ClientThatAnswersPingsStaysPastSeveralIdlePeriods) {
  // Long enough that a loaded machine answers each ping in time (half of it).
  StartCluster({}, {{"idle", {"limits.idle_timeout_ms=1000"}}});
  RawWsClient alive;
  ConnectRaw(alive);
  absl::StatusOr<std::string> id = UpgradeRawAndGetId(alive, worker_, "/idle");
  ASSERT_TRUE(IsOk(id));
  // Pings come every half idle period: six of them span three idle periods.
  for (int pings = 0; pings < 6;) {
    absl::StatusOr<RawFrame> frame = alive.ReadFrame(kEventTimeout);
    ASSERT_TRUE(IsOk(frame)) << "after " << pings << " pings";
    ASSERT_EQ(frame->opcode, static_cast<uint8_t>(WsOpcode::kPing)) << "not a ping";
    ASSERT_TRUE(IsOk(alive.Write(RawFrame::Build(WsOpcode::kPong, frame->payload), kIoTimeout)));
    ++pings;
  }
  ASSERT_TRUE(IsOk(alive.Write(RawFrame::Build(WsOpcode::kText, "still here"), kIoTimeout)));
  while (true) {
    absl::StatusOr<RawFrame> frame = alive.ReadFrame(kEventTimeout);
    ASSERT_TRUE(IsOk(frame));
    if (frame->opcode == static_cast<uint8_t>(WsOpcode::kPing)) {
      ASSERT_TRUE(IsOk(alive.Write(RawFrame::Build(WsOpcode::kPong, frame->payload), kIoTimeout)));
      continue;
    }
    EXPECT_EQ(frame->opcode, static_cast<uint8_t>(WsOpcode::kText));
    EXPECT_EQ(frame->payload, "still here");
    break;
  }
  ASSERT_TRUE(IsOk(alive.Write(RawFrame::Build(WsOpcode::kClose, RawFrame::ClosePayload(1000)),
                               kIoTimeout)));
  absl::StatusOr<RawFrame> close = alive.ReadCloseFrame(kEventTimeout, /*answer_pings=*/true);
  ASSERT_TRUE(IsOk(close));
  EXPECT_EQ(close->CloseCode(), 1000);
  EXPECT_TRUE(IsOk(alive.WaitForEof(kEventTimeout)));
  ExpectDisconnect(*id, "CLIENT", 1000);
  EXPECT_EQ(LimitHits("idle", "idle"), 0u);
  ExpectBystanderEchoes();
}

TEST_F(LimitsE2eTest, ConnectionLifetimeEndsWith1001ByTimeout) {
  StartCluster({}, {{"short", {"limits.max_lifetime_ms=300"}}});
  WsTestClient client;
  absl::StatusOr<std::string> id = ConnectAndGetId(client, gateway_, worker_, "/short");
  ASSERT_TRUE(IsOk(id));
  absl::StatusOr<int> code = client.WaitForClose(kEventTimeout);
  ASSERT_TRUE(IsOk(code));
  EXPECT_EQ(*code, 1001);
  ExpectDisconnect(*id, "TIMEOUT", 1001);
  EXPECT_EQ(WaitForLimitHits("short", "lifetime", 1u), 1u);
  ExpectBystanderEchoes();  // /echo has no lifetime limit (the default).
}

// Burst 3, then one message a second: ten at once are over the rate. The burst is delivered,
// the connection closed with 1008 by LIMIT, and what came after is not delivered.
TEST_F(LimitsE2eTest, MessagesOverTheRateAreClosed1008) {
  StartCluster({}, {{"tight", {"limits.max_messages_per_second=1", "limits.message_burst=3"}}});
  RawWsClient flood;
  ConnectRaw(flood);
  absl::StatusOr<std::string> id = UpgradeRawAndGetId(flood, worker_, "/tight");
  ASSERT_TRUE(IsOk(id));
  std::string frames;
  for (int i = 0; i < 10; ++i) absl::StrAppend(&frames, RawFrame::Build(WsOpcode::kText, "m"));
  ASSERT_TRUE(IsOk(flood.Write(frames, kIoTimeout)));
  absl::StatusOr<RawFrame> close = flood.ReadCloseFrame(kEventTimeout);
  ASSERT_TRUE(IsOk(close));
  EXPECT_EQ(close->CloseCode(), 1008);
  ASSERT_TRUE(IsOk(flood.Write(RawFrame::Build(WsOpcode::kClose, RawFrame::ClosePayload(1000)),
                               kIoTimeout)));
  EXPECT_TRUE(IsOk(flood.WaitForEof(kEventTimeout)));
  ExpectDisconnect(*id, "LIMIT", 1008);
  const size_t delivered = Events(worker_, "message", *id).size();
  EXPECT_GE(delivered, 3u) << "the burst is allowed";
  EXPECT_LT(delivered, 10u) << "messages over the rate must not reach the function";
  EXPECT_EQ(WaitForLimitHits("tight", "rate", 1u), 1u);
  ExpectBystanderEchoes();
}

TEST_F(LimitsE2eTest, MessagesWithinTheRateFlow) {
  StartCluster({}, {{"tight", {"limits.max_messages_per_second=1", "limits.message_burst=3"}}});
  WsTestClient client;
  ASSERT_TRUE(IsOk(ConnectAndGetId(client, gateway_, worker_, "/tight")));
  for (int i = 0; i < 3; ++i) ExpectEchoes(client, absl::StrCat("m", i));
  EXPECT_TRUE(client.IsOpen());
  EXPECT_EQ(LimitHits("tight", "rate"), 0u);
}

// Control Sends to a client that reads nothing until the gateway reports it overflowed; the
// client then reads what is left and finds close 1008.
TEST_F(LimitsE2eTest, SlowConsumerIsClosed1008) {
  StartCluster({}, {{"tight", {"limits.max_outbound_bytes=65536", "limits.max_message_bytes=1024"}}});
  RawWsClient slow;
  ConnectRaw(slow, RawConnectOptions{.receive_buffer_bytes = 4096});
  absl::StatusOr<std::string> id = UpgradeRawAndGetId(slow, worker_, "/tight");
  ASSERT_TRUE(IsOk(id));
  std::unique_ptr<v1::GatewayControl::Stub> control = NewControlStub(gateway_);
  bool overflowed = false;
  for (int i = 0; i < 4000 && !overflowed; ++i) {
    v1::SendRequest request;
    request.mutable_target()->add_connection_ids(*id);
    request.mutable_payload()->set_binary(std::string(16384, 'p'));
    v1::SendResponse response;
    grpc::ClientContext context;
    SetDeadline(context);
    grpc::Status status = control->Send(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    overflowed = response.overflowed_connection_ids_size() == 1;
  }
  ASSERT_TRUE(overflowed) << "64 MiB sent to a client that reads nothing never overflowed";
  absl::StatusOr<RawFrame> close = slow.ReadCloseFrame(kEventTimeout);
  ASSERT_TRUE(IsOk(close));
  EXPECT_EQ(close->CloseCode(), 1008);
  ASSERT_TRUE(IsOk(slow.Write(RawFrame::Build(WsOpcode::kClose, RawFrame::ClosePayload(1000)),
                              kIoTimeout)));
  EXPECT_TRUE(IsOk(slow.WaitForEof(kEventTimeout)));
  ExpectDisconnect(*id, "LIMIT", 1008);
  EXPECT_EQ(WaitForLimitHits("tight", "slow_consumer", 1u), 1u);
  ExpectBystanderEchoes();
}

// slow_consumer: drop_oldest. The oldest queued messages make room; the connection stays
// open, what arrives is in order and ends with the newest, and the drops are counted.
TEST_F(LimitsE2eTest, SlowConsumerDropOldestKeepsTheNewest) {
  StartCluster({}, {{"dropper",
                     {"limits.max_outbound_bytes=65536", "limits.max_message_bytes=1024",
                      "limits.slow_consumer=drop_oldest"}}});
  RawWsClient slow;
  ConnectRaw(slow, RawConnectOptions{.receive_buffer_bytes = 4096});
  absl::StatusOr<std::string> id = UpgradeRawAndGetId(slow, worker_, "/dropper");
  ASSERT_TRUE(IsOk(id));
  std::unique_ptr<v1::GatewayControl::Stub> control = NewControlStub(gateway_);
  auto send = [&](const std::string& text) {
    v1::SendRequest request;
    request.mutable_target()->add_connection_ids(*id);
    request.mutable_payload()->set_text(text);
    v1::SendResponse response;
    grpc::ClientContext context;
    SetDeadline(context);
    grpc::Status status = control->Send(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.delivered(), 1) << "drop_oldest takes every message";
  };
  // Send until the gateway has dropped some (checked every 64 sends), at most 64 MiB.
  int sent = 0;
  uint64_t dropped = 0;
  const std::string dropped_series = "fngate_outbound_dropped_total{function=\"dropper\"}";
  while (dropped == 0 && sent < 4096) {
    for (int i = 0; i < 64; ++i, ++sent) {
      std::string text = absl::StrCat(sent, ":");
      text.resize(16384, '.');
      send(text);
    }
    absl::StatusOr<uint64_t> value = ReadMetric(gateway_, dropped_series);
    ASSERT_TRUE(IsOk(value));
    dropped = *value;
  }
  ASSERT_GT(dropped, 0u) << "nothing was dropped after " << sent << " messages";
  send("last");
  // Everything that arrives is in order and ends with "last"; the connection stays open.
  int received = 0;
  int previous = -1;
  while (true) {
    absl::StatusOr<RawFrame> frame = slow.ReadFrame(kEventTimeout);
    ASSERT_TRUE(IsOk(frame)) << "after " << received << " messages";
    ASSERT_EQ(frame->opcode, static_cast<uint8_t>(WsOpcode::kText));
    if (frame->payload == "last") break;
    int number = -1;
    ASSERT_TRUE(absl::SimpleAtoi(frame->payload.substr(0, frame->payload.find(':')), &number));
    EXPECT_GT(number, previous);
    previous = number;
    ++received;
  }
  EXPECT_LT(received, sent);
  absl::StatusOr<uint64_t> total_dropped = ReadMetric(gateway_, dropped_series);  // "last" too.
  ASSERT_TRUE(IsOk(total_dropped));
  EXPECT_EQ(static_cast<uint64_t>(sent - received), *total_dropped) << "every drop is counted";
  EXPECT_GE(WaitForLimitHits("dropper", "slow_consumer", 1u), 1u);
  ASSERT_TRUE(IsOk(slow.Write(RawFrame::Build(WsOpcode::kText, "echo me"), kIoTimeout)));
  absl::StatusOr<RawFrame> echo = slow.ReadFrame(kEventTimeout);
  ASSERT_TRUE(IsOk(echo));
  EXPECT_EQ(echo->payload, "echo me");
  ExpectBystanderEchoes();
}

TEST_F(LimitsE2eTest, MaxConnectionsGets503) {
  StartCluster({"--limits.max_connections=2"});
  WsTestClient second;
  ASSERT_TRUE(IsOk(ConnectAndGetId(second, gateway_, worker_, "/echo")));
  WsTestClient third;
  absl::Status refused = third.Connect("127.0.0.1", ws_port(), "/echo", kIoTimeout);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_EQ(third.HandshakeStatus(), 503);
  EXPECT_EQ(WaitForLimitHits("", "max_connections", 1u), 1u);
  ExpectBystanderEchoes();
  ExpectEchoes(second, "second");
  StopAll();
  EXPECT_EQ(ConnectEvents(), 2) << "the refused connection has no connect event";
}

TEST_F(LimitsE2eTest, FunctionMaxConnectionsGets503) {
  StartCluster({}, {{"tight", {"limits.max_connections=1"}}});
  WsTestClient first;
  ASSERT_TRUE(IsOk(ConnectAndGetId(first, gateway_, worker_, "/tight")));
  WsTestClient second;
  absl::Status refused = second.Connect("127.0.0.1", ws_port(), "/tight", kIoTimeout);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_EQ(second.HandshakeStatus(), 503);
  EXPECT_EQ(WaitForLimitHits("tight", "max_connections", 1u), 1u);
  ExpectEchoes(first, "first");
  ExpectBystanderEchoes();
  StopAll();
  EXPECT_EQ(ConnectEvents(), 2) << "the refused connection has no connect event";
}

// Two per address (the bystander is one): the third gets 429; once the second has gone, its
// slot is free again -- exactly one slot: the next after that is refused again.
TEST_F(LimitsE2eTest, ConnectionsPerAddressGet429AndAreGivenBackOnce) {
  StartCluster({"--limits.max_connections_per_ip=2"});
  WsTestClient second;
  absl::StatusOr<std::string> second_id = ConnectAndGetId(second, gateway_, worker_, "/echo");
  ASSERT_TRUE(IsOk(second_id));
  WsTestClient third;
  absl::Status refused = third.Connect("127.0.0.1", ws_port(), "/echo", kIoTimeout);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_EQ(third.HandshakeStatus(), 429);
  EXPECT_EQ(WaitForLimitHits("", "per_ip", 1u), 1u);

  ASSERT_TRUE(IsOk(second.Close(1000, kIoTimeout)));
  ExpectDisconnect(*second_id, "CLIENT", 1000);  // The slot is given back before this event.
  WsTestClient fourth;
  ASSERT_TRUE(IsOk(ConnectAndGetId(fourth, gateway_, worker_, "/echo")));
  WsTestClient fifth;
  refused = fifth.Connect("127.0.0.1", ws_port(), "/echo", kIoTimeout);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_EQ(fifth.HandshakeStatus(), 429);
  EXPECT_EQ(WaitForLimitHits("", "per_ip", 2u), 2u);
  ExpectEchoes(fourth, "fourth");
  ExpectBystanderEchoes();
  StopAll();
  EXPECT_EQ(ConnectEvents(), 3) << "bystander, second and fourth; the refused ones none";
}

// A function's own per-address limit: /tight allows one per address, /echo is not affected.
TEST_F(LimitsE2eTest, FunctionConnectionsPerAddressGet429) {
  StartCluster({}, {{"tight", {"limits.max_connections_per_ip=1"}}});
  WsTestClient first;
  absl::StatusOr<std::string> first_id = ConnectAndGetId(first, gateway_, worker_, "/tight");
  ASSERT_TRUE(IsOk(first_id));
  WsTestClient second;
  absl::Status refused = second.Connect("127.0.0.1", ws_port(), "/tight", kIoTimeout);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_EQ(second.HandshakeStatus(), 429);
  EXPECT_EQ(WaitForLimitHits("tight", "per_ip", 1u), 1u);
  first.Abort();
  ExpectDisconnect(*first_id, "NETWORK", 1006);
  WsTestClient third;
  EXPECT_TRUE(IsOk(ConnectAndGetId(third, gateway_, worker_, "/tight")));
  ExpectBystanderEchoes();
}

}  // namespace
}  // namespace fngate::e2e
