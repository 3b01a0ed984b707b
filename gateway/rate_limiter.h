// File: gateway/rate_limiter.h
// TokenBucket: the per-connection message rate limit (Limits.max_messages_per_second and
// message_burst). The bucket holds up to `burst` tokens and refills at `rate` per second;
// each message takes one, and a message that finds the bucket empty is over the limit.
//
//   TokenBucket bucket(/*rate=*/10, /*burst=*/20, Clock::now());
//   if (!bucket.TryTake(Clock::now())) { /* close 1008 */ }
//
// Time is passed in, so tests need no clock. Not thread-safe: a session's strand owns it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace fngate::gateway {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // Starts full. `rate` > 0 and `burst` > 0.
  TokenBucket(uint32_t rate, uint32_t burst, Clock::time_point now)
      : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}

  // Takes a token if there is one. `now` must not go backwards (a steady clock).
  bool TryTake(Clock::time_point now) {
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  const double rate_;
  const double burst_;
  double tokens_;
  Clock::time_point last_;
};

}  // namespace fngate::gateway
