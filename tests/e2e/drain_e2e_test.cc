// End to end: disconnect events are never lost to a worker hiccup, and a drain ends in time.
// - Clients leave while the only worker is killed (SIGKILL) and restarted on its address: every
//   disconnect the dead worker did not confirm reaches the new one, exactly once (both
//   transports).
// - A disconnect no worker confirms before its deadline is logged with its connection id and
//   counted in fngate_disconnects_lost_total.
// - SIGTERM with a worker too slow to answer disconnects: clients get 1001, the gateway stops
//   when the drain grace runs out, exits 0, and names every connection whose disconnect it
//   could not confirm. A second signal stops it without waiting for the grace.
// - A worker's own drain with a handler still running past its grace ends in exit code 0.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::WsTestClient;

struct Connected {
  std::unique_ptr<WsTestClient> client;
  std::string id;
};

// Opens `n` connections to /f, one at a time (ConnectAndGetId matches them to worker ids).
std::vector<Connected> OpenConnections(int n, const Started& gateway, const Started& worker) {
  std::vector<Connected> out;
  for (int i = 0; i < n; ++i) {
    Connected c{std::make_unique<WsTestClient>(), ""};
    absl::StatusOr<std::string> id = ConnectAndGetId(*c.client, gateway, worker, "/f");
    EXPECT_TRUE(IsOk(id)) << "connection " << i;
    if (!id.ok()) break;
    c.id = *id;
    out.push_back(std::move(c));
  }
  return out;
}

int CountDisconnects(const Started& worker, const std::string& id) {
  return static_cast<int>(Events(worker, "disconnect", id).size());
}

class DisconnectRetryE2eTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DisconnectRetryE2eTest, DisconnectsSurviveAWorkerRestart) {
  constexpr int kConnections = 16;
  absl::StatusOr<Started> first = StartFaultWorker("first");
  ASSERT_TRUE(IsOk(first));
  const std::string address = absl::StrCat("127.0.0.1:", first->ready.Port("grpc"));
  absl::StatusOr<Started> gateway =
      StartGateway({absl::StrCat("--function=f=", address),
                    absl::StrCat("--functions[0].transport=", GetParam())});
  ASSERT_TRUE(IsOk(gateway));
  std::vector<Connected> conns = OpenConnections(kConnections, *gateway, *first);
  ASSERT_EQ(conns.size(), static_cast<size_t>(kConnections));

  // Half leave before the kill (the worker may or may not confirm theirs before it dies),
  // half while no worker exists.
  for (int i = 0; i < kConnections / 2; ++i) {
    ASSERT_TRUE(IsOk(conns[i].client->Close(1000, kIoTimeout)));
  }
  ASSERT_TRUE(IsOk((*first)->Signal(SIGKILL)));
  ASSERT_TRUE(IsOk((*first)->Wait(kExitTimeout)));
  for (int i = kConnections / 2; i < kConnections; ++i) {
    ASSERT_TRUE(IsOk(conns[i].client->Close(1000, kIoTimeout)));
  }
  // Within the disconnect deadline (10 s), the replica is back on its address.
  absl::StatusOr<Started> second = StartFaultWorker("second", {}, address);
  ASSERT_TRUE(IsOk(second));
  for (int i = kConnections / 2; i < kConnections; ++i) {
    ASSERT_TRUE(IsOk(WaitForEvents(*second, "disconnect", conns[i].id, 1)))
        << (*gateway)->OutputTail();
  }
  // The ones the first worker logged may have been unconfirmed and sent again: wait until
  // each connection's disconnect is somewhere.
  for (int i = 0; i < kConnections / 2; ++i) {
    EXPECT_TRUE(PollUntil(
        [&] { return CountDisconnects(*first, conns[i].id) + CountDisconnects(*second, conns[i].id) > 0; },
        kEventTimeout))
        << conns[i].id;
  }
  absl::StatusOr<uint64_t> lost = ReadMetric(*gateway, "fngate_disconnects_lost_total{function=\"f\"}");
  ASSERT_TRUE(IsOk(lost));
  EXPECT_EQ(*lost, 0);

