// End to end: one function served by two echo worker replicas behind a round-robin target.
// Both receive calls; with one killed the other takes every new call; with none left a message
// closes the client with 1013 (try again later), a new connection gets HTTP 503, and nothing
// hangs.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::CountWorkerEvents;
using test_support::WsMessage;
using test_support::WsTestClient;

class ReplicasE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Started> a = StartEchoWorker("echo-a");
    ASSERT_TRUE(IsOk(a));
    worker_a_ = *std::move(a);
    absl::StatusOr<Started> b = StartEchoWorker("echo-b");
    ASSERT_TRUE(IsOk(b));
    worker_b_ = *std::move(b);
    // Short deadlines: a call to a dead worker must not hold the test for long.
    absl::StatusOr<Started> gateway =
        StartGateway({FunctionFlag("echo", {&worker_a_, &worker_b_}), "--deadlines.connect_ms=3000",
                      "--deadlines.message_ms=3000"});
    ASSERT_TRUE(IsOk(gateway));
    gateway_ = *std::move(gateway);
  }

  absl::Status Connect(WsTestClient& client) {
    return client.Connect("127.0.0.1", gateway_.ready.Port("ws"), "/echo", kIoTimeout);
  }

  // Sends `text` and expects it echoed.
  ::testing::AssertionResult Echoes(WsTestClient& client, const std::string& text) {
    if (absl::Status sent = client.SendText(text, kIoTimeout); !sent.ok()) {
      return ::testing::AssertionFailure() << "send '" << text << "': " << sent;
    }
    absl::StatusOr<WsMessage> reply = client.Read(kEventTimeout);
    if (!reply.ok()) return ::testing::AssertionFailure() << "reply to '" << text << "': " << reply.status();
    if (reply->data != text) {
      return ::testing::AssertionFailure() << "sent '" << text << "', got '" << reply->data << "'";
    }
    return ::testing::AssertionSuccess();
  }

  static int Messages(const Started& worker) {
    return CountWorkerEvents(worker->Output(), "message");
  }

  static void Kill(Started& worker) {
    ASSERT_TRUE(IsOk(worker->Signal(SIGKILL)));
    absl::StatusOr<int> code = worker->Wait(kExitTimeout);
    ASSERT_TRUE(IsOk(code));
    EXPECT_EQ(*code, 128 + SIGKILL);
  }

  Started worker_a_;
  Started worker_b_;
  Started gateway_;
};

TEST_F(ReplicasE2eTest, BothReplicasReceiveCalls) {
  std::vector<std::unique_ptr<WsTestClient>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<WsTestClient>());
    ASSERT_TRUE(IsOk(Connect(*clients.back())));
  }
  // Round robin spreads calls and streams over both. Streams opened while only one replica
  // was connected move within a second or two (they retire young), so traffic goes on until
  // both have logged a message event, bounded in time.
  const absl::Time give_up = absl::Now() + kEventTimeout;
  for (int round = 0; absl::Now() < give_up; ++round) {
    for (size_t i = 0; i < clients.size(); ++i) {
      ASSERT_TRUE(Echoes(*clients[i], absl::StrCat("round ", round, " client ", i)));
    }
    if (Messages(worker_a_) > 0 && Messages(worker_b_) > 0) break;
  }
  // Every echo above was answered, so each worker's message lines are written; they may still
  // be in the pipe.
  EXPECT_TRUE(IsOk(worker_a_->WaitForOutput("EVENT kind=message", kEventTimeout)));
  EXPECT_TRUE(IsOk(worker_b_->WaitForOutput("EVENT kind=message", kEventTimeout)));
}

// A replica that becomes ready only after the gateway has been serving for a while (slow
// start, restart, scale-out: "scaling workers is adding replicas") must get its share of new
// calls too. Worker b is stopped (SIGSTOP) while a fresh gateway starts and serves 32
// connections, so at that time only a can answer; then b continues.
TEST_F(ReplicasE2eTest, LateReplicaAlsoReceivesCalls) {
  ASSERT_TRUE(IsOk(worker_b_->Signal(SIGSTOP)));
  absl::Cleanup resume = [this] { worker_b_->Signal(SIGCONT).IgnoreError(); };
  // A fresh gateway: the fixture's one may already have reached b.
  ASSERT_TRUE(IsOk(Stop(gateway_)));
  // Event streams stay on the replica they opened on until they are this old; then new ones
  // are spread over the replicas there are now. (Unary calls are balanced per call.)
  absl::StatusOr<Started> gateway = StartGateway(
      {FunctionFlag("echo", {&worker_a_, &worker_b_}), "--functions[0].stream_max_age_ms=200"});
  ASSERT_TRUE(IsOk(gateway));
  gateway_ = *std::move(gateway);

  // Enough traffic while b is stopped that every channel or stream the gateway keeps to the
  // function has been used, i.e. opened to a.
  std::vector<std::unique_ptr<WsTestClient>> early;
  for (int i = 0; i < 32; ++i) {
    early.push_back(std::make_unique<WsTestClient>());
    ASSERT_TRUE(IsOk(Connect(*early.back()))) << "early connection " << i;
    ASSERT_TRUE(Echoes(*early.back(), absl::StrCat("early ", i, ", b stopped")));
  }
  ASSERT_EQ(Messages(worker_b_), 0);
  ASSERT_TRUE(IsOk(worker_b_->Signal(SIGCONT)));

  // Then new connections and messages; bounded, ends once b has logged a message.
  std::vector<std::unique_ptr<WsTestClient>> late;
  const absl::Time give_up = absl::Now() + kIoTimeout;
  for (int round = 0; absl::Now() < give_up && Messages(worker_b_) == 0; ++round) {
    if (late.size() >= 64) late.erase(late.begin());  // Bounded: sockets and time.
    late.push_back(std::make_unique<WsTestClient>());
    ASSERT_TRUE(IsOk(Connect(*late.back())));
    ASSERT_TRUE(Echoes(*late.back(), absl::StrCat("late, round ", round)));
    for (size_t i = 0; i < early.size(); i += 8) {
      ASSERT_TRUE(Echoes(*early[i], absl::StrCat("early ", i, ", round ", round)));
    }
  }
  EXPECT_TRUE(IsOk(worker_b_->WaitForOutput("EVENT kind=message", kIoTimeout)))
      << "replica b, ready only after the gateway's first calls, never got a message";
}

