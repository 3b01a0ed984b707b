// End to end: the admin HTTP port. /healthz answers "ok"; /readyz is 200 while the function has
// a reachable worker and 503 once it has none; /metrics is Prometheus text that counts what
// happened.
#include <signal.h>

#include <string>

#include "absl/strings/ascii.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_cluster.h"
#include "tests/support/http_get.h"

namespace fngate::e2e {
namespace {

using test_support::HttpGet;
using test_support::HttpResponse;
using test_support::WsMessage;
using test_support::WsTestClient;
using ::testing::HasSubstr;

class AdminE2eTest : public EchoClusterTest {
 protected:
  absl::StatusOr<HttpResponse> Get(const std::string& path) {
    return HttpGet("127.0.0.1", gateway_.ready.Port("admin"), path, kIoTimeout);
  }

  // Polls `path` until it answers `status` (readiness follows worker health asynchronously).
  ::testing::AssertionResult EventuallyAnswers(const std::string& path, int status) {
    absl::StatusOr<HttpResponse> last;
    bool reached = PollUntil(
        [&] {
          last = Get(path);
          return last.ok() && last->status == status;
        },
        kEventTimeout);
    if (reached) return ::testing::AssertionSuccess();
    ::testing::AssertionResult failure = ::testing::AssertionFailure();
    failure << path << " never answered " << status << "; last: ";
    if (last.ok()) {
      failure << last->status << " '" << last->body << "'";
    } else {
      failure << last.status();
    }
    return failure;
  }

};

TEST_F(AdminE2eTest, HealthzIsOk) {
  absl::StatusOr<HttpResponse> response = Get("/healthz");
  ASSERT_TRUE(IsOk(response));
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(absl::StripAsciiWhitespace(response->body), "ok");
}

TEST_F(AdminE2eTest, ReadyzFollowsWorkerReachability) {
  EXPECT_TRUE(EventuallyAnswers("/readyz", 200));
  ASSERT_TRUE(IsOk(worker_->Signal(SIGKILL)));
  ASSERT_TRUE(IsOk(worker_->Wait(kExitTimeout)));
  EXPECT_TRUE(EventuallyAnswers("/readyz", 503));
  // Liveness is not readiness: the process itself is healthy.
  absl::StatusOr<HttpResponse> health = Get("/healthz");
  ASSERT_TRUE(IsOk(health));
  EXPECT_EQ(health->status, 200);
}

TEST_F(AdminE2eTest, MetricsArePrometheusTextAndCountTraffic) {
  WsTestClient client;
  ASSERT_TRUE(IsOk(client.Connect("127.0.0.1", gateway_.ready.Port("ws"), "/echo", kIoTimeout)));
  ASSERT_TRUE(IsOk(client.SendText("counted", kIoTimeout)));
  absl::StatusOr<WsMessage> reply = client.Read(kIoTimeout);
  ASSERT_TRUE(IsOk(reply));

  absl::StatusOr<HttpResponse> metrics = Get("/metrics");
  ASSERT_TRUE(IsOk(metrics));
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->content_type, HasSubstr("text/plain"));
  EXPECT_THAT(metrics->body, HasSubstr("# TYPE "));
  // Connections are counted by function.
  EXPECT_THAT(metrics->body, HasSubstr("echo")) << metrics->body;
}

}  // namespace
}  // namespace fngate::e2e
