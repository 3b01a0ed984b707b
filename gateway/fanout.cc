#include "gateway/fanout.h"

#include <atomic>

#include "absl/synchronization/mutex.h"
#include "gateway/session.h"

namespace fngate::gateway {
namespace {

// Collects answers from many strands; the last one reports.
class Collector {
 public:
  Collector(size_t expected, FanoutResult initial, FanoutDone done)
      : remaining_(expected), result_(std::move(initial)), done_(std::move(done)) {}

  void Reached() { Finish(nullptr, nullptr); }
  void Gone(const std::string& id) { Finish(&id, &FanoutResult::gone); }
  void Overflowed(const std::string& id) { Finish(&id, &FanoutResult::overflowed); }
  // Not reached, and not worth naming (a group member that was closing anyway).
  void Skipped() { Finish(nullptr, &FanoutResult::gone); }

 private:
  void Finish(const std::string* id, std::vector<std::string> FanoutResult::*list) {
    {
      absl::MutexLock lock(&mu_);
      if (list == nullptr) {
        ++result_.reached;
      } else if (id != nullptr) {
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
  FanoutDone done_;
};

// Hands each recipient to `start` with the collector its answer goes to; ids already known
// to be gone are reported as they are.
template <typename Start>
void ForEachRecipient(ResolvedTarget targets, FanoutDone done, Start start) {
  FanoutResult initial;
  initial.gone = std::move(targets.gone);
  if (targets.recipients.empty()) return done(std::move(initial));
  auto collector = std::make_shared<Collector>(targets.recipients.size(), std::move(initial),
                                               std::move(done));
  for (ResolvedTarget::Recipient& recipient : targets.recipients) {
    start(*recipient.session, recipient.named, collector);
  }
}

}  // namespace

void SendToTargets(ResolvedTarget targets, OutboundMessagePtr message,
                   std::shared_ptr<const CloseOrder> then_close, FanoutDone done) {
  ForEachRecipient(
      std::move(targets), std::move(done),
      [&](Session& session, bool named, const std::shared_ptr<Collector>& collector) {
        session.Send(message, then_close,
                     [collector, named, &id = session.id()](SendOutcome outcome) {
                       switch (outcome) {
                         case SendOutcome::kQueued: return collector->Reached();
                         case SendOutcome::kGone:
                           return named ? collector->Gone(id) : collector->Skipped();
                         case SendOutcome::kOverflow: return collector->Overflowed(id);
                       }
                     });
      });
}

void CloseTargets(ResolvedTarget targets, std::shared_ptr<const CloseOrder> order,
                  FanoutDone done) {
  ForEachRecipient(
      std::move(targets), std::move(done),
      [&](Session& session, bool named, const std::shared_ptr<Collector>& collector) {
        session.Close(order->code, order->reason, order->by, /*urgent=*/false,
                      [collector, named, &id = session.id()](bool closed) {
                        if (closed) return collector->Reached();
                        named ? collector->Gone(id) : collector->Skipped();
                      });
      });
}

}  // namespace fngate::gateway
