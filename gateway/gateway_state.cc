#include "gateway/gateway_state.h"

namespace fngate::gateway {
namespace {

std::vector<std::string> FunctionNames(const GatewaySettings& settings) {
  std::vector<std::string> names;
  for (const FunctionSettings& f : settings.functions) names.push_back(f.name);
  return names;
}

}  // namespace

GatewayState::GatewayState(GatewaySettings settings, EventStreamPool::Defer defer,
                           grpc::CompletionQueue* stream_cq)
    : settings_(std::move(settings)),
      metrics_(FunctionNames(settings_)),
      url_signer_(settings_.signing.keys),
      address_counter_(/*max_total=*/0, settings_.limits.max_connections_per_ip) {
  for (size_t i = 0; i < settings_.functions.size(); ++i) {
    const FunctionSettings& f = settings_.functions[i];
    function_index_[f.name] = static_cast<int>(i);
    functions_.push_back(std::make_unique<FunctionClient>(
        f, settings_.deadlines, f.limits.max_message_bytes, metrics_.function(i), stream_cq, defer,
        settings_.worker_tls));
    const bool own_limits =
        f.limits.max_connections != settings_.limits.max_connections ||
        f.limits.max_connections_per_ip != settings_.limits.max_connections_per_ip;
    function_counters_.push_back(
        own_limits ? std::make_unique<ConnectionCounter>(f.limits.max_connections,
                                                         f.limits.max_connections_per_ip)
                   : nullptr);
  }
}

int GatewayState::FindFunction(const std::string& name) const {
  auto it = function_index_.find(name);
  return it == function_index_.end() ? -1 : it->second;
}

bool GatewayState::TryAddSocket() {
  if (sockets_.fetch_add(1, std::memory_order_relaxed) >=
      static_cast<int64_t>(settings_.limits.max_connections)) {
    sockets_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void GatewayState::RemoveSocket() { sockets_.fetch_sub(1, std::memory_order_relaxed); }

// live_ and draining_ are seq_cst: RemoveLive writes live_ then reads draining_, StartDrain
// writes draining_ then reads live_, and at least one of them must see the other's write.
// Whoever sees both takes on_drained_ under the lock; only one gets it.
void GatewayState::RemoveLive() {
  if (live_.fetch_sub(1) == 1 && draining_.load()) TakeAndRunDrained();
}

void GatewayState::StartDrain(absl::AnyInvocable<void()> on_drained) {
  {
    absl::MutexLock lock(&drain_mu_);
    on_drained_ = std::move(on_drained);
  }
  draining_.store(true);
  if (live_.load() == 0) TakeAndRunDrained();
}

void GatewayState::TakeAndRunDrained() {
  absl::AnyInvocable<void()> done;
  {
    absl::MutexLock lock(&drain_mu_);
    done = std::move(on_drained_);
    on_drained_ = nullptr;
  }
  if (done) done();
}

}  // namespace fngate::gateway
