// File: gateway/gateway_state.h
// GatewayState: what every session and the control service share, owned by Gateway and
// outliving every session: settings, the function clients, the online table, metrics, and
// the counters that drain and the connection limit read.
//
// Everything here is either immutable after construction or thread-safe on its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "gateway/client_limits.h"
#include "gateway/config.h"
#include "gateway/function_client.h"
#include "gateway/metrics.h"
#include "gateway/online_table.h"
#include "gateway/signed_url.h"
#include "gateway/tls.h"

namespace fngate::gateway {

class GatewayState {
 public:
  // `defer` posts a task to the io threads (FunctionClient batches event writes with it).
  // `stream_cq`: where the functions' Events streams complete (a CompletionQueueThread's queue,
  // which must outlive this).
  GatewayState(GatewaySettings settings, EventStreamPool::Defer defer,
               grpc::CompletionQueue* stream_cq);

  const GatewaySettings& settings() const { return settings_; }
  OnlineTable& table() { return table_; }
  Metrics& metrics() { return metrics_; }

  // The function a URL path segment names, or -1.
  int FindFunction(const std::string& name) const;
  FunctionClient& function(int index) { return *functions_[index]; }
  size_t function_count() const { return functions_.size(); }

  // "host:port" of the control service, put in every event. Set once, before any session.
  void set_control_advertise(std::string address) { control_advertise_ = std::move(address); }
  const std::string& control_advertise() const { return control_advertise_; }

  // Signed URLs: the configured keys (SignUrl mints, the handshake verifies), and the base of
  // minted URLs ("wss://ws.example.com"), set once before any session or control call.
  const UrlSigner& url_signer() const { return url_signer_; }
  void set_public_url(std::string url) { public_url_ = std::move(url); }
  const std::string& public_url() const { return public_url_; }
  // wss://: the TLS context of new client connections (null: plain ws://). Set once, before
  // any session; the context inside may be reloaded (SIGHUP).
  void set_tls(std::unique_ptr<ServerTlsContext> tls) { tls_ = std::move(tls); }
  ServerTlsContext* tls() const { return tls_.get(); }

  bool draining() const { return draining_.load(); }

  // Sockets held, handshake included (for max_connections). Returns false when full.
  bool TryAddSocket();
  void RemoveSocket();

  // Connections per client address, gateway-wide (max_connections_per_ip).
  ConnectionCounter& address_counter() { return address_counter_; }
  // A function's own connection limits, or null when they are the gateway's (then the
  // gateway's counters already bound its connections).
  ConnectionCounter* function_counter(int index) { return function_counters_[index].get(); }

  // A connection whose connect event was sent and whose disconnect event (or refusal) is not
  // done yet: drain waits for these to reach zero.
  void AddLive() { live_.fetch_add(1); }
  void RemoveLive();
  int64_t live() const { return live_.load(); }

  // Starts draining; `on_drained` runs (on the thread that ends the last live connection, or
  // at once) when no live connection is left. Called once.
  void StartDrain(absl::AnyInvocable<void()> on_drained);

 private:
  void TakeAndRunDrained();

  const GatewaySettings settings_;
  absl::flat_hash_map<std::string, int> function_index_;
  Metrics metrics_;
  std::vector<std::unique_ptr<FunctionClient>> functions_;
  OnlineTable table_;
  std::string control_advertise_;
  const UrlSigner url_signer_;
  std::string public_url_;
  std::unique_ptr<ServerTlsContext> tls_;
  std::atomic<int64_t> sockets_{0};
  ConnectionCounter address_counter_;
  std::vector<std::unique_ptr<ConnectionCounter>> function_counters_;
  std::atomic<int64_t> live_{0};
  std::atomic<bool> draining_{false};
  absl::Mutex drain_mu_;
  absl::AnyInvocable<void()> on_drained_ ABSL_GUARDED_BY(drain_mu_);
};

}  // namespace fngate::gateway
