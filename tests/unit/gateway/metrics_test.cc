#include "gateway/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fngate::gateway {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, RendersPrometheusText) {
  Metrics metrics({"echo"});
  metrics.function(0).messages_in += 1234567;  // Large counters stay exact integers.
  metrics.function(0).call_latency[static_cast<int>(EventKind::kMessage)].Observe(
      std::chrono::microseconds(300));
  metrics.CountClose(1000);
  metrics.CountClose(1000);
  metrics.CountHandshakeRefusal(404);
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("fngate_messages_in_total{function=\"echo\"} 1234567\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE fngate_event_call_seconds histogram"));
  EXPECT_THAT(text, HasSubstr(
      "fngate_event_call_seconds_bucket{function=\"echo\",event=\"message\",le=\"0.00025\"} 0\n"));
  EXPECT_THAT(text, HasSubstr(
      "fngate_event_call_seconds_bucket{function=\"echo\",event=\"message\",le=\"0.0005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr(
      "fngate_event_call_seconds_count{function=\"echo\",event=\"message\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("fngate_closes_total{code=\"1000\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("fngate_handshake_refusals_total{status=\"404\"} 1\n"));
}

TEST(MetricsTest, LimitHitsByFunctionAndKind) {
  Metrics metrics({"echo", "chat"});
  metrics.CountLimitHit(1, LimitKind::kRate);
  metrics.CountLimitHit(1, LimitKind::kRate);
  metrics.CountLimitHit(-1, LimitKind::kHandshakeTimeout);
  metrics.function(0).outbound_dropped += 7;
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("fngate_limit_hits_total{function=\"chat\",kind=\"rate\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("fngate_limit_hits_total{function=\"echo\",kind=\"rate\"} 0\n"));
  EXPECT_THAT(text, HasSubstr(
      "fngate_limit_hits_total{function=\"\",kind=\"handshake_timeout\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("fngate_limit_hits_total{function=\"echo\",kind=\"utf8\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("fngate_outbound_dropped_total{function=\"echo\"} 7\n"));
}

}  // namespace
}  // namespace fngate::gateway
