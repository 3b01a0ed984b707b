// End to end: worker faults, on both transports (batched Events streams and unary calls).
// - Each event kind's deadline is enforced: a connect too slow is refused with HTTP 504, a
//   message too slow closes the client with 1011, and every kind counts a deadline error.
// - An event no worker took waits for one until its deadline: a message sent while the only
//   worker is dead is delivered, once, by the worker restarted in its place.
// - An event a worker took is never repeated: a message whose worker crashes while handling
//   it fails (1013), and the other replica never sees it.
// - The message-failure policy: close 1013 (worker unavailable or overloaded) or 1011
//   (function error) by default; keep_open fires the error event and keeps the client.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"
#include "tests/support/http_get.h"

namespace fngate::e2e {
namespace {

using test_support::WorkerEvent;
using test_support::WsMessage;
using test_support::WsTestClient;

constexpr int kGrpcDeadlineExceeded = 4;
constexpr int kGrpcResourceExhausted = 8;
constexpr int kGrpcInternal = 13;
constexpr int kGrpcUnavailable = 14;

class FaultsE2eTest : public ::testing::TestWithParam<std::string> {
 protected:
  // The function "f" served by `workers`, over the transport under test.
  absl::StatusOr<Started> StartGatewayFor(const std::vector<const Started*>& workers,
                                          std::vector<std::string> flags = {}) {
    flags.insert(flags.begin(), {FunctionFlag("f", workers),
                                 absl::StrCat("--functions[0].transport=", GetParam())});
    return StartGateway(flags);
  }

  static absl::Status Connect(WsTestClient& client, const Started& gateway,
                              absl::string_view target = "/f") {
    return client.Connect("127.0.0.1", gateway.ready.Port("ws"), target, kIoTimeout);
  }

  static ::testing::AssertionResult Echoes(WsTestClient& client, const std::string& text,
                                           absl::Duration timeout = kEventTimeout) {
    if (absl::Status sent = client.SendText(text, kIoTimeout); !sent.ok()) {
      return ::testing::AssertionFailure() << "send '" << text << "': " << sent;
    }
    absl::StatusOr<WsMessage> reply = client.Read(timeout);
    if (!reply.ok()) return ::testing::AssertionFailure() << "reply to '" << text << "': " << reply.status();
    if (reply->data != text) {
      return ::testing::AssertionFailure() << "sent '" << text << "', got '" << reply->data << "'";
    }
    return ::testing::AssertionSuccess();
  }

  // Sends `text` and expects the gateway to close the client with `code`.
  static ::testing::AssertionResult ClosesWith(WsTestClient& client, const std::string& text,
                                               int code) {
    if (absl::Status sent = client.SendText(text, kIoTimeout); !sent.ok()) {
      return ::testing::AssertionFailure() << "send '" << text << "': " << sent;
    }
    absl::StatusOr<int> got = client.WaitForClose(kEventTimeout);
    if (!got.ok()) return ::testing::AssertionFailure() << "after '" << text << "': " << got.status();
    if (*got != code) {
      return ::testing::AssertionFailure() << "after '" << text << "': closed with " << *got
                                           << " (" << client.CloseReason() << "), want " << code;
    }
    return ::testing::AssertionSuccess();
  }

