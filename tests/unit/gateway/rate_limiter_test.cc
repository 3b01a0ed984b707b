// TokenBucket: a burst, then the sustained rate, on a clock the test moves by hand.
#include "gateway/rate_limiter.h"

#include <gtest/gtest.h>

namespace fngate::gateway {
namespace {

using std::chrono::milliseconds;

TEST(TokenBucketTest, BurstThenEmpty) {
  const TokenBucket::Clock::time_point t0{};
  TokenBucket bucket(/*rate=*/10, /*burst=*/3, t0);
  EXPECT_TRUE(bucket.TryTake(t0));
  EXPECT_TRUE(bucket.TryTake(t0));
  EXPECT_TRUE(bucket.TryTake(t0));
  EXPECT_FALSE(bucket.TryTake(t0));
}

TEST(TokenBucketTest, RefillsAtTheRate) {
  const TokenBucket::Clock::time_point t0{};
  TokenBucket bucket(/*rate=*/10, /*burst=*/1, t0);
  EXPECT_TRUE(bucket.TryTake(t0));
  EXPECT_FALSE(bucket.TryTake(t0 + milliseconds(50)));   // Half a token.
  EXPECT_TRUE(bucket.TryTake(t0 + milliseconds(101)));   // The other half came.
  EXPECT_FALSE(bucket.TryTake(t0 + milliseconds(101)));
  // Just under ten messages a second pass, spaced evenly.
  for (int i = 1; i <= 10; ++i) {
    EXPECT_TRUE(bucket.TryTake(t0 + milliseconds(101 + 101 * i))) << i;
  }
}

TEST(TokenBucketTest, NeverHoldsMoreThanTheBurst) {
  const TokenBucket::Clock::time_point t0{};
  TokenBucket bucket(/*rate=*/100, /*burst=*/2, t0);
  const auto later = t0 + std::chrono::hours(1);  // A long quiet spell refills only the burst.
  EXPECT_TRUE(bucket.TryTake(later));
  EXPECT_TRUE(bucket.TryTake(later));
  EXPECT_FALSE(bucket.TryTake(later));
}

}  // namespace
}  // namespace fngate::gateway
