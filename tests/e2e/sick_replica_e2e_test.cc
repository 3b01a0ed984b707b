// End to end: a replica that accepts connections but fails every call (a fault worker made
// sick with SIGUSR1: it answers UNAVAILABLE) is taken out, so that traffic goes on without
// errors on the healthy one, and is tried again later: once healed (SIGUSR2) it gets events
// again. On both transports: the pool ejects it from the Events streams, gRPC's outlier
// detection from the unary calls.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"

namespace fngate::e2e {
namespace {

using test_support::CountWorkerEvents;
using test_support::WsMessage;
using test_support::WsTestClient;

// How long the ejection may take to show, and the healed replica to come back (ejections
// double while it stays sick, up to 30 s).
constexpr absl::Duration kEjectTimeout = absl::Seconds(30);
constexpr absl::Duration kReturnTimeout = absl::Seconds(45);
// Echoes in a row, all answered by the healthy replica, that show the sick one is out.
constexpr int kHealthyRun = 60;

class SickReplicaE2eTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<Started> a = StartFaultWorker("a");
    ASSERT_TRUE(IsOk(a));
    sick_ = *std::move(a);
    absl::StatusOr<Started> b = StartFaultWorker("b");
    ASSERT_TRUE(IsOk(b));
    healthy_ = *std::move(b);
    // Young streams, so that a replica back from ejection is soon given one again.
    absl::StatusOr<Started> gateway =
        StartGateway({FunctionFlag("f", {&sick_, &healthy_}),
                      absl::StrCat("--functions[0].transport=", GetParam()),
                      "--functions[0].stream_max_age_ms=1000"});
    ASSERT_TRUE(IsOk(gateway));
    gateway_ = *std::move(gateway);
    for (int i = 0; i < 8; ++i) clients_.push_back(std::make_unique<WsTestClient>());
  }

  // One echo on the next client, (re)connecting it first if it was closed. False when the
  // connect or the echo failed (the client is then closed and reconnects next time).
  bool Step() {
    std::unique_ptr<WsTestClient>& slot = clients_[next_++ % clients_.size()];
    if (!slot->IsOpen()) {
      slot = std::make_unique<WsTestClient>();
      if (!slot->Connect("127.0.0.1", gateway_.ready.Port("ws"), "/f", kIoTimeout).ok()) {
        return false;
      }
    }
    WsTestClient& client = *slot;
    const std::string text = absl::StrCat("m", next_);
    if (!client.SendText(text, kIoTimeout).ok()) return false;
    absl::StatusOr<WsMessage> reply = client.Read(kEventTimeout);
    return reply.ok() && reply->data == text;
  }

  static int Messages(const Started& worker) {
    return CountWorkerEvents(worker->Output(), "message");
  }

  Started sick_;
  Started healthy_;
  Started gateway_;
  std::vector<std::unique_ptr<WsTestClient>> clients_;
  size_t next_ = 0;
};

TEST_P(SickReplicaE2eTest, SickReplicaIsEjectedThenTriedAgain) {
  // Both replicas serve (bounded: streams opened before both were connected move within a
  // second or two).
  const absl::Time warm_until = absl::Now() + kEventTimeout;
  while ((Messages(sick_) == 0 || Messages(healthy_) == 0) && absl::Now() < warm_until) {
    ASSERT_TRUE(Step());
  }
  ASSERT_GT(Messages(sick_), 0);
  ASSERT_GT(Messages(healthy_), 0);

  ASSERT_TRUE(IsOk(sick_->Signal(SIGUSR1)));
  ASSERT_TRUE(IsOk(sick_->WaitForOutput("FAULT sick=1", kIoTimeout)));
  // Calls that reach the sick replica fail (it took them: they are not repeated), until it is
  // ejected; then a long run of echoes all succeed. Unary calls alternate between the replicas,
  // so after a failure only an ejection gives such a run. Streams stay on a replica for up to
  // their max age, so there a run alone proves nothing (every stream may sit on the healthy
  // one for a while): the pool's ejection counter must move first.
  const bool stream = GetParam() == "stream";
  bool ejected = !stream;
  int failures = 0;
  int run = 0;
  const absl::Time eject_until = absl::Now() + kEjectTimeout;
  for (int step = 0; (run < kHealthyRun || failures == 0 || !ejected) && absl::Now() < eject_until;
       ++step) {
    if (Step()) {
      ++run;
    } else {
      ++failures;
      run = 0;
    }
    if (!ejected && step % 16 == 0) {
      absl::StatusOr<uint64_t> ejections =
          ReadMetric(gateway_, "fngate_worker_ejections_total{function=\"f\"}");
      ejected = ejections.ok() && *ejections >= 1;
      if (ejected) run = 0;  // Count the run from the ejection on.
    }
  }
  RecordProperty("failures_before_ejection", failures);
  ASSERT_TRUE(ejected) << "no ejection within " << kEjectTimeout << "\n" << gateway_->OutputTail();
  ASSERT_GT(failures, 0) << "the sick replica was never called";
  ASSERT_EQ(run, kHealthyRun) << failures << " failures, and no run of " << kHealthyRun
                              << " echoes within " << kEjectTimeout << "\n"
                              << gateway_->OutputTail();
  if (stream) {
    EXPECT_TRUE(IsOk(gateway_->WaitForOutput("ejected for", kIoTimeout)));
  }

  // Healed, it is tried again and takes events again.
  ASSERT_TRUE(IsOk(sick_->Signal(SIGUSR2)));
  ASSERT_TRUE(IsOk(sick_->WaitForOutput("FAULT sick=0", kIoTimeout)));
  const int before = Messages(sick_);
  const absl::Time return_until = absl::Now() + kReturnTimeout;
  while (Messages(sick_) == before && absl::Now() < return_until) Step();
  EXPECT_GT(Messages(sick_), before) << "the healed replica got no message within "
                                     << kReturnTimeout;
  // Both serve: no call fails any more.
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(Step()) << "echo " << i << " after healing";
}

INSTANTIATE_TEST_SUITE_P(Transports, SickReplicaE2eTest, ::testing::Values("stream", "unary"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace fngate::e2e
