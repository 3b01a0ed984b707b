// File: gateway/metrics.h
// The gateway's counters, rendered at /metrics in Prometheus text format.
//
// Functions are fixed at start-up, so each has a FunctionMetrics found by index with no lock;
// every counter is a relaxed atomic that any thread may bump. Close codes and HTTP refusals
// are rarer and open-ended: a mutex-guarded map each.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace fngate::gateway {

enum class EventKind { kConnect = 0, kMessage = 1, kDisconnect = 2, kError = 3 };
inline constexpr int kEventKinds = 4;
const char* EventKindName(EventKind kind);

// Why an event call failed, as counted in fngate_event_errors_total{kind=...}.
enum class CallErrorKind { kNoWorker = 0, kDeadline = 1, kFunctionError = 2 };
inline constexpr int kCallErrorKinds = 3;

// Latency histogram with fixed buckets (seconds), lock-free.
class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   5.0};
  void Observe(std::chrono::nanoseconds elapsed);
  void Render(const std::string& name, const std::string& labels, std::string& out) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> sum_ns_{0};
  std::atomic<uint64_t> count_{0};
};

struct FunctionMetrics {
  explicit FunctionMetrics(std::string function_name) : name(std::move(function_name)) {}
  const std::string name;
  std::atomic<int64_t> connections_active{0};
  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> messages_in{0};
  std::atomic<uint64_t> messages_out{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};
  std::array<Histogram, kEventKinds> call_latency;
  std::array<std::array<std::atomic<uint64_t>, kCallErrorKinds>, kEventKinds> call_errors{};
  // Disconnect events no worker confirmed, after every attempt (FunctionClient).
  std::atomic<uint64_t> disconnects_lost{0};
  // Workers ejected from the Events streams for failing (EventStreamPool).
  std::atomic<uint64_t> worker_ejections{0};
};

class Metrics {
 public:
  explicit Metrics(const std::vector<std::string>& function_names);

  FunctionMetrics& function(size_t index) { return *functions_[index]; }
  void CountClose(int code) ABSL_LOCKS_EXCLUDED(mu_);
  void CountHandshakeRefusal(int http_status) ABSL_LOCKS_EXCLUDED(mu_);
  // Messages to a client dropped or refused because its outbound queue was full.
  std::atomic<uint64_t> slow_consumer_drops{0};
  // Messages read from a client but never delivered because the connection closed after a
  // failed event.
  std::atomic<uint64_t> inbound_dropped{0};
  std::atomic<uint64_t> control_calls{0};

  std::string Render() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  std::vector<std::unique_ptr<FunctionMetrics>> functions_;
  mutable absl::Mutex mu_;
  std::map<int, uint64_t> closes_by_code_ ABSL_GUARDED_BY(mu_);
  std::map<int, uint64_t> handshake_refusals_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fngate::gateway
