// File: tests/load/latency_histogram.h
// LatencyHistogram: fixed-memory log-linear histogram of nanosecond values for the load tool
// (tests/load/fngate_load.cc). Values below 128 ns are exact; above, each power of two is split
// into 64 buckets, so a reported percentile is within 1.6% of the true value. Values up to
// about 2^40 ns (18 minutes) are kept; larger ones land in the last bucket. 19 KB whatever the
// number of samples, so a run of millions of messages records every one of them.
//
// Thread safety: none; record from one thread. Lifetime: a plain value.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace fngate::load {

class LatencyHistogram {
 public:
  void Record(int64_t nanos) {
    const uint64_t v = nanos < 0 ? 0 : static_cast<uint64_t>(nanos);
    ++counts_[Index(v)];
    ++count_;
    sum_ += v;
    max_ = std::max(max_, v);
  }

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }

  // The value below which `q` (0..1) of the samples fall: the middle of its bucket, capped at
  // the largest value recorded. 0 when empty.
  uint64_t Quantile(double q) const {
    if (count_ == 0) return 0;
    const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(q * count_ + 0.5));
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(max_, Middle(i));
    }
    return max_;
  }

 private:
  static constexpr int kSubBits = 6;                  // 64 buckets per power of two
  static constexpr int kMaxShift = 34;                // 2^(34+7) ns ~ 36 minutes
  static constexpr int kBuckets = (kMaxShift + 2) << kSubBits;

  static int Index(uint64_t v) {
    if (v < (2u << kSubBits)) return static_cast<int>(v);  // exact below 128
    const int msb = 63 - std::countl_zero(v);
    int shift = msb - kSubBits;
    if (shift > kMaxShift) return kBuckets - 1;
    return (shift << kSubBits) + static_cast<int>(v >> shift);
  }

  static uint64_t Middle(int index) {
    if (index < (2 << kSubBits)) return static_cast<uint64_t>(index);
    const int shift = (index >> kSubBits) - 1;
    const uint64_t mantissa = static_cast<uint64_t>(index - (shift << kSubBits));
    return (mantissa << shift) + ((uint64_t{1} << shift) >> 1);
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
};

}  // namespace fngate::load
