#include "gateway/metrics.h"

#include "absl/strings/str_cat.h"

namespace fngate::gateway {
namespace {

// Counters stay integers (a double would print 1.23457e+06); sums are doubles.
template <typename Number>
void Line(std::string& out, const std::string& name, const std::string& labels, Number value) {
  absl::StrAppend(&out, name, labels.empty() ? "" : absl::StrCat("{", labels, "}"), " ", value,
                  "\n");
}

void Header(std::string& out, const char* name, const char* type, const char* help) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

const char* CallErrorKindName(int kind) {
  static constexpr const char* kNames[] = {"no_worker", "deadline", "function_error"};
  return kNames[kind];
}

}  // namespace

const char* EventKindName(EventKind kind) {
  static constexpr const char* kNames[] = {"connect", "message", "disconnect", "error"};
  return kNames[static_cast<int>(kind)];
}

const char* LimitKindName(LimitKind kind) {
  static constexpr const char* kNames[] = {
      "message_size", "rate",     "slow_consumer", "idle",     "lifetime", "handshake_timeout",
      "header_size",  "per_ip",   "max_connections", "protocol", "utf8"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == kLimitKinds);
  return kNames[static_cast<int>(kind)];
}

void Histogram::Observe(std::chrono::nanoseconds elapsed) {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(elapsed.count()), std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void Histogram::Render(const std::string& name, const std::string& labels,
                       std::string& out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    const std::string le = i < kBounds.size() ? absl::StrCat(kBounds[i]) : "+Inf";
    Line(out, name + "_bucket", absl::StrCat(labels, ",le=\"", le, "\""),
         cumulative);
  }
  Line(out, name + "_sum", labels, static_cast<double>(sum_ns_.load()) / 1e9);
  Line(out, name + "_count", labels, count_.load());
}

Metrics::Metrics(const std::vector<std::string>& function_names) {
  for (const std::string& name : function_names) {
    functions_.push_back(std::make_unique<FunctionMetrics>(name));
  }
}

void Metrics::CountClose(int code) {
  absl::MutexLock lock(&mu_);
  ++closes_by_code_[code];
}

void Metrics::CountHandshakeRefusal(int http_status) {
  absl::MutexLock lock(&mu_);
  ++handshake_refusals_[http_status];
}

void Metrics::CountLimitHit(int function, LimitKind kind) {
  auto& hits = function < 0 ? unrouted_limit_hits_ : functions_[function]->limit_hits;
  hits[static_cast<int>(kind)].fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::Render() const {
  std::string out;
  auto per_function = [&](const char* name, const char* type, const char* help, auto getter) {
    Header(out, name, type, help);
    for (const auto& f : functions_) {
      Line(out, name, absl::StrCat("function=\"", f->name, "\""),
           getter(*f));
    }
  };
  per_function("fngate_connections", "gauge", "Open WebSocket connections.",
               [](const FunctionMetrics& f) { return f.connections_active.load(); });
  per_function("fngate_connections_total", "counter", "Accepted WebSocket connections.",
               [](const FunctionMetrics& f) { return f.connections_total.load(); });
  per_function("fngate_messages_in_total", "counter", "Messages received from clients.",
               [](const FunctionMetrics& f) { return f.messages_in.load(); });
  per_function("fngate_messages_out_total", "counter", "Messages written to clients.",
               [](const FunctionMetrics& f) { return f.messages_out.load(); });
  per_function("fngate_bytes_in_total", "counter", "Payload bytes received from clients.",
               [](const FunctionMetrics& f) { return f.bytes_in.load(); });
  per_function("fngate_bytes_out_total", "counter", "Payload bytes written to clients.",
               [](const FunctionMetrics& f) { return f.bytes_out.load(); });

  per_function("fngate_disconnects_lost_total", "counter",
               "Disconnect events no worker confirmed before their deadline or the gateway's "
               "stop, after every retry (logged with the connection id).",
               [](const FunctionMetrics& f) { return f.disconnects_lost.load(); });
  per_function("fngate_worker_ejections_total", "counter",
               "Workers taken off the event streams for a while for failing calls.",
               [](const FunctionMetrics& f) { return f.worker_ejections.load(); });

  Header(out, "fngate_event_call_seconds", "histogram",
         "Latency of event calls to function workers.");
  for (const auto& f : functions_) {
    for (int k = 0; k < kEventKinds; ++k) {
      f->call_latency[k].Render(
          "fngate_event_call_seconds",
          absl::StrCat("function=\"", f->name, "\",event=\"",
                       EventKindName(static_cast<EventKind>(k)), "\""),
          out);
    }
  }
  Header(out, "fngate_event_errors_total", "counter", "Failed event calls by kind.");
  for (const auto& f : functions_) {
    for (int k = 0; k < kEventKinds; ++k) {
      for (int e = 0; e < kCallErrorKinds; ++e) {
        Line(out, "fngate_event_errors_total",
             absl::StrCat("function=\"", f->name, "\",event=\"",
                          EventKindName(static_cast<EventKind>(k)), "\",kind=\"",
                          CallErrorKindName(e), "\""),
             f->call_errors[k][e].load());
      }
    }
  }
  Header(out, "fngate_limit_hits_total", "counter",
         "Client-side limits hit, by kind; function=\"\" before the path named one.");
  auto limit_lines = [&](const std::string& function, const auto& hits) {
    for (int k = 0; k < kLimitKinds; ++k) {
      Line(out, "fngate_limit_hits_total",
           absl::StrCat("function=\"", function, "\",kind=\"",
                        LimitKindName(static_cast<LimitKind>(k)), "\""),
           hits[k].load());
    }
  };
  limit_lines("", unrouted_limit_hits_);
  for (const auto& f : functions_) limit_lines(f->name, f->limit_hits);
  per_function("fngate_outbound_dropped_total", "counter",
               "Messages dropped from a slow client's outbound queue (slow_consumer: drop_oldest).",
               [](const FunctionMetrics& f) { return f.outbound_dropped.load(); });
  Header(out, "fngate_slow_consumer_drops_total", "counter",
         "Messages refused because a client's outbound queue was full.");
  Line(out, "fngate_slow_consumer_drops_total", "", slow_consumer_drops.load());
  Header(out, "fngate_inbound_dropped_total", "counter",
         "Client messages not delivered because the connection closed after a failed event.");
  Line(out, "fngate_inbound_dropped_total", "", inbound_dropped.load());
  Header(out, "fngate_control_calls_total", "counter", "Control service calls.");
  Line(out, "fngate_control_calls_total", "", control_calls.load());

  absl::MutexLock lock(&mu_);
  Header(out, "fngate_closes_total", "counter", "Connections closed, by WebSocket close code.");
  for (const auto& [code, n] : closes_by_code_) {
    Line(out, "fngate_closes_total", absl::StrCat("code=\"", code, "\""), n);
  }
  Header(out, "fngate_handshake_refusals_total", "counter",
         "Upgrade requests answered with an HTTP error, by status.");
  for (const auto& [status, n] : handshake_refusals_) {
    Line(out, "fngate_handshake_refusals_total", absl::StrCat("status=\"", status, "\""),
         n);
  }
  return out;
}

}  // namespace fngate::gateway