// A replica told to stop (SIGTERM, as in a rolling restart) tells the gateway it is
// draining: the gateway sends it nothing new, and it answers what it already has. Traffic that
// goes on throughout loses nothing, and the replica exits as soon as its streams are done.
TEST_F(ReplicasE2eTest, DrainingReplicaLosesNothing) {
  std::vector<std::unique_ptr<WsTestClient>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<WsTestClient>());
    ASSERT_TRUE(IsOk(Connect(*clients.back())));
  }
  for (int round = 0; round < 3; ++round) {
    for (auto& client : clients) ASSERT_TRUE(Echoes(*client, absl::StrCat("before ", round)));
  }
  ASSERT_GT(Messages(worker_a_), 0) << "the test needs traffic on both replicas";
  ASSERT_GT(Messages(worker_b_), 0) << "the test needs traffic on both replicas";

  ASSERT_TRUE(IsOk(worker_a_->Signal(SIGTERM)));
  // Until a has exited (bounded), every message must still be answered.
  const absl::Time give_up = absl::Now() + kExitTimeout;
  absl::StatusOr<int> exit_code = absl::DeadlineExceededError("not yet");
  for (int round = 0; !exit_code.ok() && absl::Now() < give_up; ++round) {
    for (auto& client : clients) {
      ASSERT_TRUE(Echoes(*client, absl::StrCat("during the drain ", round)));
    }
    exit_code = worker_a_->Wait(absl::Milliseconds(1));
  }
  ASSERT_TRUE(IsOk(exit_code)) << "replica a did not exit while draining";
  EXPECT_EQ(*exit_code, 0);
  for (auto& client : clients) ASSERT_TRUE(Echoes(*client, "after the drain"));
}

TEST_F(ReplicasE2eTest, OneReplicaKilledTheOtherTakesOver) {
  WsTestClient before;
  ASSERT_TRUE(IsOk(Connect(before)));
  ASSERT_TRUE(Echoes(before, "before the kill"));

  Kill(worker_a_);

  // A call racing the gateway's discovery of the death may fail (1013/503: the gateway cannot
  // tell whether a worker took it, so it must not repeat it). Fresh probe connections show when
  // the gateway has noticed; it must within a few seconds.
  int casualties = 0;
  bool failed_over = PollUntil(
      [&] {
        WsTestClient probe;
        if (Connect(probe).ok() && Echoes(probe, "probe")) return true;
        ++casualties;
        return false;
      },
      kIoTimeout);
  ASSERT_TRUE(failed_over) << "no connection worked within " << kIoTimeout << " of the kill";
  RecordProperty("casualties_while_failing_over", casualties);
  const int b_messages = Messages(worker_b_);

  // From now on nothing may fail: the connection opened before the kill keeps working...
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Echoes(before, absl::StrCat("after the kill ", i)));
  // ...and new connections open and work.
  for (int c = 0; c < 5; ++c) {
    WsTestClient client;
    ASSERT_TRUE(IsOk(Connect(client))) << "connection " << c << " after the kill";
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(Echoes(client, absl::StrCat("new ", c, " msg ", i)));
  }
  // All 20 of them went to the survivor.
  EXPECT_TRUE(IsOk(worker_b_->WaitForOutput(
      [&](absl::string_view output) {
        return CountWorkerEvents(output, "message") >= b_messages + 20;
      },
      kEventTimeout)));
}

TEST_F(ReplicasE2eTest, NoReplicaLeftCloses1013AndRefuses503) {
  WsTestClient client;
  ASSERT_TRUE(IsOk(Connect(client)));
  ASSERT_TRUE(Echoes(client, "while the workers live"));

  Kill(worker_a_);
  Kill(worker_b_);

  ASSERT_TRUE(IsOk(client.SendText("nobody to answer", kIoTimeout)));
  absl::StatusOr<int> code = client.WaitForClose(kEventTimeout);
  ASSERT_TRUE(IsOk(code)) << "client not closed; gateway output:\n" << gateway_->OutputTail();
  EXPECT_EQ(*code, 1013);
  EXPECT_EQ(client.DroppedMessages(), 0);

  // A connect event cannot be delivered either: refused at the handshake with 503.
  WsTestClient late;
  absl::Status status = late.Connect("127.0.0.1", gateway_.ready.Port("ws"), "/echo", kEventTimeout);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_EQ(late.HandshakeStatus(), 503);

  // The gateway itself is fine and still shuts down cleanly.
  EXPECT_TRUE(IsOk(Stop(gateway_)));
}

}  // namespace
}  // namespace fngate::e2e