  // Polls /metrics until the deadline-error counter of `event` is at least 1.
  static ::testing::AssertionResult CountsDeadline(const Started& gateway, const std::string& event) {
    const std::string sample = absl::StrCat("fngate_event_errors_total{function=\"f\",event=\"",
                                            event, "\",kind=\"deadline\"}");
    absl::StatusOr<uint64_t> value;
    if (PollUntil([&] {
          value = ReadMetric(gateway, sample);
          return value.ok() && *value >= 1;
        },
        kEventTimeout)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << sample << ": " << (value.ok() ? absl::StrCat(*value) : value.status().ToString());
  }
};

TEST_P(FaultsE2eTest, EachEventKindHasItsDeadline) {
  // The worker takes 3 s over disconnect and error events, and over messages and connects
  // when asked. Deadlines are 1 s, connect 3 s: a stream is declared stalled only after the
  // longest of the connect and message deadlines, and none of this may look stalled.
  absl::StatusOr<Started> worker =
      StartFaultWorker("fault", {"--disconnect_sleep_ms=3000", "--error_sleep_ms=3000"});
  ASSERT_TRUE(IsOk(worker));
  absl::StatusOr<Started> gateway = StartGatewayFor(
      {&*worker}, {"--deadlines.connect_ms=3000", "--deadlines.message_ms=1000",
                   "--deadlines.disconnect_ms=1000", "--deadlines.error_ms=1000"});
  ASSERT_TRUE(IsOk(gateway));

  // A message past its deadline closes the client with 1011; its error event and then its
  // disconnect event run past theirs too (on a stream, they wait behind the slow message).
  WsTestClient client;
  ASSERT_TRUE(IsOk(Connect(client, *gateway)));
  ASSERT_TRUE(Echoes(client, "fast enough"));
  EXPECT_TRUE(ClosesWith(client, "sleep:2500", 1011));
  EXPECT_TRUE(CountsDeadline(*gateway, "message"));
  EXPECT_TRUE(CountsDeadline(*gateway, "error"));
  EXPECT_TRUE(CountsDeadline(*gateway, "disconnect"));

  // A connect past its deadline: HTTP 504.
  WsTestClient slow;
  absl::Status refused = Connect(slow, *gateway, "/f?connect_sleep=5000");
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_EQ(slow.HandshakeStatus(), 504);
  EXPECT_TRUE(CountsDeadline(*gateway, "connect"));
}

TEST_P(FaultsE2eTest, EventNoWorkerTookWaitsForOne) {
  absl::StatusOr<Started> first = StartFaultWorker("first");
  ASSERT_TRUE(IsOk(first));
  const int port = first->ready.Port("grpc");
  absl::StatusOr<Started> gateway = StartGatewayFor({&*first});
  ASSERT_TRUE(IsOk(gateway));
  WsTestClient client;
  absl::StatusOr<std::string> id = ConnectAndGetId(client, *gateway, *first, "/f");
  ASSERT_TRUE(IsOk(id));
  ASSERT_TRUE(Echoes(client, "before the kill"));

  ASSERT_TRUE(IsOk((*first)->Signal(SIGKILL)));
  ASSERT_TRUE(IsOk((*first)->Wait(kExitTimeout)));
  // Once the gateway knows (readiness says so): before that, a message may still be written to
  // the dead worker's connection, and then it counts as taken (it fails, 1013).
  ASSERT_TRUE(PollUntil(
      [&] {
        absl::StatusOr<test_support::HttpResponse> ready = test_support::HttpGet(
            "127.0.0.1", gateway->ready.Port("admin"), "/readyz", kIoTimeout);
        return ready.ok() && ready->status == 503;
      },
      kEventTimeout));
  // Sent while no worker exists: the gateway holds it (message deadline 10 s)...
  ASSERT_TRUE(IsOk(client.SendText("while no worker", kIoTimeout)));
  // ...until the replica comes back on its address.
  absl::StatusOr<Started> second =
      StartFaultWorker("second", {}, absl::StrCat("127.0.0.1:", port));
  ASSERT_TRUE(IsOk(second));
  absl::StatusOr<WsMessage> reply = client.Read(kEventTimeout);
  ASSERT_TRUE(IsOk(reply)) << (*gateway)->OutputTail();
  EXPECT_EQ(reply->data, "while no worker");

  // Barrier (see disconnect_e2e_test.cc), then: delivered exactly once.
  ASSERT_TRUE(IsOk(client.Close(1000, kIoTimeout)));
  ASSERT_TRUE(IsOk(WaitForEvents(*second, "disconnect", *id, 1)));
  EXPECT_TRUE(IsOk(Stop(*gateway)));
  EXPECT_TRUE(IsOk(Stop(*second)));
  EXPECT_EQ(Events(*second, "message", *id).size(), 1u) << (*second)->Output();
  EXPECT_TRUE(HasSingleDisconnect(Events(*second), *id, "CLIENT", 1000));
}

TEST_P(FaultsE2eTest, EventAWorkerTookIsNeverRepeated) {
  absl::StatusOr<Started> a = StartFaultWorker("a");
  ASSERT_TRUE(IsOk(a));
  absl::StatusOr<Started> b = StartFaultWorker("b");
  ASSERT_TRUE(IsOk(b));
  absl::StatusOr<Started> gateway = StartGatewayFor({&*a, &*b});
  ASSERT_TRUE(IsOk(gateway));

  WsTestClient client;
  ASSERT_TRUE(IsOk(Connect(client, *gateway)));
  ASSERT_TRUE(Echoes(client, "warm"));
  // The replica that takes "crash" exits while handling it.
  EXPECT_TRUE(ClosesWith(client, "crash", 1013));
  Started* crashed = nullptr;
  ASSERT_TRUE(PollUntil(
      [&] {
        for (Started* w : {&*a, &*b}) {
          if ((*w)->Wait(absl::Milliseconds(1)).ok()) crashed = w;
        }
        return crashed != nullptr;
      },
      kExitTimeout));
  Started* survivor = crashed == &*a ? &*b : &*a;
  std::vector<WorkerEvent> crash_messages = Events(*crashed, "message");
  ASSERT_FALSE(crash_messages.empty()) << (*crashed)->Output();
  const std::string id = crash_messages.back().conn;

  // The connection's disconnect goes to the survivor; after it, and the barrier, its log is
  // complete: the message the crashed replica took is nowhere else.
  ASSERT_TRUE(IsOk(WaitForEvents(*survivor, "disconnect", id, 1)));
  EXPECT_TRUE(IsOk(Stop(*gateway)));
  EXPECT_TRUE(IsOk(Stop(*survivor)));
  const size_t seen =
      Events(*crashed, "message", id).size() + Events(*survivor, "message", id).size();
  // "warm" and "crash", each handled once, by whichever replica took it.
  EXPECT_EQ(seen, 2u) << "crashed:\n" << (*crashed)->Output() << "survivor:\n" << (*survivor)->Output();
  EXPECT_EQ((*crashed)->CountOutput("FAULT crash"), 1);
}

TEST_P(FaultsE2eTest, FailedMessageClosesWithTheMatchingCode) {
  absl::StatusOr<Started> worker = StartFaultWorker("fault");
  ASSERT_TRUE(IsOk(worker));
  absl::StatusOr<Started> gateway = StartGatewayFor({&*worker});
  ASSERT_TRUE(IsOk(gateway));
  struct Case {
    std::string text;
    int close_code;
    int grpc_code;
  };
  for (const Case& c : {Case{"fail:14", 1013, kGrpcUnavailable},
                        Case{"fail:8", 1013, kGrpcResourceExhausted},
                        Case{"fail:13", 1011, kGrpcInternal}}) {
    WsTestClient client;
    absl::StatusOr<std::string> id = ConnectAndGetId(client, *gateway, *worker, "/f");
    ASSERT_TRUE(IsOk(id));
    EXPECT_TRUE(ClosesWith(client, c.text, c.close_code));
    ASSERT_TRUE(IsOk(WaitForEvents(*worker, "error", *id, 1)));
    std::vector<WorkerEvent> errors = Events(*worker, "error", *id);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].Field("failed"), "message");
    EXPECT_EQ(errors[0].Field("code"), absl::StrCat(c.grpc_code)) << errors[0].line;
  }
}

TEST_P(FaultsE2eTest, KeepOpenPolicyKeepsTheClient) {
  absl::StatusOr<Started> worker = StartFaultWorker("fault");
  ASSERT_TRUE(IsOk(worker));
  absl::StatusOr<Started> gateway = StartGatewayFor(
      {&*worker}, {"--functions[0].on_message_error=keep_open", "--deadlines.message_ms=1000"});
  ASSERT_TRUE(IsOk(gateway));
  WsTestClient client;
  absl::StatusOr<std::string> id = ConnectAndGetId(client, *gateway, *worker, "/f");
  ASSERT_TRUE(IsOk(id));
  // A function error, an unavailable answer and a deadline: each fires the error event, and
  // the next message is still echoed (it comes after, so nothing closed the client).
  int errors = 0;
  for (const std::string text : {"fail:13", "fail:14", "sleep:2000"}) {
    ASSERT_TRUE(IsOk(client.SendText(text, kIoTimeout)));
    ASSERT_TRUE(IsOk(WaitForEvents(*worker, "error", *id, ++errors))) << text;
    ASSERT_TRUE(Echoes(client, absl::StrCat("after ", text)));
  }
  std::vector<WorkerEvent> events = Events(*worker, "error", *id);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].Field("code"), absl::StrCat(kGrpcInternal));
  EXPECT_EQ(events[1].Field("code"), absl::StrCat(kGrpcUnavailable));
  EXPECT_EQ(events[2].Field("code"), absl::StrCat(kGrpcDeadlineExceeded));
  EXPECT_EQ(client.DroppedMessages(), 0);
  EXPECT_TRUE(IsOk(client.Close(1000, kIoTimeout)));
}

INSTANTIATE_TEST_SUITE_P(Transports, FaultsE2eTest, ::testing::Values("stream", "unary"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace fngate::e2e
