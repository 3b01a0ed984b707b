#include "gateway/fanout.h"

#include <atomic>
#include <memory>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "gateway/session.h"

namespace fngate::gateway {
namespace {

// Collects answers from many strands; the last one reports.
class Collector {
 public:
  Collector(size_t expected, absl::AnyInvocable<void(FanoutResult)> done)
      : remaining_(expected), done_(std::move(done)) {}

  void Reached() { Finish(nullptr, nullptr); }
  void Gone(const std::string& id) { Finish(&id, &FanoutResult::gone); }
  void Overflowed(const std::string& id) { Finish(&id, &FanoutResult::overflowed); }

 private:
  void Finish(const std::string* id, std::vector<std::string> FanoutResult::*list) {
    {
      absl::MutexLock lock(&mu_);
      if (id == nullptr) {
        ++result_.reached;
      } else {
        (result_.*list).push_back(*id);
      }
    }
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      done_(std::move(result_));  // The last answer: no other thread touches result_ now.
    }
  }

  std::atomic<size_t> remaining_;
  absl::Mutex mu_;
  FanoutResult result_;
  absl::AnyInvocable<void(FanoutResult)> done_;
};

// Distinct ids, in order, and their sessions (null when gone).
std::vector<std::pair<const std::string*, std::shared_ptr<Session>>> Resolve(
    ConnectionRegistry& registry, const ConnectionIds& ids) {
  std::vector<std::pair<const std::string*, std::shared_ptr<Session>>> out;
  out.reserve(ids.size());
  absl::flat_hash_set<absl::string_view> seen;
  for (const std::string& id : ids) {
    if (!seen.insert(id).second) continue;
    out.emplace_back(&id, registry.Find(id));
  }
  return out;
}

// Resolves `ids`, reports the unknown ones as gone, and hands each live session to `start`
// with the collector its answer goes to.
template <typename Start>
void ForEachTarget(ConnectionRegistry& registry, const ConnectionIds& ids,
                   absl::AnyInvocable<void(FanoutResult)> done, Start start) {
  auto targets = Resolve(registry, ids);
  if (targets.empty()) return done(FanoutResult{});
  auto collector = std::make_shared<Collector>(targets.size(), std::move(done));
  for (auto& [id, session] : targets) {
    if (session == nullptr) {
      collector->Gone(*id);
    } else {
      start(*session, collector);
    }
  }
}

}  // namespace

void SendToConnections(ConnectionRegistry& registry, const ConnectionIds& ids,
                       OutboundMessagePtr message, absl::AnyInvocable<void(FanoutResult)> done) {
  ForEachTarget(registry, ids, std::move(done),
                [&message](Session& session, const std::shared_ptr<Collector>& collector) {
                  session.Send(message, [collector, &id = session.id()](SendOutcome outcome) {
                    switch (outcome) {
                      case SendOutcome::kQueued: return collector->Reached();
                      case SendOutcome::kGone: return collector->Gone(id);
                      case SendOutcome::kOverflow: return collector->Overflowed(id);
                    }
                  });
                });
}

void CloseConnections(ConnectionRegistry& registry, const ConnectionIds& ids, int code,
                      const std::string& reason, v1::ClosedBy by,
                      absl::AnyInvocable<void(FanoutResult)> done) {
  ForEachTarget(registry, ids, std::move(done),
                [&](Session& session, const std::shared_ptr<Collector>& collector) {
                  session.Close(code, reason, by, /*urgent=*/false,
                                [collector, &id = session.id()](bool closed) {
                                  closed ? collector->Reached() : collector->Gone(id);
                                });
                });
}

}  // namespace fngate::gateway