  // Barrier: then the logs are complete.
  EXPECT_TRUE(IsOk(Stop(*gateway)));
  EXPECT_TRUE(IsOk(Stop(*second)));
  for (int i = 0; i < kConnections; ++i) {
    const Connected& c = conns[i];
    if (i >= kConnections / 2) {
      // Left while no worker existed: exactly once, at the new worker.
      EXPECT_EQ(CountDisconnects(*first, c.id), 0) << c.id;
      EXPECT_TRUE(HasSingleDisconnect(Events(*second), c.id, "CLIENT", 1000)) << c.id;
    } else {
      // Left before the kill: at most once at each worker, at least once in all.
      EXPECT_LE(CountDisconnects(*first, c.id), 1) << c.id;
      EXPECT_LE(CountDisconnects(*second, c.id), 1) << c.id;
    }
  }
}

// A disconnect the worker took but never confirmed (it dies in the handler) is sent again, to
// the replica restarted in its place, with the same request id: a worker can tell a repeat.
TEST_P(DisconnectRetryE2eTest, DisconnectTakenByAWorkerThatDiesIsSentAgain) {
  absl::StatusOr<Started> first = StartFaultWorker("first", {"--disconnect_sleep_ms=60000"});
  ASSERT_TRUE(IsOk(first));
  const std::string address = absl::StrCat("127.0.0.1:", first->ready.Port("grpc"));
  absl::StatusOr<Started> gateway =
      StartGateway({absl::StrCat("--function=f=", address),
                    absl::StrCat("--functions[0].transport=", GetParam())});
  ASSERT_TRUE(IsOk(gateway));
  std::vector<Connected> conns = OpenConnections(1, *gateway, *first);
  ASSERT_EQ(conns.size(), 1u);
  const std::string& id = conns[0].id;

  ASSERT_TRUE(IsOk(conns[0].client->Close(1000, kIoTimeout)));
  ASSERT_TRUE(IsOk(WaitForEvents(*first, "disconnect", id, 1)));  // Taken; now in its handler.
  ASSERT_TRUE(IsOk((*first)->Signal(SIGKILL)));
  ASSERT_TRUE(IsOk((*first)->Wait(kExitTimeout)));
  absl::StatusOr<Started> second = StartFaultWorker("second", {}, address);
  ASSERT_TRUE(IsOk(second));
  ASSERT_TRUE(IsOk(WaitForEvents(*second, "disconnect", id, 1))) << (*gateway)->OutputTail();

  EXPECT_TRUE(IsOk(Stop(*gateway)));
  EXPECT_TRUE(IsOk(Stop(*second)));
  EXPECT_TRUE(HasSingleDisconnect(Events(*second), id, "CLIENT", 1000));
  EXPECT_EQ(Events(*second, "disconnect", id)[0].Field("request"),
            Events(*first, "disconnect", id)[0].Field("request"));
}

