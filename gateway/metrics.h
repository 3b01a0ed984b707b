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

// A client-side limit that was hit, as counted in fngate_limit_hits_total{kind=...}.
enum class LimitKind {
  kMessageSize = 0,       // A message over max_message_bytes (close 1009).
  kRate = 1,              // Over max_messages_per_second (close 1008).
  kSlowConsumer = 2,      // The outbound queue was full (close 1008, or drop_oldest).
  kIdle = 3,              // Pings unanswered for idle_timeout_ms.
  kLifetime = 4,          // Open for max_lifetime_ms (close 1001).
  kHandshakeTimeout = 5,  // No whole upgrade request within handshake_timeout_ms.
  kHeaderSize = 6,        // An upgrade request header over max_header_bytes (HTTP 431).
  kPerIp = 7,             // Over max_connections_per_ip (HTTP 429).
  kMaxConnections = 8,    // Over max_connections (HTTP 503).
  kProtocol = 9,          // An RFC 6455 protocol violation (close 1002).
  kUtf8 = 10,             // Invalid UTF-8 in a text message (close 1007).
};
inline constexpr int kLimitKinds = 11;
const char* LimitKindName(LimitKind kind);

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
  std::array<std::atomic<uint64_t>, kLimitKinds> limit_hits{};
  // Messages dropped from a slow consumer's outbound queue (slow_consumer: drop_oldest).
  std::atomic<uint64_t> outbound_dropped{0};
};

class Metrics {
 public:
  explicit Metrics(const std::vector<std::string>& function_names);

  FunctionMetrics& function(size_t index) { return *functions_[index]; }
  void CountClose(int code) ABSL_LOCKS_EXCLUDED(mu_);
  void CountHandshakeRefusal(int http_status) ABSL_LOCKS_EXCLUDED(mu_);
  // `function` is the index of the function the connection was routed to, or -1 when the
  // limit was hit before routing (rendered as function="").
  void CountLimitHit(int function, LimitKind kind);
  // Messages to a client dropped or refused because its outbound queue was full.
  std::atomic<uint64_t> slow_consumer_drops{0};
  // Messages read from a client but never delivered because the connection closed after a
  // failed event.
  std::atomic<uint64_t> inbound_dropped{0};
  std::atomic<uint64_t> control_calls{0};

  std::string Render() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  std::vector<std::unique_ptr<FunctionMetrics>> functions_;
  std::array<std::atomic<uint64_t>, kLimitKinds> unrouted_limit_hits_{};
  mutable absl::Mutex mu_;
  std::map<int, uint64_t> closes_by_code_ ABSL_GUARDED_BY(mu_);
  std::map<int, uint64_t> handshake_refusals_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fngate::gateway