// A worker that answers a disconnect with UNAVAILABLE gets it again, with backoff, until it
// confirms one (here: once it is healed), within the deadline. Nothing is lost.
TEST_P(DisconnectRetryE2eTest, DisconnectAnsweredUnavailableIsSentAgain) {
  absl::StatusOr<Started> worker = StartFaultWorker("only");
  ASSERT_TRUE(IsOk(worker));
  absl::StatusOr<Started> gateway =
      StartGateway({FunctionFlag("f", {&*worker}),
                    absl::StrCat("--functions[0].transport=", GetParam())});
  ASSERT_TRUE(IsOk(gateway));
  std::vector<Connected> conns = OpenConnections(1, *gateway, *worker);
  ASSERT_EQ(conns.size(), 1u);
  const std::string& id = conns[0].id;

  ASSERT_TRUE(IsOk((*worker)->Signal(SIGUSR1)));
  ASSERT_TRUE(IsOk((*worker)->WaitForOutput("FAULT sick=1", kIoTimeout)));
  ASSERT_TRUE(IsOk(conns[0].client->Close(1000, kIoTimeout)));
  // Refused twice: the gateway is retrying.
  ASSERT_TRUE(IsOk(WaitForEvents(*worker, "disconnect", id, 2)));
  ASSERT_TRUE(IsOk((*worker)->Signal(SIGUSR2)));
  ASSERT_TRUE(IsOk((*worker)->WaitForOutput("FAULT sick=0", kIoTimeout)));
  // Once healed, an attempt is confirmed: the disconnect call completes, OK, nothing lost.
  absl::StatusOr<uint64_t> completed;
  EXPECT_TRUE(PollUntil(
      [&] {
        completed = ReadMetric(
            *gateway, "fngate_event_call_seconds_count{function=\"f\",event=\"disconnect\"}");
        return completed.ok() && *completed >= 1;
      },
      kEventTimeout));
  absl::StatusOr<uint64_t> lost =
      ReadMetric(*gateway, "fngate_disconnects_lost_total{function=\"f\"}");
  ASSERT_TRUE(IsOk(lost));
  EXPECT_EQ(*lost, 0);
  EXPECT_TRUE(IsOk(Stop(*gateway)));
  EXPECT_TRUE(IsOk(Stop(*worker)));
  // Every attempt was the same event.
  std::vector<test_support::WorkerEvent> attempts = Events(*worker, "disconnect", id);
  ASSERT_GE(attempts.size(), 2u);
  for (const auto& attempt : attempts) {
    EXPECT_EQ(attempt.Field("request"), attempts[0].Field("request")) << attempt.line;
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, DisconnectRetryE2eTest, ::testing::Values("stream", "unary"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(DrainE2eTest, DisconnectNoWorkerConfirmsIsLoggedAndCounted) {
  absl::StatusOr<Started> worker = StartFaultWorker("only");
  ASSERT_TRUE(IsOk(worker));
  absl::StatusOr<Started> gateway =
      StartGateway({FunctionFlag("f", {&*worker}), "--deadlines.disconnect_ms=1500"});
  ASSERT_TRUE(IsOk(gateway));
  std::vector<Connected> conns = OpenConnections(2, *gateway, *worker);
  ASSERT_EQ(conns.size(), 2u);

  ASSERT_TRUE(IsOk((*worker)->Signal(SIGKILL)));
  ASSERT_TRUE(IsOk((*worker)->Wait(kExitTimeout)));
  for (Connected& c : conns) ASSERT_TRUE(IsOk(c.client->Close(1000, kIoTimeout)));

  for (const Connected& c : conns) {
    EXPECT_TRUE(IsOk((*gateway)->WaitForOutput(
        absl::StrCat("[conn=", c.id, "] disconnect event lost"), kEventTimeout)));
  }
  absl::StatusOr<uint64_t> lost;
  EXPECT_TRUE(PollUntil(
      [&] {
        lost = ReadMetric(*gateway, "fngate_disconnects_lost_total{function=\"f\"}");
        return lost.ok() && *lost >= 2;
      },
      kEventTimeout));
  ASSERT_TRUE(IsOk(lost));
  EXPECT_EQ(*lost, 2);
  EXPECT_TRUE(IsOk(Stop(*gateway)));
}

// A worker's drain while a handler runs past the worker's grace (5 s): its call is cancelled
// at the grace, the worker waits for the handler to return (which then starts a read and a
// write on the cancelled stream), and exits 0. Regression: the worker shut its completion
// queue down as soon as the server's shutdown returned, and that late write aborted it.
TEST(DrainE2eTest, WorkerHandlerRunningPastTheGraceStillEndsInACleanExit) {
  absl::StatusOr<Started> worker = StartFaultWorker("slow");
  ASSERT_TRUE(IsOk(worker));
  absl::StatusOr<Started> gateway =
      StartGateway({FunctionFlag("f", {&*worker}), "--deadlines.message_ms=20000"});
  ASSERT_TRUE(IsOk(gateway));
  WsTestClient client;
  absl::StatusOr<std::string> id = ConnectAndGetId(client, *gateway, *worker, "/f");
  ASSERT_TRUE(IsOk(id));
  ASSERT_TRUE(IsOk(client.SendText("sleep:6500", kIoTimeout)));
  ASSERT_TRUE(IsOk(WaitForEvents(*worker, "message", *id, 1)));  // Logged as the handler starts.

  ASSERT_TRUE(IsOk((*worker)->Signal(SIGTERM)));
  absl::StatusOr<int> exit_code = (*worker)->Wait(kExitTimeout);
  ASSERT_TRUE(IsOk(exit_code));
  EXPECT_EQ(*exit_code, 0) << (*worker)->OutputTail();
  EXPECT_FALSE(absl::StrContains((*worker)->OutputTail(), "assertion failed"))
      << (*worker)->OutputTail();
  // The gateway's own drain would wait for disconnect events no worker can confirm now.
  ASSERT_TRUE(IsOk((*gateway)->Signal(SIGKILL)));
}

// A drain answers what it already read before it says goodbye: an envelope client whose
// message is with the worker when SIGTERM comes gets the message's ack, then 1001.
TEST(DrainE2eTest, MessageInFlightIsAckedBeforeTheGoingAwayClose) {
  absl::StatusOr<Started> worker = StartFaultWorker("slow");
  ASSERT_TRUE(IsOk(worker));
  absl::StatusOr<Started> gateway = StartGateway({FunctionFlag("f", {&*worker})});
  ASSERT_TRUE(IsOk(gateway));
  WsTestClient client;
  test_support::WsConnectOptions envelope;
  envelope.subprotocols = {"fngate.v1"};
  ASSERT_TRUE(IsOk(client.Connect("127.0.0.1", gateway->ready.Port("ws"), "/f", kIoTimeout,
                                  envelope)));
  absl::StatusOr<test_support::WsMessage> open = client.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(open));
  ASSERT_NE(open->data.find("\"type\":\"open\""), std::string::npos) << open->data;

  ASSERT_TRUE(IsOk(client.SendText(R"({"type":"message","data":"sleep:1000","ack":7})", kIoTimeout)));
  ASSERT_TRUE(IsOk((*worker)->WaitForOutput("EVENT kind=message", kEventTimeout)));
  ASSERT_TRUE(IsOk((*gateway)->Signal(SIGTERM)));
  // The echo, then the ack; only then the close.
  bool acked = false;
  while (!acked) {
    absl::StatusOr<test_support::WsMessage> frame = client.Read(kEventTimeout);
    ASSERT_TRUE(IsOk(frame)) << "close " << client.CloseCode().value_or(0) << " before the ack";
    acked = frame->data == R"({"type":"ack","id":7,"ok":true})";
  }
  absl::StatusOr<int> code = client.WaitForClose(kEventTimeout);
  ASSERT_TRUE(IsOk(code));
  EXPECT_EQ(*code, 1001);
  absl::StatusOr<int> exit_code = (*gateway)->Wait(kExitTimeout);
  ASSERT_TRUE(IsOk(exit_code));
  EXPECT_EQ(*exit_code, 0);
}

// A worker that takes 5 s over each disconnect, a drain grace of 1.5 s.
class SlowDisconnectDrainTest : public ::testing::Test {
 protected:
  void Start(const std::string& grace_ms) {
    absl::StatusOr<Started> worker = StartFaultWorker("slow", {"--disconnect_sleep_ms=5000"});
    ASSERT_TRUE(IsOk(worker));
    worker_ = *std::move(worker);
    absl::StatusOr<Started> gateway =
        StartGateway({FunctionFlag("f", {&worker_}), absl::StrCat("--drain_grace_ms=", grace_ms)});
    ASSERT_TRUE(IsOk(gateway));
    gateway_ = *std::move(gateway);
    conns_ = OpenConnections(3, gateway_, worker_);
    ASSERT_EQ(conns_.size(), 3u);
    // The worker needs no more than its own grace to stop after the test.
    worker_->set_term_grace(absl::Seconds(1));
  }

  void ExpectEveryClientGot1001() {
    for (Connected& c : conns_) {
      absl::StatusOr<int> code = c.client->WaitForClose(kEventTimeout);
      ASSERT_TRUE(IsOk(code)) << c.id;
      EXPECT_EQ(*code, 1001) << c.id;
    }
  }

  Started worker_;
  Started gateway_;
  std::vector<Connected> conns_;
};

TEST_F(SlowDisconnectDrainTest, GraceRunsOutAndEveryUnconfirmedDisconnectIsNamed) {
  Start("1500");
  ASSERT_TRUE(IsOk(gateway_->Signal(SIGTERM)));
  ExpectEveryClientGot1001();
  absl::StatusOr<int> exit_code = gateway_->Wait(kExitTimeout);
  ASSERT_TRUE(IsOk(exit_code)) << gateway_->OutputTail();
  EXPECT_EQ(*exit_code, 0) << gateway_->OutputTail();
  const std::string output = gateway_->Output();
  EXPECT_NE(output.find("drain grace ran out"), std::string::npos) << output;
  // The worker got them (it logs before its slow handler), but confirmed none in time: each is
  // reported by connection id.
  for (const Connected& c : conns_) {
    EXPECT_NE(output.find(absl::StrCat("[conn=", c.id, "] disconnect event lost")),
              std::string::npos)
        << c.id << "\n" << output;
  }
  EXPECT_TRUE(IsOk(worker_->WaitForOutput("EVENT kind=disconnect", kIoTimeout)));
}

// A connection whose message is stuck in the worker cannot even send its disconnect before
// the grace runs out; it is reported all the same.
TEST_F(SlowDisconnectDrainTest, GraceRunsOutWithAMessageStuckInTheWorker) {
  Start("1500");
  ASSERT_TRUE(IsOk(conns_[0].client->SendText("sleep:20000", kIoTimeout)));
  ASSERT_TRUE(IsOk(worker_->WaitForOutput(
      [&](absl::string_view out) {
        return test_support::CountWorkerEvents(out, "message", conns_[0].id) == 1;
      },
      kEventTimeout)));
  ASSERT_TRUE(IsOk(gateway_->Signal(SIGTERM)));
  ExpectEveryClientGot1001();
  absl::StatusOr<int> exit_code = gateway_->Wait(kExitTimeout);
  ASSERT_TRUE(IsOk(exit_code)) << gateway_->OutputTail();
  EXPECT_EQ(*exit_code, 0) << gateway_->OutputTail();
  const std::string output = gateway_->Output();
  for (const Connected& c : conns_) {
    EXPECT_NE(output.find(absl::StrCat("[conn=", c.id, "] disconnect event lost")),
              std::string::npos)
        << c.id << "\n" << output;
  }
}

TEST_F(SlowDisconnectDrainTest, SecondSignalStopsWithoutWaitingForTheGrace) {
  Start("600000");  // Ten minutes: only the second signal can end it within the test.
  ASSERT_TRUE(IsOk(gateway_->Signal(SIGTERM)));
  ExpectEveryClientGot1001();
  ASSERT_TRUE(IsOk(worker_->WaitForOutput("EVENT kind=disconnect", kEventTimeout)));
  ASSERT_TRUE(IsOk(gateway_->Signal(SIGTERM)));
  absl::StatusOr<int> exit_code = gateway_->Wait(kExitTimeout);
  ASSERT_TRUE(IsOk(exit_code)) << gateway_->OutputTail();
  EXPECT_EQ(*exit_code, 0);
  EXPECT_TRUE(IsOk(gateway_->WaitForOutput("second stop request", kIoTimeout)));
  for (const Connected& c : conns_) {
    EXPECT_TRUE(IsOk(gateway_->WaitForOutput(
        absl::StrCat("[conn=", c.id, "] disconnect event lost"), kIoTimeout)));
  }
}

}  // namespace
}  // namespace fngate::e2e
